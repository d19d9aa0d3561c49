package main

import (
	"context"
	"flag"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/location/locationtest"
)

// chromiumPath is Debian's Chromium (apt-get install chromium).
const chromiumPath = "/usr/bin/chromium"

var docsScreenshot = flag.Bool("docs-screenshot", false, "also write the /sessions screenshot of TestBrowser to docs/sessions.png (for the README)")

// artifactsDir is where screenshots go: $QSESSIONS_ARTIFACTS, or a
// temporary directory of the test.
func artifactsDir(t *testing.T) string {
	if d := os.Getenv("QSESSIONS_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// browser starts a headless Chromium of its own (its own profile, so its
// own cookies) that sends ua and, to every request, X-Forwarded-For: ip,
// which the demo believes from 127.0.0.1 in this test. It returns the tab.
func browser(t *testing.T, parent context.Context, ua, ip string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.UserAgent(ua),
		chromedp.WindowSize(1200, 720),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"X-Forwarded-For": ip}})
		return err
	}))
	if err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}

// path returns the path (and query) of the tab's current URL.
func path(t *testing.T, ctx context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.RequestURI()
}

// browserLogin signs in through the login form. Each step has a minute
// of its own; a failure names the step and shows where the tab is and
// what it shows, so a stuck sign-in says why.
func browserLogin(t *testing.T, ctx context.Context, base, name, pass string) {
	t.Helper()
	steps := []struct {
		what string
		do   chromedp.Action[chromedp.Void]
	}{
		{"loading /login", chromedp.Navigate(base + "/login")},
		{"waiting for the login form", chromedp.WaitVisible(chromedp.CSS(`input[name=username]`))},
		{"typing the user name", chromedp.SendKeys(chromedp.CSS(`input[name=username]`), name)},
		{"typing the password", chromedp.SendKeys(chromedp.CSS(`input[name=password]`), pass)},
		{"submitting the form", chromedp.Click(chromedp.CSS(`form.stack button`))},
		{"waiting for the home page", chromedp.WaitVisible(chromedp.CSS(`dl.fields`))},
	}
	for _, s := range steps {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := chromedp.Do(sctx, s.do)
		cancel()
		if err != nil {
			t.Fatalf("signing in as %s: %s: %v\n%s", name, s.what, err, tabState(ctx))
		}
	}
}

// tabState describes the tab for a failure message: its URL and the
// start of the text it shows.
func tabState(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "tab state unknown: " + err.Error()
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : "(no body)"`))
	if err != nil {
		text = "(text unknown: " + err.Error() + ")"
	}
	if len(text) > 600 {
		text = text[:600] + "…"
	}
	return "the tab is at " + loc + " and shows:\n" + text
}

// sessionRows returns the text of each row of the /sessions table.
func sessionRows(t *testing.T, ctx context.Context, base string) []string {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/sessions"),
		chromedp.WaitVisible(chromedp.CSS(`table.sessions`)),
	)
	if err != nil {
		t.Fatalf("loading /sessions: %v", err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.sessions tbody tr")].map(tr => tr.innerText.replace(/\s+/g, " "))`))
	if err != nil {
		t.Fatalf("reading /sessions: %v", err)
	}
	return rows
}

func screenshot(t *testing.T, ctx context.Context, file string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", file)
}

