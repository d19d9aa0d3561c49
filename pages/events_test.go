package pages_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/alerts"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/location"
	"github.com/qsessions/qsessions/middleware"
	"github.com/qsessions/qsessions/pages"
)

// countryLocator knows London and Linköping, with country codes.
type countryLocator struct{}

func (countryLocator) Lookup(ip netip.Addr) (location.Info, error) {
	switch {
	case netip.MustParsePrefix("81.2.69.0/24").Contains(ip):
		return location.Info{City: "London", Country: "United Kingdom", CountryCode: "GB"}, nil
	case netip.MustParsePrefix("89.160.20.0/24").Contains(ip):
		return location.Info{City: "Linköping", Country: "Sweden", CountryCode: "SE"}, nil
	}
	return location.Info{}, nil
}

// eventsEnv is a server with the pages over a Manager whose events package
// alerts logs in memory (or events, when set).
type eventsEnv struct {
	*env
	log *alerts.MemLog
}

func newEventsEnv(t *testing.T, events qsessions.EventLog) *eventsEnv {
	t.Helper()
	store := backend.NewMemStore()
	m := qsessions.New(backend.NewDB(store))
	e := &eventsEnv{env: &env{t: t, m: m, store: store, admin: &memAdmin{m: m}}, log: alerts.NewMemLog()}
	a, err := alerts.New(alerts.Options{Manager: m, Log: e.log, Locator: countryLocator{}})
	if err != nil {
		t.Fatal(err)
	}
	a.Attach()
	if events == nil {
		events = e.log
	}
	p, err := pages.New(pages.Config{
		Manager:  m,
		UserName: func(_ context.Context, id any) string { return names[intOr0(id)] },
		Locator:  countryLocator{},
		Events:   events,
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	p.Register(mux)
	e.srv = httptest.NewServer(middleware.New(m, middleware.Options{
		Cookie:         middleware.Cookie{Insecure: true},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
	})(mux))
	t.Cleanup(e.srv.Close)
	return e
}

func TestEventsOnSessionsPage(t *testing.T) {
	e := newEventsEnv(t, nil)
	win, _ := e.login(2, "81.2.69.142", uaWindows)
	phone, phoneID := e.login(2, "89.160.20.112", uaIPhone)
	from := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }

	r := e.do("GET", "/sessions", win, from("81.2.69.142"))
	if r.code != http.StatusOK {
		t.Fatalf("GET /sessions: %d %s", r.code, r.body)
	}
	notice := `<div class="flash alert" role="alert" id="notice-` + phoneID + `"><b>New sign-in from Safari on iPhone in Linköping, Sweden</b>`
	for _, want := range []string{
		notice,
		`If this was not you, revoke that session`,
		`<form method="post" action="/sessions/` + phoneID + `/revoke" class="inline"><button class="btn danger">Revoke it</button>`,
		"<h2>Recent security events</h2>",
		`<table class="events">`,
		`<span class="badge new">New device</span><span class="badge new">New location</span>`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("the sessions page lacks %q", want)
		}
	}
	if n := strings.Count(r.body, `<tr class="event">`); n != 2 {
		t.Errorf("%d events listed, want 2", n)
	}
	// Newest first: the phone's sign-in, then this device's.
	if i, j := strings.Index(r.body, "Safari on iPhone</span>"), strings.Index(r.body, "<b>Signed in</b><span class=\"badge current\">This device</span>"); i < 0 || j < 0 || i > j {
		t.Errorf("order of the events: phone at %d, this device at %d", i, j)
	}
	if csp := r.h.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'none'") || strings.Contains(csp, "script") {
		t.Errorf("CSP %q", csp)
	}
	// The session that signed in is not told about itself.
	if r := e.do("GET", "/sessions", phone, from("89.160.20.112")); r.code != 200 || strings.Contains(r.body, "New sign-in") || !strings.Contains(r.body, "Recent security events") {
		t.Errorf("the new session's own page: %d, notice shown: %v", r.code, strings.Contains(r.body, "New sign-in"))
	}

	// Revoked from the Windows session: the notice stays (it happened), the
	// list says who did it.
	if r := e.do("POST", "/sessions/"+phoneID+"/revoke", win, from("81.2.69.142")); r.code != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.code)
	}
	r = e.do("GET", "/sessions", win, from("81.2.69.142"))
	if !strings.Contains(r.body, notice) || !strings.Contains(r.body, "That session has ended since.") || strings.Contains(r.body, "Revoke it") {
		t.Errorf("the notice after the revoke:\n%s", r.body)
	}
	if !strings.Contains(r.body, "<b>Revoked</b> <span class=\"muted\">from this device</span>") {
		t.Errorf("the revoke is not listed with who did it:\n%s", r.body)
	}

	// A week later the notice is gone; the events stay.
	e.m.Now = func() time.Time { return time.Now().Add(pages.NoticeAge + time.Minute) }
	r = e.do("GET", "/sessions", win, from("81.2.69.142"))
	if strings.Contains(r.body, "New sign-in") || !strings.Contains(r.body, "Safari on iPhone") {
		t.Errorf("a week later: notice %v", strings.Contains(r.body, "New sign-in"))
	}
}

