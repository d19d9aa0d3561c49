package qsessions_test

import (
	"context"
	"strings"
	"testing"
)

// TestLoginRoundTrips: a login without a session row is one statement on
// Postgres, at the cap too (insert, cap and delete in one); elsewhere an
// INSERT and a SELECT of keys, and a DELETE at the cap. The cap never reads
// session_data.
func TestLoginRoundTrips(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		e.m.MaxSessionsPerUser = 3
		uid := e.newUser("erin")
		want := 2
		if e.db.Dialect == "postgres" {
			want = 1
		}
		for i := range 3 {
			e.drv.Reset()
			e.login(uid, "192.0.2.1", "A")
			if n := e.drv.Count(); n != want {
				t.Fatalf("login %d under the cap: %d statements, want %d: %v", i+1, n, want, e.drv.Queries())
			}
		}
		e.drv.Reset()
		e.login(uid, "192.0.2.1", "A")
		if want > 1 {
			want++ // the DELETE
		}
		if n := e.drv.Count(); n != want {
			t.Fatalf("login past the cap: %d statements, want %d: %v", n, want, e.drv.Queries())
		}
		for _, q := range e.drv.Queries() {
			if strings.HasPrefix(strings.ToUpper(q.SQL), "SELECT") && strings.Contains(q.SQL, "session_data") {
				t.Errorf("the cap read session_data: %s", q.SQL)
			}
		}
		if n, _ := e.m.UserSessions(context.Background(), uid); len(n) != 3 {
			t.Fatalf("%d live sessions after the cap, want 3", len(n))
		}
	})
}
