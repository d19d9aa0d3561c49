package alerts_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/alerts"
	"github.com/qsessions/qsessions/ent/session"
	"github.com/qsessions/qsessions/internal/testutil"
)

const day = 24 * time.Hour

// TestSignInAlerts: the first sign-in is not announced; the same device
// again is not; a new device is; a new country is.
func TestSignInAlerts(t *testing.T) {
	eachEnv(t, nil, func(t *testing.T, e *env) {
		alice := e.newUser("alice")
		e.login(alice, ipLondon, uaWindows)
		if got := e.heard.take(); len(got) != 0 {
			t.Fatalf("the first sign-in was announced: %+v", got)
		}
		evs := e.events(alice)
		if len(evs) != 1 || evs[0].Kind != qsessions.EventSignIn || evs[0].Device != "Chrome on Windows" ||
			evs[0].Location != "London, United Kingdom" || evs[0].Country != "GB" || evs[0].NewDevice || evs[0].NewLocation ||
			evs[0].IP != ipLondon || evs[0].UserAgent != uaWindows {
			t.Fatalf("first sign-in logged as %+v", evs)
		}

		// The same device again (another Chrome version, another address in
		// the same country): known.
		e.clock.Advance(time.Hour)
		e.login(alice, ipBoxford, uaWindows2)
		if got := e.heard.take(); len(got) != 0 {
			t.Fatalf("a known device was announced: %+v", got)
		}

		// A new device in a known country.
		e.clock.Advance(time.Hour)
		phone := e.login(alice, ipLondon2, uaIPhone)
		got := e.heard.take()
		if len(got) != 1 || !got[0].NewDevice || got[0].NewLocation || got[0].Device != "Safari on iPhone" ||
			got[0].Location != "London, United Kingdom" || got[0].SessionID != pid(phone) || got[0].UserID != alice {
			t.Fatalf("new device: %+v", got)
		}
		if evs := e.events(alice); len(evs) != 3 || !evs[0].NewDevice || evs[0].NewLocation || evs[0].SessionID != pid(phone) {
			t.Fatalf("new device logged as %+v", evs[0])
		}

		// A known device in a new country.
		e.clock.Advance(time.Hour)
		e.login(alice, ipLinkoping, uaWindows)
		got = e.heard.take()
		if len(got) != 1 || got[0].NewDevice || !got[0].NewLocation || got[0].Location != "Linköping, Sweden" || got[0].Country != "SE" {
			t.Fatalf("new country: %+v", got)
		}
		// Sweden is known now.
		e.clock.Advance(time.Hour)
		e.login(alice, ipLinkoping2, uaIPhone)
		if got := e.heard.take(); len(got) != 0 {
			t.Fatalf("a known device in a known country was announced: %+v", got)
		}
		// A private address is a local network, never a new location.
		e.login(alice, ipLAN, uaWindows)
		if got := e.heard.take(); len(got) != 0 {
			t.Fatalf("a sign-in from the local network was announced: %+v", got)
		}
		if evs := e.events(alice); evs[0].Location != alerts.LocalNetwork || evs[0].Country != "" {
			t.Fatalf("local sign-in logged as %+v", evs[0])
		}
	})
}

// TestRecentlyEnded: a device whose only session ended 10 days ago is
// still known; 100 days later it is new again; a session the user revoked
// does not make its device known.
func TestRecentlyEnded(t *testing.T) {
	eachEnv(t, nil, func(t *testing.T, e *env) {
		bob := e.newUser("bob")
		tok := e.login(bob, ipLinkoping, uaIPhone)
		e.do("/logout", tok, ipLinkoping, uaIPhone)
		if n, _ := e.client.Session.Query().Count(context.Background()); n != 0 {
			t.Fatalf("%d sessions left", n)
		}
		e.clock.Advance(10 * day)
		tok = e.login(bob, ipLinkoping, uaIPhone)
		if got := e.heard.take(); len(got) != 0 {
			t.Fatalf("a device last seen 10 days ago was announced: %+v", got)
		}
		e.do("/logout", tok, ipLinkoping, uaIPhone)

		e.clock.Advance(100 * day)
		e.login(bob, ipLinkoping, uaIPhone)
		got := e.heard.take()
		if len(got) != 1 || !got[0].NewDevice || !got[0].NewLocation {
			t.Fatalf("a device last seen 100 days ago: %+v, want new device and location", got)
		}
	})
}

