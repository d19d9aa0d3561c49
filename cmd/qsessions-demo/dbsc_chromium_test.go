package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dbsc"
	"github.com/qsessions/qsessions/internal/testutil"
)

// tryItRE reads the Chromium command line the demo prints with --dbsc.
var tryItRE = regexp.MustCompile(`try it with: chromium --user-data-dir=\$\(mktemp -d\) --enable-features=(\S+) --disable-features=(\S+) --ignore-certificate-errors-spki-list=(\S+) (https://\S+)`)

// TestDBSCChromium runs device-bound sessions with a real Chromium (156)
// against the demo as its users run it: serve with --dbsc, the HTTPS
// listener with its self-signed certificate, and exactly the Chromium
// flags the demo prints. Chromium signs in through the login form,
// registers in the background, refreshes its 10-second bound cookie
// through a 403 challenge, and, once another device revoked the session,
// is signed out at once and told to end its device-bound session
// ("ServerRequested") by the next refresh.
//
// What Chromium needs (found with the dbsc package's own test, and true
// here): HTTPS without certificate errors (plain http://localhost and
// --ignore-certificate-errors leave the registration header unprocessed;
// an SPKI pin is accepted), and the feature flags the demo prints.
func TestDBSCChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no browser")
	}
	if _, err := exec.LookPath(chromiumPath); err != nil {
		testutil.Unavailable(t, "chromium", chromiumPath+" not found (apt-get install chromium)")
	}
	var chromiumLog lockedLog
	db := testutil.Open(t, testutil.SQLite)
	sv := startServe(t, config{DB: db.URL, DBSC: dbscConfig{On: true, Addr: "127.0.0.1:0", CredentialTTL: 10 * time.Second}})
	m := tryItRE.FindStringSubmatch(sv.out)
	if m == nil {
		t.Fatalf("the demo printed no Chromium command line:\n%s", sv.out)
	}
	enable, disable, spki, base := m[1], m[2], m[3], strings.TrimSuffix(m[4], "/")

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Headless, chromedp.DisableGPU, chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("enable-features", enable),
		chromedp.Flag("disable-features", disable),
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
		chromedp.UserDataDir(t.TempDir()),
		// Chromium's own log (errors and warnings), shown if the test fails.
		chromedp.Flag("enable-logging", "stderr"),
		chromedp.CombinedOutput(&chromiumLog),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}))
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelT()

	events := make(chan *network.EventDeviceBoundSessionEventOccurred, 100)
	var netLog lockedLog
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the tab's requests:\n%s", netLog.String())
			t.Logf("Chromium's log (last lines):\n%s", chromiumLog.Tail(60))
		}
	})
	if err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *network.EventDeviceBoundSessionEventOccurred:
			b, _ := json.Marshal(e)
			netLog.Printf("DBSC event %s", b)
			select {
			case events <- e:
			default:
			}
		case *network.EventRequestWillBeSent:
			if e.RedirectResponse != nil {
				netLog.Printf("%s %d (redirect)", e.RequestID, e.RedirectResponse.Status)
			}
			netLog.Printf("%s %s %s", e.RequestID, e.Request.Method, e.Request.URL)
		case *network.EventResponseReceived:
			netLog.Printf("%s %d %s", e.RequestID, e.Response.Status, e.Response.MimeType)
		case *network.EventLoadingFailed:
			netLog.Printf("%s failed: %s (canceled %v)", e.RequestID, e.ErrorText, e.Canceled)
		}
	}); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, network.EnableDeviceBoundSessions, network.EnableDeviceBoundSessionsParams{Enable: true})
		return err
	})); err != nil {
		t.Fatalf("enabling DBSC events: %v", err)
	}
	var seen []string
	waitFor := func(what string, d time.Duration, match func(*network.EventDeviceBoundSessionEventOccurred) bool) *network.EventDeviceBoundSessionEventOccurred {
		t.Helper()
		timer := time.NewTimer(d)
		defer timer.Stop()
		for {
			select {
			case e := <-events:
				b, _ := json.Marshal(e)
				seen = append(seen, string(b))
				if match(e) {
					return e
				}
			case <-timer.C:
				t.Fatalf("no %s within %v; DBSC events seen:\n%s", what, d, strings.Join(seen, "\n"))
			}
		}
	}
	// onPage loads path and reports whether it shows the signed-in home
	// page (false: the login form).
	onHome := func(path string) bool {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS(`dl.fields, input[name=password]`))); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("dl.fields").length`))
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}

	// Sign in through the form: the 303 that signs in carries the
	// registration header, and Chromium registers in the background.
	browserLogin(t, ctx, base, "alice", sv.password(t, "alice"))
	created := waitFor("registration", 30*time.Second, func(e *network.EventDeviceBoundSessionEventOccurred) bool {
		return e.CreationEventDetails != nil
	})
	if !created.Succeeded {
		t.Fatalf("registration failed: %+v", created.CreationEventDetails)
	}
	var key, jwk string
	if err := db.SQL.QueryRow("SELECT session_key, dbsc_key FROM qsessions_session WHERE dbsc_key IS NOT NULL").Scan(&key, &jwk); err != nil {
		t.Fatalf("no bound row after Chromium registered: %v", err)
	}
	if dk, err := dbsc.ParseDeviceKey([]byte(jwk)); err != nil || dk.Thumbprint() != created.SessionID || dk.Algorithm() != dbsc.ES256 {
		t.Fatalf("stored key %s (%v), Chromium's session %q", jwk, err, created.SessionID)
	}
	if rows := sessionRows(t, ctx, base); len(rows) != 1 || !strings.Contains(rows[0], "Device-bound") || !strings.Contains(rows[0], "This device") {
		t.Fatalf("the sessions page does not mark the session device-bound:\n%s", strings.Join(rows, "\n"))
	}

	// The bound cookie lives 10 s: Chromium refreshes it (through a 403
	// challenge and a signed proof) and stays signed in.
	time.Sleep(11 * time.Second)
	if !onHome("/") {
		t.Fatal("signed out after the bound cookie expired")
	}
	refreshed := waitFor("refresh", 30*time.Second, func(e *network.EventDeviceBoundSessionEventOccurred) bool {
		return e.RefreshEventDetails != nil && e.RefreshEventDetails.RefreshResult == network.RefreshEventDetailsRefreshResultRefreshed
	})
	if !refreshed.Succeeded || refreshed.SessionID != created.SessionID {
		t.Fatalf("refresh: %+v", refreshed)
	}

	// Another device of alice's revokes the Chromium session: Chromium is
	// signed out at once (its bound cookie is still valid, the row is
	// gone), and the next refresh ends its device-bound session.
	other := sv.client(t)
	if code := other.login(t, "alice", sv.password(t, "alice")); code != http.StatusSeeOther {
		t.Fatalf("the other device's login: %d", code)
	}
	if code := other.post(t, "/sessions/"+backend.PublicID(key)+"/revoke"); code != http.StatusSeeOther {
		t.Fatalf("revoking Chromium's session: %d", code)
	}
	if onHome("/") {
		t.Fatal("still signed in after the revoke")
	}
	time.Sleep(11 * time.Second)
	onHome("/")
	ended := waitFor("end of the device-bound session", 30*time.Second, func(e *network.EventDeviceBoundSessionEventOccurred) bool {
		return e.TerminationEventDetails != nil
	})
	if r := ended.TerminationEventDetails.DeletionReason; r != network.TerminationEventDetailsDeletionReasonServerRequested {
		t.Fatalf("the device-bound session ended for %q, want ServerRequested", r)
	}
}

// chromiumNoise matches Chromium log lines about what a headless container
// lacks (D-Bus, GPU, power, screensaver), which say nothing about a test.
var chromiumNoise = regexp.MustCompile(`dbus|bluez|idle_linux|skottie|vaapi|sandbox_linux|unexpected operator`)

// Tail returns the last n lines that are not chromiumNoise.
func (l *lockedLog) Tail(n int) string {
	var lines []string
	for line := range strings.Lines(l.String()) {
		if !chromiumNoise.MatchString(line) {
			lines = append(lines, strings.TrimRight(line, "\n"))
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
