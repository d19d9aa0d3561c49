package qsessions_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/ent/session"
)

// eventLog records what Manager.OnEvent heard.
type eventLog struct {
	mu     sync.Mutex
	events []qsessions.Event
}

func (l *eventLog) on(_ context.Context, e qsessions.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// take returns the events since the last take.
func (l *eventLog) take() []qsessions.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}

func listen(e *env) *eventLog {
	l := &eventLog{}
	e.m.OnEvent = l.on
	return l
}

func (e *env) login(user int, ip, ua string) string {
	e.t.Helper()
	r := e.do(req{path: "/login?user=" + strconv.Itoa(user), ip: ip, ua: ua})
	if r.code != 200 || r.cookie == "" {
		e.t.Fatalf("login: %d %s", r.code, r.body)
	}
	return r.cookie
}

func pid(token string) string { return backend.PublicID(backend.KeyOf(token)) }

func TestEventsSignInOutAndRevokes(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		log := listen(e)
		ctx := context.Background()
		alice := e.newUser("alice")
		mac := e.login(alice, "192.0.2.10", "Mac/1")
		got := log.take()
		if len(got) != 1 || got[0].Kind != qsessions.EventSignIn || got[0].UserID != alice || got[0].SessionID != pid(mac) ||
			got[0].IP != "192.0.2.10" || got[0].UserAgent != "Mac/1" || got[0].Time.IsZero() {
			t.Fatalf("sign-in: %+v", got)
		}
		phone := e.login(alice, "198.51.100.7", "Phone/1")
		tablet := e.login(alice, "198.51.100.8", "Tablet/1")
		log.take()

		// The owner ends the phone's session from the Mac.
		if r := e.do(req{path: "/revoke?id=" + pid(phone), cookie: mac}); r.code != 200 {
			t.Fatalf("revoke: %d %s", r.code, r.body)
		}
		got = log.take()
		if len(got) != 1 || got[0].Kind != qsessions.EventRevoke || got[0].Cause != qsessions.CauseOwner ||
			got[0].SessionID != pid(phone) || got[0].ByID != pid(mac) || got[0].IP != "198.51.100.7" || got[0].UserID != alice {
			t.Fatalf("revoke by the owner: %+v", got)
		}
		// "Sign out everywhere else" from the Mac ends the tablet.
		e.do(req{path: "/revoke-others", cookie: mac})
		if got = log.take(); len(got) != 1 || got[0].Cause != qsessions.CauseOwner || got[0].SessionID != pid(tablet) {
			t.Fatalf("revoke others: %+v", got)
		}
		// Sign-out from the session itself.
		e.do(req{path: "/logout", cookie: mac})
		if got = log.take(); len(got) != 1 || got[0].Kind != qsessions.EventSignOut || got[0].Cause != "" || got[0].SessionID != pid(mac) {
			t.Fatalf("sign-out: %+v", got)
		}
		// An admin, and the CLI (a labelled RevokeUser).
		a := e.login(alice, "192.0.2.20", "A/1")
		b := e.login(alice, "192.0.2.21", "B/1")
		log.take()
		if err := e.m.AdminRevoke(ctx, pid(a)); err != nil {
			t.Fatal(err)
		}
		if got = log.take(); len(got) != 1 || got[0].Cause != qsessions.CauseAdmin || got[0].SessionID != pid(a) {
			t.Fatalf("admin revoke: %+v", got)
		}
		if n, err := e.m.RevokeUser(qsessions.WithCause(ctx, qsessions.CauseCLI), alice); err != nil || n != 1 {
			t.Fatal(n, err)
		}
		if got = log.take(); len(got) != 1 || got[0].Cause != qsessions.CauseCLI || got[0].SessionID != pid(b) {
			t.Fatalf("CLI revoke: %+v", got)
		}
		if _, err := e.m.RevokeUser(ctx, alice); err != nil {
			t.Fatal(err)
		}
		if got = log.take(); len(got) != 0 {
			t.Fatalf("a revoke that ended nothing reported %+v", got)
		}
	})
}