func TestRevokedIsNotKnown(t *testing.T) {
	eachEnv(t, nil, func(t *testing.T, e *env) {
		carol := e.newUser("carol")
		laptop := e.login(carol, ipLondon, uaWindows)
		thief := e.login(carol, ipMilton, uaLinux)
		if got := e.heard.take(); len(got) != 1 || !got[0].NewDevice || !got[0].NewLocation || got[0].Location != "Milton, United States" {
			t.Fatalf("the thief's sign-in: %+v", got)
		}
		// "This was not me": carol revokes it from her laptop.
		if r := e.do("/revoke?id="+pid(thief), laptop, ipLondon, uaWindows); r.code != 200 {
			t.Fatalf("revoke: %d %s", r.code, r.body)
		}
		e.clock.Advance(time.Hour)
		e.login(carol, ipMilton, uaLinux)
		if got := e.heard.take(); len(got) != 1 || !got[0].NewDevice || !got[0].NewLocation {
			t.Fatalf("the thief again after the revoke: %+v, want an alert", got)
		}
	})
}

// TestLocationChange: an IP change mid-session is logged and announced
// when it changes the country, once per country a day; within a country,
// or from a private address, it writes nothing.
func TestLocationChange(t *testing.T) {
	eachEnv(t, nil, func(t *testing.T, e *env) {
		dave := e.newUser("dave")
		tok := e.login(dave, ipLondon, uaWindows)
		step := func(ip string) {
			t.Helper()
			e.clock.Advance(2 * qsessions.DefaultActivityInterval)
			if r := e.do("/whoami", tok, ip, uaWindows); r.code != 200 {
				t.Fatalf("request from %s: %d %s", ip, r.code, r.body)
			}
		}
		step(ipBoxford) // same country
		if got := e.heard.take(); len(got) != 0 || len(e.events(dave)) != 1 {
			t.Fatalf("a change within the country: %+v, %d events", got, len(e.events(dave)))
		}
		step(ipLinkoping)
		got := e.heard.take()
		if len(got) != 1 || got[0].Kind != qsessions.EventIPChange || got[0].Location != "Linköping, Sweden" ||
			got[0].PreviousIP != ipBoxford || got[0].IP != ipLinkoping || got[0].SessionID != pid(tok) {
			t.Fatalf("change of country: %+v", got)
		}
		evs := e.events(dave)
		if len(evs) != 2 || evs[0].Kind != qsessions.EventIPChange || evs[0].Country != "SE" || evs[0].Device != "Chrome on Windows" {
			t.Fatalf("logged: %+v", evs)
		}
		step(ipLondon)    // back: a change to GB, not logged today yet
		step(ipLinkoping) // again to SE the same day: once is enough
		step(ipLondon)
		if got := e.heard.take(); len(got) != 1 || got[0].Country != "GB" {
			t.Fatalf("flipping between two countries: %+v, want one alert (to GB)", got)
		}
		if n := len(e.events(dave)); n != 3 {
			t.Fatalf("%d events after the flips, want 3", n)
		}
		// The next day, a change to SE is news again.
		e.clock.Advance(day)
		step(ipLinkoping)
		if got := e.heard.take(); len(got) != 1 || got[0].Country != "SE" {
			t.Fatalf("a change the next day: %+v", got)
		}
		// To and from a private address: no country to compare.
		step(ipLAN)
		step(ipMilton)
		if got := e.heard.take(); len(got) != 0 {
			t.Fatalf("changes through a private address: %+v", got)
		}
	})
}

