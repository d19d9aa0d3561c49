package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/location/locationtest"
	"github.com/qsessions/qsessions/pages"
)

// geoFixture writes the GeoIP databases of the browser tests.
func geoFixture(t *testing.T) string {
	geo := t.TempDir()
	locationtest.WriteFile(t, filepath.Join(geo, "GeoLite2-City.mmdb"), locationtest.Options{DatabaseType: "GeoLite2-City"},
		locationtest.Record{Network: "81.2.69.0/24", City: "London", Country: "United Kingdom", CountryCode: "GB"},
		locationtest.Record{Network: "89.160.20.0/24", City: "Linköping", Country: "Sweden", CountryCode: "SE"},
		locationtest.Record{Network: "2.125.160.0/24", City: "Boxford", Country: "United Kingdom", CountryCode: "GB"},
		locationtest.Record{Network: "216.160.83.0/24", City: "Milton", Country: "United States", CountryCode: "US"},
	)
	return geo
}

func captureAlerts(t *testing.T) *lockedLog {
	l := &lockedLog{}
	alertLogger = slog.New(slog.NewTextHandler(l, nil))
	t.Cleanup(func() { alertLogger = nil })
	return l
}

// TestDemoAlerts: a second device in another country is announced on the
// first device's sessions page, in the JSON, and as a log line; hostile
// user agents reach the page escaped.
func TestDemoAlerts(t *testing.T) {
	lines := captureAlerts(t)
	ta := newTestApp(t, testutil.Open(t, testutil.SQLite), config{TrustedProxies: "127.0.0.0/8,::1/128", GeoIPDir: geoFixture(t)})
	win, phone := ta.device(uaWindows), ta.device(uaIPhone)
	win.hdr["X-Forwarded-For"] = "81.2.69.142"
	phone.hdr["X-Forwarded-For"] = "89.160.20.112"
	pass := ta.password("alice")
	if r := win.login("alice", pass); r.code != 303 {
		t.Fatalf("login: %d", r.code)
	}
	if r := win.get("/sessions"); r.code != 200 || strings.Contains(r.body, "New sign-in") || !strings.Contains(r.body, "Recent security events") {
		t.Fatalf("after the first sign-in: %d, notice %v", r.code, strings.Contains(r.body, "New sign-in"))
	}
	if out := lines.String(); out != "" {
		t.Fatalf("the first sign-in raised an alert: %s", out)
	}
	if r := phone.login("alice", pass); r.code != 303 {
		t.Fatalf("login: %d", r.code)
	}
	r := win.get("/sessions")
	if !strings.Contains(r.body, "New sign-in from Safari on iPhone in Linköping, Sweden") {
		t.Fatalf("no notice on the first device:\n%s", r.body)
	}
	if r := phone.get("/sessions"); strings.Contains(r.body, "New sign-in") {
		t.Fatalf("the new device is told about itself")
	}
	out := lines.String()
	if !strings.Contains(out, `msg="alert: new sign-in from a new device and location" user=alice device="Safari on iPhone" location="Linköping, Sweden" ip=89.160.20.112`) {
		t.Fatalf("alert line: %q", out)
	}
	var api pages.APIEvents
	if err := json.Unmarshal([]byte(win.get("/api/sessions/events").body), &api); err != nil || len(api.Notices) != 1 || len(api.Events) != 2 {
		t.Fatalf("JSON: %v %+v", err, api)
	}

	// A hostile user agent from a third country.
	evil := ta.device(`<script>alert(1)</script><img src=x onerror=alert(2)>`)
	evil.hdr["X-Forwarded-For"] = "216.160.83.56"
	if r := evil.login("alice", pass); r.code != 303 {
		t.Fatalf("login: %d", r.code)
	}
	r = win.get("/sessions")
	if strings.Contains(r.body, "<script") || strings.Contains(r.body, "<img") || !strings.Contains(r.body, "&lt;script&gt;") ||
		!strings.Contains(r.body, "New sign-in from Unknown device in Milton, United States") {
		t.Fatalf("the hostile user agent on the page:\n%s", r.body)
	}
}

