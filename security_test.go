package qsessions_test

// The security checklist of issue 9, one test per item where another test
// does not already cover it (see the comments).

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/ent/session"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Session fixation: a token planted before login is useless after it.
func TestSecuritySessionFixation(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		uid := e.newUser("victim")
		planted := e.do(req{path: "/set?k=a&v=1"}).cookie // the attacker's session
		// The victim logs in with the planted cookie.
		after := e.do(req{path: "/login?user=" + strconv.Itoa(uid), cookie: planted}).cookie
		if after == "" || after == planted {
			t.Fatal("login kept the planted token")
		}
		if who := e.do(req{path: "/whoami", cookie: planted}).body; who != "<nil>" {
			t.Fatalf("the planted token sees user %s after the victim's login", who)
		}
	})
}

// The token appears in no database column, log line or error message.
func TestSecurityTokenNeverLeaks(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		logs := &syncBuffer{}
		logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		e.m.Logger = logger
		old := slog.Default()
		slog.SetDefault(logger)
		defer slog.SetDefault(old)

		uid := e.newUser("leak")
		var tokens, errs []string
		tok := e.do(req{path: "/login?user=" + strconv.Itoa(uid)}).cookie
		tokens = append(tokens, tok)
		e.do(req{path: "/set?k=note&v=hello", cookie: tok})
		// Corrupt the stored data: the load logs a warning naming the session.
		if _, err := e.client.Session.Update().SetSessionData([]byte{9, 9, 9}).Save(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.do(req{path: "/get?k=note", cookie: tok})
		tok2 := e.do(req{path: "/login?user=" + strconv.Itoa(uid)}).cookie
		tokens = append(tokens, tok2)
		// A revoke during a request: the 400 body and the error.
		e.beforeSave = func() { e.m.RevokeUser(context.Background(), uid) }
		r := e.do(req{path: "/set?k=a&v=1", cookie: tok2})
		e.beforeSave = nil
		errs = append(errs, r.body)
		s := e.m.Start(context.Background(), tok2, "", "")
		if err := s.Set("x", 1); err != nil {
			errs = append(errs, err.Error())
		}
		if _, err := s.Save(context.Background()); err != nil {
			errs = append(errs, err.Error())
		}
		if err := s.Set("f", func() {}); err != nil {
			errs = append(errs, err.Error())
		}
		tok3 := e.do(req{path: "/set?k=a&v=1"}).cookie
		tokens = append(tokens, tok3)

		if !strings.Contains(logs.String(), "does not decode") {
			t.Fatalf("expected the corrupt-data warning in the logs, got %q", logs.String())
		}
		dump := dumpTable(t, e.db.SQL)
		for _, tok := range tokens {
			if tok == "" {
				t.Fatal("a request set no cookie")
			}
			for where, text := range map[string]string{"log": logs.String(), "database": dump, "errors": strings.Join(errs, "\n")} {
				if strings.Contains(text, tok) {
					t.Fatalf("token found in %s: %q", where, text)
				}
			}
		}
	})
}

// dumpTable renders every column of every session row as text.
func dumpTable(t *testing.T, db *sql.DB) string {
	rows, err := db.Query("SELECT * FROM qsessions_session")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			fmt.Fprintf(&out, "%v|", v)
		}
		out.WriteByte('\n')
	}
	return out.String()
}

// A revoked or an expired token is rejected (the behaviour suite runs this
// against every backend kind in backendKinds).
func TestSecurityRevokedAndExpiredRejected(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		uid := e.newUser("rex")
		tok := e.do(req{path: "/login?user=" + strconv.Itoa(uid)}).cookie
		if who := e.do(req{path: "/whoami", cookie: tok}).body; who != strconv.Itoa(uid) {
			t.Fatalf("fresh token sees %q", who)
		}
		list, _ := e.m.UserSessions(context.Background(), uid)
		if err := e.m.Revoke(context.Background(), uid, list[0].ID); err != nil {
			t.Fatal(err)
		}
		if who := e.do(req{path: "/whoami", cookie: tok}).body; who != "<nil>" {
			t.Fatalf("revoked token still sees user %s", who)
		}
		// Revoked through ent directly (an admin tool): rejected too.
		tok = e.do(req{path: "/login?user=" + strconv.Itoa(uid)}).cookie
		e.do(req{path: "/whoami", cookie: tok}) // warm any cache
		if _, err := e.client.Session.Delete().Where(session.UserID(uid)).Exec(context.Background()); err != nil {
			t.Fatal(err)
		}
		if who := e.do(req{path: "/whoami", cookie: tok}).body; who != "<nil>" {
			t.Fatalf("token deleted through ent still sees user %s", who)
		}
		// Expired: past the absolute lifetime.
		tok = e.do(req{path: "/login?user=" + strconv.Itoa(uid)}).cookie
		e.do(req{path: "/whoami", cookie: tok})
		e.clock.Advance(qsessions.DefaultLifetime + time.Second)
		if who := e.do(req{path: "/whoami", cookie: tok}).body; who != "<nil>" {
			t.Fatalf("expired token still sees user %s", who)
		}
	})
}

// Idle timeout: a session unused for longer than IdleTimeout ends.
func TestIdleTimeout(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		e.m.IdleTimeout = time.Hour
		uid := e.newUser("idle")
		tok := e.do(req{path: "/login?user=" + strconv.Itoa(uid)}).cookie
		for range 5 { // activity every 50 minutes keeps it alive
			e.clock.Advance(50 * time.Minute)
			if who := e.do(req{path: "/whoami", cookie: tok}).body; who != strconv.Itoa(uid) {
				t.Fatalf("active session ended: %q", who)
			}
		}
		e.clock.Advance(61 * time.Minute)
		if who := e.do(req{path: "/whoami", cookie: tok}).body; who != "<nil>" {
			t.Fatalf("idle session still sees user %s", who)
		}
	})
}

// One user cannot list or revoke another's sessions: UserSessions takes the
// user from the caller's own session, and Revoke is tested in
// TestRevokeOnlyOwnSessions. A forged X-Forwarded-For is TestForwardedFor;
// a malformed cookie making no query and the lookup binding only the hash is
// TestMalformedCookiesMakeNoQuery; oversized data is TestBadValues; cookie
// flags are middleware.TestCookieFlagsAndSaveBeforeHeaders.
func TestSecurityListingIsPerUser(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		a, b := e.newUser("a"), e.newUser("b")
		e.do(req{path: "/login?user=" + strconv.Itoa(a)})
		e.do(req{path: "/login?user=" + strconv.Itoa(b)})
		list, err := e.m.UserSessions(context.Background(), a)
		if err != nil || len(list) != 1 {
			t.Fatalf("%v %v", list, err)
		}
		for _, in := range list {
			if in.UserID != a {
				t.Fatalf("user %d's listing shows a session of %v", a, in.UserID)
			}
		}
		if err := e.m.Revoke(context.Background(), a, "nonsense"); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
	})
}
