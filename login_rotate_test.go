package qsessions_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
)

// TestLoginWithRowRoundTrips: the login of a session that already has a
// row (a visitor who stored something before signing in) replaces the row
// and enforces the per-user cap in one statement on Postgres, at the cap
// too, beside the load; the old token is dead afterwards, the data stays,
// and the sessions the cap ended (the least recently active) are reported
// with CauseCap and are dead too.
func TestLoginWithRowRoundTrips(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		e.m.MaxSessionsPerUser = 3
		log := listen(e)
		uid := e.newUser("frank")
		var firsts []string
		for range 3 {
			firsts = append(firsts, e.login(uid, "192.0.2.1", "A"))
			e.clock.Advance(time.Minute) // the cap ends the least recently active first
		}
		for i := range 2 {
			anon := e.do(req{path: "/set?k=cart&v=sku-" + strconv.Itoa(i)})
			if anon.code != 200 || anon.cookie == "" {
				t.Fatalf("anonymous set: %d %s", anon.code, anon.body)
			}
			log.take()
			e.drv.Reset()
			r := e.do(req{path: "/login?user=" + strconv.Itoa(uid), cookie: anon.cookie})
			if r.code != 200 || r.cookie == "" || r.cookie == anon.cookie {
				t.Fatalf("login with a row: %d %s, cookie %q", r.code, r.body, r.cookie)
			}
			if e.db.Dialect == "postgres" {
				// Beside the load (none with a cache hit): one statement,
				// the old row out, the new in, the oldest past the cap out.
				writes := 0
				for _, q := range e.drv.Queries() {
					if !strings.HasPrefix(q.SQL, `SELECT "session_key", "session_data"`) {
						writes++
					}
				}
				if writes != 1 {
					t.Fatalf("login %d with a row at the cap: %d statements beside the load, want 1: %v", i+1, writes, e.drv.Queries())
				}
			}
			for _, q := range e.drv.Queries() {
				if strings.HasPrefix(strings.ToUpper(q.SQL), "SELECT") && strings.Contains(q.SQL, "session_data") &&
					strings.Contains(q.SQL, "ORDER BY") {
					t.Errorf("the cap read session_data: %s", q.SQL)
				}
			}
			if got := e.do(req{path: "/get?k=cart", cookie: r.cookie}).body; got != "sku-"+strconv.Itoa(i)+"|true" {
				t.Errorf("after the login the session holds %q, want the cart", got)
			}
			if got := e.do(req{path: "/whoami", cookie: anon.cookie}).body; got != "<nil>" {
				t.Errorf("the old token still names user %s", got)
			}
			live, err := e.m.UserSessions(context.Background(), uid)
			if err != nil || len(live) != 3 {
				t.Fatalf("%d live sessions after the login, want 3 (%v)", len(live), err)
			}
			var capped []string
			for _, ev := range log.take() {
				if ev.Kind == qsessions.EventRevoke && ev.Cause == qsessions.CauseCap {
					capped = append(capped, ev.SessionID)
				}
			}
			if len(capped) != 1 || capped[0] != pid(firsts[i]) {
				t.Errorf("cap events %v, want the oldest session %s", capped, pid(firsts[i]))
			}
			if got := e.do(req{path: "/whoami", cookie: firsts[i]}).body; got != "<nil>" {
				t.Errorf("the session the cap ended still names user %s", got)
			}
		}
	})
}