// TestBrowser signs one user in from two headless Chromiums with different
// user agents and locations, revokes the second from the first, and signs
// out everywhere else, checking each time that the revoked browser's next
// page load lands on the login page.
func TestBrowser(t *testing.T) {
	if _, err := exec.LookPath(chromiumPath); err != nil {
		testutil.Unavailable(t, "chromium", chromiumPath+" not found (apt-get install chromium)")
	}
	geo := t.TempDir()
	locationtest.WriteFile(t, filepath.Join(geo, "GeoLite2-City.mmdb"), locationtest.Options{DatabaseType: "GeoLite2-City"},
		locationtest.Record{Network: "81.2.69.0/24", City: "London", Country: "United Kingdom", CountryCode: "GB"},
		locationtest.Record{Network: "89.160.20.0/24", City: "Linköping", Country: "Sweden", CountryCode: "SE"},
		locationtest.Record{Network: "2.125.160.0/24", City: "Boxford", Country: "United Kingdom", CountryCode: "GB"},
		locationtest.Record{Network: "216.160.83.0/24", City: "Milton", Country: "United States", CountryCode: "US"},
	)
	ta := newTestApp(t, testutil.Open(t, testutil.SQLite), config{TrustedProxies: "127.0.0.0/8,::1/128", GeoIPDir: geo})
	base := ta.srv.URL
	out := artifactsDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	a := browser(t, ctx, uaWindows, "81.2.69.142")
	b := browser(t, ctx, uaIPhone, "89.160.20.112")
	pass := ta.password("alice")
	browserLogin(t, a, base, "alice", pass)
	browserLogin(t, b, base, "alice", pass)

	// A sees both sessions, itself first, with the right devices.
	rows := sessionRows(t, a, base)
	if len(rows) != 2 ||
		!strings.Contains(rows[0], "Chrome on Windows") || !strings.Contains(rows[0], "This device") || !strings.Contains(rows[0], "London, United Kingdom") ||
		!strings.Contains(rows[1], "Safari on iPhone") || strings.Contains(rows[1], "This device") || !strings.Contains(rows[1], "Linköping, Sweden") {
		t.Fatalf("A's sessions page:\n%s", strings.Join(rows, "\n"))
	}
	screenshot(t, a, filepath.Join(out, "sessions-two-devices.png"))

	// A revokes B.
	err := chromedp.Do(a,
		chromedp.Click(chromedp.CSS(`table.sessions tbody tr:not(.current) button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.flash`)),
	)
	if err != nil {
		t.Fatalf("revoking B: %v", err)
	}
	if p := path(t, a); p != "/sessions?done=revoked" {
		t.Fatalf("after the revoke A is on %s", p)
	}
	if rows := sessionRows(t, a, base); len(rows) != 1 || !strings.Contains(rows[0], "This device") {
		t.Fatalf("after the revoke A sees:\n%s", strings.Join(rows, "\n"))
	}
	// B's next page load lands on the login page.
	if err := chromedp.Do(b, chromedp.Navigate(base+"/sessions"), chromedp.WaitVisible(chromedp.CSS(`input[name=password]`))); err != nil {
		t.Fatal(err)
	}
	if p := path(t, b); !strings.HasPrefix(p, "/login") {
		t.Fatalf("revoked B is on %s, want the login page", p)
	}
	screenshot(t, b, filepath.Join(out, "login.png"))

	// B signs in again, and two more devices: alice on an Android phone and
	// bob, through plain HTTP clients.
	browserLogin(t, b, base, "alice", pass)
	android := ta.device("Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36")
	android.hdr["X-Forwarded-For"] = "2.125.160.216"
	if r := android.login("alice", pass); r.code != 303 {
		t.Fatalf("android login: %d", r.code)
	}
	bob := ta.device("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15")
	bob.hdr["X-Forwarded-For"] = "216.160.83.56"
	if r := bob.login("bob", ta.password("bob")); r.code != 303 {
		t.Fatalf("bob login: %d", r.code)
	}
	rows = sessionRows(t, a, base)
	if len(rows) != 3 {
		t.Fatalf("A should see three sessions:\n%s", strings.Join(rows, "\n"))
	}
	screenshot(t, a, filepath.Join(out, "sessions.png"))
	if *docsScreenshot {
		screenshot(t, a, filepath.Join("..", "..", "docs", "sessions.png"))
	}

	// The admin page shows everyone's sessions.
	if err := chromedp.Do(a, chromedp.Navigate(base+"/admin/sessions"), chromedp.WaitVisible(chromedp.CSS(`table.admin`))); err != nil {
		t.Fatal(err)
	}
	adminRows, err := chromedp.Run(a, chromedp.Evaluate[int](`document.querySelectorAll("table.admin tbody tr").length`))
	if err != nil {
		t.Fatal(err)
	}
	if adminRows != 4 {
		t.Fatalf("the admin page lists %d sessions, want 4", adminRows)
	}
	screenshot(t, a, filepath.Join(out, "admin-sessions.png"))
	// One session's details with its decoded data.
	err = chromedp.Do(a,
		chromedp.Click(chromedp.CSS(`table.admin tbody tr:first-child td.actions a`)),
		chromedp.WaitVisible(chromedp.CSS(`table.data`)),
	)
	if err != nil {
		t.Fatalf("opening a session's details: %v", err)
	}
	if detail, err := chromedp.Run(a, chromedp.Text(chromedp.CSS(`main`))); err != nil || !strings.Contains(detail, "login_method") || !strings.Contains(detail, "Milton, United States") {
		t.Fatalf("details page: %v\n%s", err, detail)
	}
	screenshot(t, a, filepath.Join(out, "admin-session-detail.png"))

	// Sign out everywhere else: B and the Android phone are revoked, bob and
	// A are not.
	err = chromedp.Do(a,
		chromedp.Navigate(base+"/sessions"),
		chromedp.WaitVisible(chromedp.CSS(`form.below button`)),
		chromedp.Click(chromedp.CSS(`form.below button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.flash`)),
	)
	if err != nil {
		t.Fatalf("signing out everywhere else: %v", err)
	}
	if flash, err := chromedp.Run(a, chromedp.Text(chromedp.CSS(`p.flash`))); err != nil || !strings.Contains(flash, "2 other sessions were revoked") {
		t.Fatalf("flash %q %v", flash, err)
	}
	if err := chromedp.Do(b, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`input[name=password]`))); err != nil {
		t.Fatal(err)
	}
	if p := path(t, b); !strings.HasPrefix(p, "/login") {
		t.Fatalf("B after revoke-others is on %s", p)
	}
	if r := android.get("/sessions"); r.code != 303 || !strings.HasPrefix(r.loc, "/login") {
		t.Fatalf("the Android session survived revoke-others: %d %q", r.code, r.loc)
	}
	if r := bob.get("/sessions"); r.code != 200 {
		t.Fatalf("bob's session was revoked by alice's revoke-others: %d", r.code)
	}
	if rows := sessionRows(t, a, base); len(rows) != 1 || !strings.Contains(rows[0], "This device") {
		t.Fatalf("A after revoke-others:\n%s", strings.Join(rows, "\n"))
	}
}