// TestRevokesLogged: every way a session ends is logged with its cause
// and, where known, who asked; none is announced.
func TestRevokesLogged(t *testing.T) {
	eachEnv(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.m.MaxSessionsPerUser = 3
		erin := e.newUser("erin")
		mac := e.login(erin, ipLondon, uaWindows)
		phone := e.login(erin, ipLondon, uaIPhone)
		e.do("/revoke?id="+pid(phone), mac, ipLondon, uaWindows) // owner
		a := e.login(erin, ipLondon, uaWindows)
		if err := e.m.AdminRevoke(ctx, pid(a)); err != nil { // admin
			t.Fatal(err)
		}
		b := e.login(erin, ipLondon, uaWindows)
		if _, err := e.m.RevokeUser(qsessions.WithCause(ctx, qsessions.CauseCLI), erin); err != nil { // cli: mac and b
			t.Fatal(err)
		}
		c := e.login(erin, ipLondon, uaWindows)
		if _, err := e.m.RevokeUser(ctx, erin); err != nil { // app
			t.Fatal(err)
		}
		// The cap: a fourth session ends the oldest.
		var toks []string
		for range 4 {
			e.clock.Advance(time.Second)
			toks = append(toks, e.login(erin, ipLondon, uaWindows))
		}
		e.do("/logout", toks[3], ipLondon, uaWindows) // sign-out
		e.do("/revoke-others", toks[2], ipLondon, uaWindows)
		if _, err := e.client.Session.Delete().Where(session.UserID(erin)).Exec(ctx); err != nil { // ent
			t.Fatal(err)
		}
		type key struct {
			kind  qsessions.EventKind
			cause qsessions.Cause
			sid   string
		}
		have := map[key]qsessions.LoggedEvent{}
		for _, ev := range e.events(erin) {
			if ev.Kind != qsessions.EventSignIn {
				have[key{ev.Kind, ev.Cause, ev.SessionID}] = ev
			}
		}
		want := []key{
			{qsessions.EventRevoke, qsessions.CauseOwner, pid(phone)},
			{qsessions.EventRevoke, qsessions.CauseAdmin, pid(a)},
			{qsessions.EventRevoke, qsessions.CauseCLI, pid(mac)},
			{qsessions.EventRevoke, qsessions.CauseCLI, pid(b)},
			{qsessions.EventRevoke, qsessions.CauseApp, pid(c)},
			{qsessions.EventRevoke, qsessions.CauseCap, pid(toks[0])},
			{qsessions.EventSignOut, "", pid(toks[3])},
			{qsessions.EventRevoke, qsessions.CauseOwner, pid(toks[1])},
			{qsessions.EventRevoke, qsessions.CauseEnt, pid(toks[2])},
		}
		for _, k := range want {
			if _, ok := have[k]; !ok {
				t.Errorf("not logged: %s %s of %s", k.kind, k.cause, k.sid)
			}
		}
		if len(have) != len(want) {
			t.Errorf("logged %d ends, want %d: %+v", len(have), len(want), have)
		}
		if ev := have[want[0]]; ev.ByID != pid(mac) || ev.Device != "Safari on iPhone" || ev.Location != "London, United Kingdom" {
			t.Errorf("the owner's revoke: %+v", ev)
		}
		if got := e.heard.take(); len(got) != 1 || got[0].Kind != qsessions.EventSignIn { // the iPhone, once
			t.Errorf("notified: %+v", got)
		}
		if out := e.logs.String(); strings.Contains(out, "level=ERROR") {
			t.Errorf("errors logged:\n%s", out)
		}
	})
}

// TestUserDeleted: deleting a user ends their sessions through the
// cascade; the log has nowhere to put those ends (its rows cascade too).
func TestUserDeleted(t *testing.T) {
	eachEnv(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		fay := e.newUser("fay")
		e.login(fay, ipLondon, uaWindows)
		if err := e.client.User.DeleteOneID(fay).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if n := e.client.SessionEvent.Query().CountX(ctx); n != 0 {
			t.Fatalf("%d events of a deleted user", n)
		}
		if out := e.logs.String(); strings.Contains(out, "level=ERROR") {
			t.Fatalf("deleting a user logged errors:\n%s", out)
		}
	})
}

// TestCleanup: events older than Retention go, in batches; newer stay.
func TestCleanup(t *testing.T) {
	eachEnv(t, func(o *alerts.Options) { o.Retention = 100 * day }, func(t *testing.T, e *env) {
		ctx := context.Background()
		gus := e.newUser("gus")
		e.login(gus, ipLondon, uaWindows)
		e.clock.Advance(50 * day)
		e.login(gus, ipLondon, uaWindows)
		e.clock.Advance(51 * day)
		if n, err := e.a.Cleanup(ctx); err != nil || n != 1 {
			t.Fatalf("Cleanup = %d, %v; want the one event older than 100 days", n, err)
		}
		if evs := e.events(gus); len(evs) != 1 {
			t.Fatalf("%d events left", len(evs))
		}
		if n, err := e.a.Cleanup(ctx); err != nil || n != 0 {
			t.Fatalf("second Cleanup = %d, %v", n, err)
		}
	})
}