// TestBrowserAlerts signs alice in from a Windows Chromium in London, then
// from a second Chromium with an iPhone user agent in Linköping (through
// X-Forwarded-For, believed from 127.0.0.1), and reloads the first
// browser's sessions page: the notice and the events list are there; the
// notice's button revokes the iPhone, and the list says who did.
func TestBrowserAlerts(t *testing.T) {
	if _, err := exec.LookPath(chromiumPath); err != nil {
		testutil.Unavailable(t, "chromium", chromiumPath+" not found (apt-get install chromium)")
	}
	lines := captureAlerts(t)
	ta := newTestApp(t, testutil.Open(t, testutil.SQLite), config{TrustedProxies: "127.0.0.0/8,::1/128", GeoIPDir: geoFixture(t)})
	base := ta.srv.URL
	out := artifactsDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	a := browser(t, ctx, uaWindows, "81.2.69.142")
	b := browser(t, ctx, uaIPhone, "89.160.20.112")
	pass := ta.password("alice")
	browserLogin(t, a, base, "alice", pass)
	if rows := sessionRows(t, a, base); len(rows) != 1 {
		t.Fatalf("A's sessions: %q", rows)
	}
	if n, err := chromedp.Run(a, chromedp.Evaluate[int](`document.querySelectorAll("div.flash.alert").length`)); err != nil || n != 0 {
		t.Fatalf("a notice after the first sign-in: %d %v", n, err)
	}
	browserLogin(t, b, base, "alice", pass)

	// A reloads its sessions page.
	sessionRows(t, a, base)
	notice, err := chromedp.Run(a, chromedp.Text(chromedp.CSS(`div.flash.alert`)))
	if err != nil || !strings.Contains(notice, "New sign-in from Safari on iPhone in Linköping, Sweden") || !strings.Contains(notice, "just now") {
		t.Fatalf("A's notice: %q %v", notice, err)
	}
	events := eventRows(t, a)
	if len(events) != 2 || !strings.Contains(events[0], "Signed in") || !strings.Contains(events[0], "Safari on iPhone") ||
		!strings.Contains(events[0], "Linköping, Sweden") || !strings.Contains(events[0], "New device") || !strings.Contains(events[0], "New location") ||
		!strings.Contains(events[1], "This device") || !strings.Contains(events[1], "Chrome on Windows") || !strings.Contains(events[1], "London, United Kingdom") {
		t.Fatalf("A's events:\n%s", strings.Join(events, "\n"))
	}
	screenshot(t, a, filepath.Join(out, "sessions-new-sign-in.png"))
	if *docsScreenshot {
		screenshot(t, a, filepath.Join("..", "..", "docs", "sessions-new-sign-in.png"))
	}
	if !strings.Contains(lines.String(), `device="Safari on iPhone" location="Linköping, Sweden"`) {
		t.Fatalf("no alert line: %q", lines.String())
	}

	// B, the session that signed in, sees no notice about itself.
	sessionRows(t, b, base)
	if n, err := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll("div.flash.alert").length`)); err != nil || n != 0 {
		t.Fatalf("B sees %d notices (%v)", n, err)
	}

	// "This was not me": A revokes B from the notice.
	err = chromedp.Do(a,
		chromedp.Click(chromedp.CSS(`div.flash.alert button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.flash`)),
	)
	if err != nil {
		t.Fatalf("revoking from the notice: %v", err)
	}
	if p := path(t, a); p != "/sessions?done=revoked" {
		t.Fatalf("after the revoke A is on %s", p)
	}
	if notice, err := chromedp.Run(a, chromedp.Text(chromedp.CSS(`div.flash.alert`))); err != nil || !strings.Contains(notice, "That session has ended since.") {
		t.Fatalf("the notice after the revoke: %q %v", notice, err)
	}
	events = eventRows(t, a)
	if len(events) != 3 || !strings.Contains(events[0], "Revoked from this device") || !strings.Contains(events[0], "Safari on iPhone") {
		t.Fatalf("A's events after the revoke:\n%s", strings.Join(events, "\n"))
	}
	screenshot(t, a, filepath.Join(out, "sessions-events.png"))
	if err := chromedp.Do(b, chromedp.Navigate(base+"/sessions"), chromedp.WaitVisible(chromedp.CSS(`input[name=password]`))); err != nil {
		t.Fatal(err)
	}
}

// eventRows returns the text of each row of the events table of the
// page the tab is on.
func eventRows(t *testing.T, ctx context.Context) []string {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`table.events`))); err != nil {
		t.Fatalf("no events table: %v", err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("table.events tbody tr")].map(tr => tr.innerText.replace(/\s+/g, " "))`))
	if err != nil {
		t.Fatalf("reading the events: %v", err)
	}
	return rows
}