// TestEventsEscaped: user agents are the attacker's, and so is anything a
// log row holds: every field reaches the page escaped.
func TestEventsEscaped(t *testing.T) {
	e := newEventsEnv(t, nil)
	win, _ := e.login(2, "81.2.69.142", uaWindows)
	const evil = `"><script>alert(1)</script><img src=x onerror=alert(2)>`
	_, evilID := e.login(2, "89.160.20.112", evil)
	ctx := context.Background()
	_ = e.log.Append(ctx, qsessions.LoggedEvent{
		Event:  qsessions.Event{Kind: qsessions.EventSignIn, UserID: 2, Time: time.Now(), SessionID: "0123456789abcdef", IP: evil, UserAgent: evil},
		Device: evil, Location: evil, Country: "XX", NewDevice: true,
	})
	_ = e.log.Append(ctx, qsessions.LoggedEvent{
		Event: qsessions.Event{Kind: qsessions.EventKind(evil), Cause: qsessions.Cause(evil), UserID: 2, Time: time.Now(), SessionID: evil, ByID: evil},
	})
	r := e.do("GET", "/sessions", win, map[string]string{"X-Forwarded-For": "81.2.69.142"})
	if r.code != 200 {
		t.Fatalf("GET /sessions: %d", r.code)
	}
	for _, bad := range []string{"<script", "<img"} {
		if strings.Contains(r.body, bad) {
			t.Errorf("the page holds %q raw", bad)
		}
	}
	if !strings.Contains(r.body, `title="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"`) {
		t.Errorf("the user agent's title attribute is not escaped as expected")
	}
	if !strings.Contains(r.body, "New sign-in from Unknown device in Linköping, Sweden") || !strings.Contains(r.body, `id="notice-`+evilID+`"`) {
		t.Errorf("the hostile user agent's notice is missing")
	}
	if !strings.Contains(r.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the escaped text is missing")
	}
}

func TestEventsAPI(t *testing.T) {
	e := newEventsEnv(t, nil)
	win, winID := e.login(2, "81.2.69.142", uaWindows)
	_, phoneID := e.login(2, "89.160.20.112", uaIPhone)
	if r := e.do("POST", "/sessions/"+phoneID+"/revoke", win, nil); r.code != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.code)
	}
	r := e.do("GET", "/api/sessions/events", win, nil)
	var got pages.APIEvents
	if err := json.Unmarshal([]byte(r.body), &got); err != nil || r.code != 200 {
		t.Fatalf("GET /api/sessions/events: %d %v\n%s", r.code, err, r.body)
	}
	if len(got.Notices) != 1 || got.Notices[0].Text != "New sign-in from Safari on iPhone in Linköping, Sweden" || got.Notices[0].Live ||
		got.Notices[0].SessionID != phoneID || !got.Notices[0].NewDevice || !got.Notices[0].NewLocation {
		t.Errorf("notices: %+v", got.Notices)
	}
	if len(got.Events) != 3 || got.Events[0].Kind != qsessions.EventRevoke || got.Events[0].Cause != qsessions.CauseOwner ||
		got.Events[0].Summary != "Revoked from this device" || got.Events[0].BySessionID != winID || got.Events[0].Device != "Safari on iPhone" ||
		got.Events[2].Kind != qsessions.EventSignIn || !got.Events[2].Current {
		t.Errorf("events: %+v", got.Events)
	}
	if r := e.do("GET", "/api/sessions/events", nil, nil); r.code != http.StatusUnauthorized {
		t.Errorf("anonymous: %d", r.code)
	}
}

// brokenLog fails every read.
type brokenLog struct{ alerts.MemLog }

func (*brokenLog) Recent(context.Context, any, time.Time, int) ([]qsessions.LoggedEvent, error) {
	return nil, errors.New("log down")
}

// TestEventsLogDown: the sessions page renders without the events; the
// JSON answers 503.
func TestEventsLogDown(t *testing.T) {
	e := newEventsEnv(t, &brokenLog{})
	win, _ := e.login(2, "81.2.69.142", uaWindows)
	r := e.do("GET", "/sessions", win, nil)
	if r.code != 200 || !strings.Contains(r.body, "Your security events could not be read just now.") || !strings.Contains(r.body, "Chrome on Windows") {
		t.Fatalf("the sessions page with the log down: %d\n%s", r.code, r.body)
	}
	if r := e.do("GET", "/api/sessions/events", win, nil); r.code != http.StatusServiceUnavailable || r.h.Get("Retry-After") == "" {
		t.Fatalf("the JSON with the log down: %d", r.code)
	}
}

// TestNoEventsConfigured: without Config.Events nothing is shown and the
// JSON route does not exist.
func TestNoEventsConfigured(t *testing.T) {
	e := newEnv(t, "")
	c, _ := e.login(2, "81.2.69.142", uaWindows)
	if r := e.do("GET", "/sessions", c, nil); strings.Contains(r.body, "security events") || strings.Contains(r.body, "New sign-in") {
		t.Errorf("events shown without Config.Events")
	}
	if r := e.do("GET", "/api/sessions/events", c, nil); r.code != http.StatusNotFound {
		t.Errorf("GET /api/sessions/events without Config.Events: %d", r.code)
	}
}
