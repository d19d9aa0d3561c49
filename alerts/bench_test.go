package alerts_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/alerts"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/ent/sessionevent"
	"github.com/qsessions/qsessions/internal/testutil"
)

// BenchmarkHook times the alerts' own work per event on the generated log,
// on each database: a sign-in (the user's live sessions, the log's newest
// events, one INSERT) for a user with 3 live sessions and 20 logged events
// (a typical user) or 200 (Scan: the bound), a sign-out (one INSERT), an
// IP change within a country (GeoIP lookups only) and a change of country
// logged already today (one SELECT of the day's events).
func BenchmarkHook(b *testing.B) {
	for _, d := range testutil.AllDialects {
		b.Run(d, func(b *testing.B) {
			e := newEnv(b, testutil.Open(b, d), nil)
			ctx := context.Background()
			user := func(name string, events int) any {
				u := e.newUser(name)
				e.login(u, ipLondon, uaWindows)
				e.login(u, ipBoxford, uaWindows2)
				e.login(u, ipLinkoping, uaIPhone)
				for i := range events - 3 {
					e.clock.Advance(time.Minute)
					_ = e.log.Append(ctx, qsessions.LoggedEvent{Event: qsessions.Event{Kind: qsessions.EventSignOut, UserID: u,
						Time: e.clock.Now(), SessionID: fmt.Sprintf("%016x", i), IP: ipLondon, UserAgent: uaWindows}, Device: "Chrome on Windows"})
				}
				return u
			}
			typical, heavy := user("typical", 20), user("heavy", 2*alerts.DefaultScan)
			event := func(u any, kind qsessions.EventKind, ip, prev string) qsessions.Event {
				return qsessions.Event{Kind: kind, UserID: u, SessionID: "0123456789abcdef", UserAgent: uaLinux, IP: ip, PreviousIP: prev}
			}
			moved := event(heavy, qsessions.EventIPChange, ipLinkoping, ipLondon)
			for _, c := range []struct {
				name string
				ev   qsessions.Event
				undo bool // delete what the run logged, so the user stays as described
			}{
				{"sign-in/20-events", event(typical, qsessions.EventSignIn, ipMilton, ""), true},
				{"sign-in/200-events", event(heavy, qsessions.EventSignIn, ipMilton, ""), true},
				{"sign-out", event(typical, qsessions.EventSignOut, ipMilton, ""), true},
				{"ip-change/same-country", event(typical, qsessions.EventIPChange, ipBoxford, ipLondon), false},
				{"ip-change/country-logged-today", moved, false},
			} {
				if c.name == "ip-change/country-logged-today" {
					moved.Time = e.clock.Now()
					e.a.Hook(ctx, moved) // logged once: the runs find it
				}
				b.Run(c.name, func(b *testing.B) {
					e.drv.Reset()
					n, undone := 0, 0
					ev := c.ev
					for b.Loop() {
						// Events a second apart, as in life (rows with equal
						// times would cost Recent a sort of them all).
						e.clock.Advance(time.Second)
						ev.Time = e.clock.Now()
						e.a.Hook(ctx, ev)
						n++
						if c.undo {
							b.StopTimer()
							before := e.drv.Count()
							e.client.SessionEvent.Delete().Where(sessionevent.SessionID(ev.SessionID)).ExecX(ctx)
							undone += e.drv.Count() - before
							b.StartTimer()
						}
					}
					b.ReportMetric(float64(e.drv.Count()-undone)/float64(n), "statements/op")
				})
			}
		})
	}
}

// BenchmarkLogin times a whole sign-in and sign-out through the middleware
// (session INSERT, cap check, DELETE), without and with the alerts, on
// each database: the difference is what alerts cost a login.
func BenchmarkLogin(b *testing.B) {
	for _, d := range testutil.AllDialects {
		b.Run(d, func(b *testing.B) {
			e := newEnv(b, testutil.Open(b, d), nil)
			u := e.newUser("bench")
			e.login(u, ipLondon, uaWindows)
			for _, with := range []bool{false, true} {
				name := "without-alerts"
				if with {
					name = "with-alerts"
				}
				b.Run(name, func(b *testing.B) {
					e.m.OnEvent = nil
					if with {
						e.a.Attach()
					}
					for b.Loop() {
						e.clock.Advance(time.Second)
						tok := e.login(u, ipLinkoping, uaIPhone)
						e.do("/logout", tok, ipLinkoping, uaIPhone)
					}
				})
			}
		})
	}
}

// BenchmarkCleanup deletes 10,000 events past Retention (10 batches of
// CleanupBatch: a SELECT of ids on the created_at index and a DELETE each)
// from a log that keeps 10,000 newer ones; ns/op is per 10,000 deleted.
func BenchmarkCleanup(b *testing.B) {
	for _, d := range testutil.AllDialects {
		b.Run(d, func(b *testing.B) {
			e := newEnv(b, testutil.Open(b, d), nil)
			ctx := context.Background()
			u := e.newUser("bench")
			fill := func(at time.Time, n int) {
				for i := 0; i < n; i += 500 {
					bulk := make([]*ent.SessionEventCreate, 0, 500)
					for j := range 500 {
						bulk = append(bulk, e.client.SessionEvent.Create().SetUserID(u).SetKind("sign-in").SetSessionID(fmt.Sprintf("%016x", i+j)).
							SetIP(ipLondon).SetUserAgent(uaWindows).SetDevice("Chrome on Windows").SetLocation("London, United Kingdom").SetCountry("GB").
							SetCreatedAt(at.Add(time.Duration(i+j)*time.Second)))
					}
					e.client.SessionEvent.CreateBulk(bulk...).ExecX(ctx)
				}
			}
			fill(e.clock.Now().Add(time.Hour), 10000) // kept
			for b.Loop() {
				b.StopTimer()
				fill(e.clock.Now().Add(-alerts.DefaultRetention-30*day), 10000)
				b.StartTimer()
				if n, err := e.a.Cleanup(ctx); err != nil || n != 10000 {
					b.Fatalf("Cleanup = %d, %v", n, err)
				}
			}
		})
	}
}