// TestCleanupBatches: Cleanup keeps calling DeleteBefore until a batch
// comes back short.
func TestCleanupBatches(t *testing.T) {
	clock := testutil.NewClock()
	m := qsessions.New(nil)
	m.Now = clock.Now
	log := alerts.NewMemLog()
	for i := range 2*alerts.CleanupBatch + 5 {
		_ = log.Append(context.Background(), qsessions.LoggedEvent{Event: qsessions.Event{Kind: qsessions.EventSignIn, UserID: 1, Time: clock.Now().Add(time.Duration(i) * time.Second)}})
	}
	_ = log.Append(context.Background(), qsessions.LoggedEvent{Event: qsessions.Event{Kind: qsessions.EventSignIn, UserID: 1, Time: clock.Now().Add(50 * day)}})
	a, err := alerts.New(alerts.Options{Manager: m, Log: log, Retention: 10 * day, Window: day})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(20 * day)
	if n, err := a.Cleanup(context.Background()); err != nil || n != 2*alerts.CleanupBatch+5 || log.Len() != 1 {
		t.Fatalf("Cleanup = %d, %v; %d left", n, err, log.Len())
	}
}

// failingLog fails every call, or blocks until the context ends.
type failingLog struct {
	block bool
	calls atomic.Int32
}

var errLogDown = errors.New("log down")

func (l *failingLog) wait(ctx context.Context) error {
	l.calls.Add(1)
	if l.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return errLogDown
}

func (l *failingLog) Append(ctx context.Context, _ qsessions.LoggedEvent) error { return l.wait(ctx) }
func (l *failingLog) Recent(ctx context.Context, _ any, _ time.Time, _ int) ([]qsessions.LoggedEvent, error) {
	return nil, l.wait(ctx)
}
func (l *failingLog) DeleteBefore(ctx context.Context, _ time.Time, _ int) (int, error) {
	return 0, l.wait(ctx)
}

// TestFailingLogNeverFailsTheLogin: a log that errors, or hangs, costs
// the login at most Timeout and a rate-limited log line, never the
// sign-in.
func TestFailingLogNeverFailsTheLogin(t *testing.T) {
	for _, block := range []bool{false, true} {
		name := "erroring"
		if block {
			name = "hanging"
		}
		t.Run(name, func(t *testing.T) {
			fl := &failingLog{block: block}
			e := newEnv(t, testutil.Open(t, testutil.SQLite), func(o *alerts.Options) { o.Log = fl; o.Timeout = 100 * time.Millisecond })
			u := e.newUser("hal")
			start := time.Now()
			tok := e.login(u, ipLondon, uaWindows)
			tok2 := e.login(u, ipMilton, uaLinux)
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("two logins took %s with a hanging log (Timeout 100ms)", d)
			}
			if r := e.do("/whoami", tok, ipLondon, uaWindows); r.body != "1" {
				t.Fatalf("the session did not stand: %d %q", r.code, r.body)
			}
			e.do("/logout", tok2, ipMilton, uaLinux)
			out := e.logs.String()
			if !strings.Contains(out, "alerts: reading the security log for a sign-in failed; no alert") {
				t.Fatalf("the failure was not logged:\n%s", out)
			}
			if n := strings.Count(out, "level=ERROR"); n > 2 { // recent, append: once a minute each
				t.Fatalf("%d error lines (want rate-limited):\n%s", n, out)
			}
			if fl.calls.Load() < 4 {
				t.Fatalf("the log was asked %d times", fl.calls.Load())
			}
			if got := e.heard.take(); len(got) != 0 {
				t.Fatalf("notified without a log: %+v", got)
			}
		})
	}
}

// TestNotifyPanics: a panicking Notify is logged; the login stands and
// the log is written.
func TestNotifyPanics(t *testing.T) {
	e := newEnv(t, testutil.Open(t, testutil.SQLite), func(o *alerts.Options) {
		o.Notify = func(context.Context, qsessions.LoggedEvent) { panic("mailer bug") }
	})
	u := e.newUser("ivy")
	e.login(u, ipLondon, uaWindows)
	tok := e.login(u, ipMilton, uaLinux)
	if r := e.do("/whoami", tok, ipMilton, uaLinux); r.body != "1" {
		t.Fatalf("the login did not stand: %q", r.body)
	}
	if evs := e.events(u); len(evs) != 2 || !evs[0].NewDevice {
		t.Fatalf("logged %+v", evs)
	}
	if !strings.Contains(e.logs.String(), "Options.Notify panicked") {
		t.Fatalf("not logged:\n%s", e.logs.String())
	}
}

