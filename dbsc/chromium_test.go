package dbsc_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/qsessions/qsessions/dbsc"
	"github.com/qsessions/qsessions/dbsc/dbsctest"
)

// chromiumPath is Debian's Chromium (apt-get install chromium).
const chromiumPath = "/usr/bin/chromium"

// chromiumDBSCFlags turn DBSC on in Chromium 156 on Linux: the feature
// without origin-trial tokens or refresh quota, software keys (Linux has no
// TPM provider), and no signing quota (6 signatures per 9 minutes per
// site, which a 10-second bound cookie exhausts in a minute).
var chromiumDBSCFlags = []chromedp.ExecAllocatorOption{
	chromedp.Flag("enable-features", "DeviceBoundSessions:RequireOriginTrialTokens/false/RefreshQuota/false,EnableBoundSessionCredentialsSoftwareKeysForManualTesting"),
	chromedp.Flag("disable-features", "DeviceBoundSessionSigningQuotaAndCaching"),
}

// requestLog records the DBSC requests the server received.
type requestLog struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (l *requestLog) add(r *http.Request) {
	l.mu.Lock()
	l.reqs = append(l.reqs, r.Clone(context.Background()))
	l.mu.Unlock()
}

func (l *requestLog) paths() []*http.Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs)
}

// jwtPart decodes one part of a compact JWT into a map.
func jwtPart(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestChromium runs the protocol with a real Chromium: registration at
// sign-in, bound requests, refreshes through a 403 challenge, and the end
// of the device-bound session after revocation. Chromium runs DBSC only
// over HTTPS without certificate errors (plain http://localhost and
// --ignore-certificate-errors both leave the registration header
// unprocessed), so the test server's certificate is trusted by its SPKI
// hash and a .test name is mapped to 127.0.0.1.
func TestChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no browser")
	}
	if _, err := exec.LookPath(chromiumPath); err != nil {
		if slices.Contains(strings.Split(os.Getenv("QSESSIONS_TEST_REQUIRE"), ","), "chromium") {
			t.Fatalf("chromium is required (QSESSIONS_TEST_REQUIRE) but %s is missing", chromiumPath)
		}
		t.Skip(chromiumPath + " not found (apt-get install chromium)")
	}
	store := dbsctest.NewMemStore()
	srv, err := dbsc.New(dbsc.Config{Store: store, CredentialTTL: 10 * time.Second, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	app := dbsctest.NewApp(srv, store)
	var log requestLog
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/dbsc/") {
			log.add(r)
		}
		app.ServeHTTP(w, r)
	}))
	defer ts.Close()
	const host = "dbsc.test"
	base := strings.Replace(ts.URL, "127.0.0.1", host, 1)
	spki := sha256.Sum256(ts.Certificate().RawSubjectPublicKeyInfo)

	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Headless, chromedp.DisableGPU, chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("host-resolver-rules", "MAP "+host+" 127.0.0.1"),
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
		chromedp.UserDataDir(t.TempDir()),
	}, chromiumDBSCFlags...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}))
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelT()

	events := make(chan *network.EventDeviceBoundSessionEventOccurred, 100)
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventDeviceBoundSessionEventOccurred); ok {
			select {
			case events <- e:
			default:
			}
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
	// waitFor returns the first event that match accepts, within d.
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
	page := func(path string) string {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(base+path)); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return strings.TrimSpace(text)
	}

	// Sign in: Chromium registers in the background.
	page("/login")
	created := waitFor("registration", 30*time.Second, func(e *network.EventDeviceBoundSessionEventOccurred) bool {
		return e.CreationEventDetails != nil
	})
	if !created.Succeeded {
		t.Fatalf("registration failed: %+v", created.CreationEventDetails)
	}
	reqs := log.paths()
	if len(reqs) == 0 || reqs[0].URL.Path != "/dbsc/register" {
		t.Fatalf("first DBSC request %v", reqs)
	}
	proof := reqs[0].Header.Get(dbsc.HeaderResponse)
	if h := jwtPart(t, proof, 0); h["typ"] != "dbsc+jwt" || h["alg"] != "ES256" || h["jwk"] == nil {
		t.Errorf("registration proof header %v", h)
	}
	if p := jwtPart(t, proof, 1); p["jti"] == nil {
		t.Errorf("registration proof payload %v", p)
	}
	var key string
	for _, c := range reqs[0].Cookies() {
		if c.Name == "sessionid" {
			key = dbsctest.KeyOf(c.Value)
		}
	}
	b := store.Binding(key)
	if b == nil || b.ID() != created.SessionID {
		t.Fatalf("stored binding %v, Chromium's session %q", b, created.SessionID)
	}
	if got := page("/whoami"); got != "alice bound" {
		t.Fatalf("/whoami after registration = %q", got)
	}

	// The bound cookie lives 10 s: Chromium refreshes (proactively, or on
	// the next request), through a 403 challenge and a signed proof.
	time.Sleep(11 * time.Second)
	if got := page("/whoami"); got != "alice bound" {
		t.Fatalf("/whoami after the bound cookie expired = %q", got)
	}
	refreshed := waitFor("refresh", 30*time.Second, func(e *network.EventDeviceBoundSessionEventOccurred) bool {
		return e.RefreshEventDetails != nil && e.RefreshEventDetails.RefreshResult == network.RefreshEventDetailsRefreshResultRefreshed
	})
	if !refreshed.Succeeded {
		t.Fatalf("refresh: %+v", refreshed.RefreshEventDetails)
	}
	var sawChallenge, sawProof bool
	for _, r := range log.paths() {
		if r.URL.Path != "/dbsc/refresh" {
			continue
		}
		if r.Header.Get(dbsc.HeaderSessionID) != created.SessionID {
			t.Errorf("refresh with %s %q, want %q", dbsc.HeaderSessionID, r.Header.Get(dbsc.HeaderSessionID), created.SessionID)
		}
		if p := r.Header.Get(dbsc.HeaderResponse); p == "" {
			sawChallenge = true
		} else {
			sawProof = true
			if h := jwtPart(t, p, 0); h["typ"] != "dbsc+jwt" || h["jwk"] != nil {
				t.Errorf("refresh proof header %v", h)
			}
		}
	}
	if !sawChallenge || !sawProof {
		t.Errorf("refreshes: without proof %v, with proof %v", sawChallenge, sawProof)
	}

	// Revoked: signed out at once, and the next refresh ends Chromium's
	// device-bound session.
	store.Revoke(key)
	if got := page("/whoami"); got != "not signed in" {
		t.Fatalf("/whoami after revocation = %q", got)
	}
	time.Sleep(11 * time.Second)
	page("/whoami")
	ended := waitFor("end of the session", 30*time.Second, func(e *network.EventDeviceBoundSessionEventOccurred) bool {
		return e.TerminationEventDetails != nil
	})
	if r := ended.TerminationEventDetails.DeletionReason; r != network.TerminationEventDetailsDeletionReasonServerRequested {
		t.Fatalf("session ended for %q, want ServerRequested", r)
	}
}