func TestEventsCapEntAndIPChange(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		log := listen(e)
		ctx := context.Background()
		e.m.MaxSessionsPerUser = 2
		bob := e.newUser("bob")
		first := e.login(bob, "192.0.2.1", "One")
		e.clock.Advance(time.Second)
		e.login(bob, "192.0.2.2", "Two")
		e.clock.Advance(time.Second)
		log.take()
		third := e.login(bob, "192.0.2.3", "Three")
		got := log.take()
		if len(got) != 2 || got[0].Kind != qsessions.EventSignIn || got[1].Cause != qsessions.CauseCap || got[1].SessionID != pid(first) {
			t.Fatalf("login past the cap: %+v", got)
		}

		// A change of address, recorded with the activity write.
		e.clock.Advance(2 * qsessions.DefaultActivityInterval)
		e.do(req{path: "/get?k=x", cookie: third, ip: "203.0.113.9", ua: "Three"})
		got = log.take()
		if len(got) != 1 || got[0].Kind != qsessions.EventIPChange || got[0].PreviousIP != "192.0.2.3" || got[0].IP != "203.0.113.9" {
			t.Fatalf("IP change: %+v", got)
		}

		// ent deletes, outside the session API: reported with the owner,
		// inside a transaction once, on commit.
		tx, err := e.client.Tx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Session.Delete().Where(session.UserID(bob)).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if got = log.take(); len(got) != 0 {
			t.Fatalf("reported before the commit: %+v", got)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		got = log.take()
		ids := []string{}
		for _, ev := range got {
			if ev.Cause != qsessions.CauseEnt || ev.UserID != bob {
				t.Errorf("ent delete event %+v", ev)
			}
			ids = append(ids, ev.SessionID)
		}
		if slices.Sort(ids); len(ids) != 2 || !slices.Contains(ids, pid(third)) {
			t.Fatalf("ent delete reported %v", ids)
		}
	})
}

// TestEventHookNeverFailsTheRequest: a panicking hook is logged; the
// login stands.
func TestEventHookNeverFailsTheRequest(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		e.m.OnEvent = func(context.Context, qsessions.Event) { panic("hook bug") }
		tok := e.login(e.newUser("carol"), "192.0.2.1", "A")
		if r := e.do(req{path: "/whoami", cookie: tok}); r.body == "<nil>" {
			t.Fatal("the login did not stand")
		}
	})
}

// TestNoHookNoKeyReads: without OnEvent (and without a cache) an ent
// delete of sessions runs its one statement, no SELECT of keys.
func TestNoHookNoKeyReads(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		if _, cached := e.calls.Backend.(*backend.CachedDB); cached {
			t.Skip("a cached backend reads keys for its tombstones")
		}
		tok := e.login(e.newUser("dave"), "192.0.2.1", "A")
		e.drv.Reset()
		if err := e.client.Session.DeleteOneID(backend.KeyOf(tok)).Exec(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := e.drv.Count(); n != 1 {
			t.Fatalf("an ent delete without listeners ran %d statements: %v", n, e.drv.Queries())
		}
	})
}

// TestEventHookMayListSessions: a hook that lists the user's sessions
// from the request's context (as package alerts does) runs during Login and
// Logout without deadlocking on the session's lock.
func TestEventHookMayListSessions(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		listed := 0
		e.m.OnEvent = func(ctx context.Context, ev qsessions.Event) {
			if ev.UserID == nil {
				return
			}
			list, err := e.m.UserSessions(ctx, ev.UserID)
			if err != nil {
				t.Errorf("UserSessions in the hook: %v", err)
			}
			listed += len(list)
		}
		uid := e.newUser("fay")
		tok := e.login(uid, "192.0.2.1", "A")
		e.do(req{path: "/logout", cookie: tok})
		if listed == 0 {
			t.Fatal("the hook never saw a session")
		}
	})
}