// TestStatements counts what the alerts add to each event, on the
// generated log: a sign-in 3 statements, an end 1, a change of address
// within a country none, a change of country 2.
func TestStatements(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		e := newEnv(t, db, nil)
		u := e.newUser("jo")
		e.login(u, ipLondon, uaWindows) // a first session, so the next sign-in has something to compare with

		measure := func(f func()) int {
			e.drv.Reset()
			f()
			return e.drv.Count()
		}
		var tok string
		with := measure(func() { tok = e.login(u, ipLondon, uaIPhone) })
		withOut := measure(func() { e.m.OnEvent = nil; e.login(u, ipLondon, uaIPhone); e.a.Attach() })
		if d := with - withOut; d != 3 {
			t.Errorf("a sign-in costs %d more statements with alerts, want 3 (%d vs %d)", d, with, withOut)
		}
		step := func(ip string) func() {
			return func() {
				e.clock.Advance(2 * qsessions.DefaultActivityInterval)
				e.do("/whoami", tok, ip, uaIPhone)
			}
		}
		// Each request loads the session (one SELECT); a change of address
		// is written with the activity (one UPDATE).
		if n := measure(step(ipBoxford)); n != 2 {
			t.Errorf("a change within the country: %d statements, want the load and the activity write only", n)
		}
		if n := measure(step(ipLinkoping)); n != 4 {
			t.Errorf("a change of country: %d statements, want the load, the activity write + 2", n)
		}
		if n := measure(func() { e.do("/logout", tok, ipLinkoping, uaIPhone) }); n != 3 {
			t.Errorf("a sign-out: %d statements, want the load, the DELETE + 1", n)
		}
	})
}

func TestNewErrors(t *testing.T) {
	m := qsessions.New(nil)
	log := alerts.NewMemLog()
	for _, tc := range []struct {
		o    alerts.Options
		want string
	}{
		{alerts.Options{Log: log}, "Options.Manager is required"},
		{alerts.Options{Manager: m}, "Options.Log is required"},
		{alerts.Options{Manager: m, Log: log, Window: -1}, "must not be negative"},
		{alerts.Options{Manager: m, Log: log, Scan: -1}, "Options.Scan"},
		{alerts.Options{Manager: m, Log: log, Window: 10 * day, Retention: day}, "Retention (24h0m0s) is shorter than Window"},
	} {
		if _, err := alerts.New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", tc.o, err, tc.want)
		}
	}
	a, err := alerts.New(alerts.Options{Manager: m, Log: log, Window: 200 * day})
	if err != nil {
		t.Fatal(err)
	}
	if o := a.Options(); o.Retention != 200*day || o.Scan != alerts.DefaultScan || o.Timeout != alerts.DefaultTimeout {
		t.Fatalf("defaults: %+v", o)
	}
}

// TestAttachChains: an OnEvent set before Attach keeps being called.
func TestAttachChains(t *testing.T) {
	e := newEnv(t, testutil.Open(t, testutil.SQLite), nil)
	var before atomic.Int32
	e.m.OnEvent = func(context.Context, qsessions.Event) { before.Add(1) }
	e.a.Attach()
	kim := e.newUser("kim")
	e.login(kim, ipLondon, uaWindows)
	if before.Load() != 1 || len(e.events(kim)) != 1 {
		t.Fatalf("earlier hook called %d times, %d events logged", before.Load(), len(e.events(kim)))
	}
}

// TestAnonymousIgnored: events without a user are neither logged nor
// judged.
func TestAnonymousIgnored(t *testing.T) {
	log := alerts.NewMemLog()
	a, err := alerts.New(alerts.Options{Manager: qsessions.New(nil), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	a.Hook(context.Background(), qsessions.Event{Kind: qsessions.EventSignOut})
	if log.Len() != 0 {
		t.Fatal("an anonymous event was logged")
	}
}
