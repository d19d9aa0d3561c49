package qsessions_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
)

func TestUntouchedSessionCostsNothing(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		r := e.do(req{path: "/noop"})
		if r.code != 200 || r.cookie != "" || r.deleted {
			t.Fatalf("untouched anonymous request: code %d cookie %q deleted %v", r.code, r.cookie, r.deleted)
		}
		// A logged-in session that the handler does not touch: no query either.
		uid := e.newUser("ann")
		tok := e.do(req{path: "/login?user=" + strconv.Itoa(uid)}).cookie
		e.drv.Reset()
		r = e.do(req{path: "/noop", cookie: tok})
		if n := e.drv.Count(); n != 0 {
			t.Fatalf("untouched session made %d queries: %v", n, e.drv.Queries())
		}
		if r.cookie != "" || r.deleted {
			t.Fatalf("untouched session changed the cookie: %+v", r)
		}
		// Reading it: one load, no write, no cookie.
		e.clock.Advance(time.Second)
		r = e.do(req{path: "/whoami", cookie: tok})
		if r.body != strconv.Itoa(uid) {
			t.Fatalf("whoami = %q, want %d", r.body, uid)
		}
		if w := e.drv.Writes(); w != 0 {
			t.Fatalf("read-only request wrote %d times", w)
		}
		if r.cookie != "" {
			t.Fatalf("read-only request set a cookie")
		}
		if r.header.Get("Vary") != "Cookie" {
			t.Fatalf("accessed session: Vary = %q, want Cookie", r.header.Get("Vary"))
		}
		// A read of an empty anonymous session writes no row.
		before := e.count()
		e.do(req{path: "/get?k=x"})
		if e.count() != before {
			t.Fatal("reading an anonymous session wrote a row")
		}
	})
}

func TestSetGetPopDelete(t *testing.T) {
	m := qsessions.New(backend.NewDB(backend.NewMemStore()))
	s := m.Start(context.Background(), "", "192.0.2.1", "ua")
	if s.Accessed() || s.Modified() {
		t.Fatal("new session is accessed or modified before use")
	}
	if _, ok := s.Get("missing"); ok {
		t.Fatal("missing key reads as present")
	}
	if !s.Accessed() || s.Modified() {
		t.Fatal("a Get must mark accessed and not modified")
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("X", 3600))
	vals := map[string]any{
		"s": "x", "b": true, "i": -3, "i8": int8(-8), "i16": int16(16), "i32": int32(-32), "i64": int64(1 << 40),
		"u": uint(3), "u8": uint8(8), "u16": uint16(16), "u32": uint32(32), "u64": uint64(1 << 63),
		"f32": float32(1.5), "f64": 2.25, "t": now, "by": []byte{0, 1, 2}, "ss": []string{"a", ""},
		"m": map[string]any{"n": map[string]any{"deep": int64(7)}}, "sl": []any{1, "two", nil},
	}
	for k, v := range vals {
		if err := s.Set(k, v); err != nil {
			t.Fatalf("Set(%q): %v", k, err)
		}
	}
	if !s.Modified() {
		t.Fatal("Set must mark modified")
	}
	c, err := s.Save(context.Background())
	if err != nil || c.Token == "" {
		t.Fatalf("Save: %+v %v", c, err)
	}
	// Load it back in a new request: every value keeps its Go type.
	s2 := m.Start(context.Background(), c.Token, "192.0.2.1", "ua")
	for k, want := range vals {
		got, ok := s2.Get(k)
		if !ok {
			t.Fatalf("%q missing after reload", k)
		}
		if !equal(got, want) {
			t.Fatalf("%q: got %#v (%T), want %#v (%T)", k, got, got, want, want)
		}
	}
	v, err := s2.Pop("s")
	if err != nil || v != "x" {
		t.Fatalf("Pop = %v, %v", v, err)
	}
	if _, ok := s2.Get("s"); ok {
		t.Fatal("popped key still present")
	}
	if err := s2.Delete("b"); err != nil {
		t.Fatal(err)
	}
	if s2.GetBool("b") {
		t.Fatal("deleted key still reads true")
	}
	if v, _ := s2.Pop("never"); v != nil {
		t.Fatal("Pop of a missing key returned a value")
	}
}

func equal(a, b any) bool {
	switch av := a.(type) {
	case time.Time:
		bv, ok := b.(time.Time)
		return ok && av.Equal(bv)
	case []byte:
		bv, ok := b.([]byte)
		return ok && string(av) == string(bv)
	case []string:
		bv, ok := b.([]string)
		return ok && strings.Join(av, "\x00") == strings.Join(bv, "\x00") && len(av) == len(bv)
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for k := range av {
			if !equal(av[k], bv[k]) {
				return false
			}
		}
		return true
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return false
		}
		for i := range av {
			if !equal(av[i], bv[i]) {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestSaveStoresUserIPAgentAndTimes(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		uid := e.newUser("bob")
		r := e.do(req{path: "/login?user=" + strconv.Itoa(uid), ip: "::ffff:192.0.2.7", ua: "Agent/1"})
		row := e.row(r.cookie)
		if row == nil || row.UserID == nil || *row.UserID != uid {
			t.Fatalf("row after login: %+v", row)
		}
		if *row.IP != "192.0.2.7" || *row.UserAgent != "Agent/1" {
			t.Fatalf("ip %q ua %q", *row.IP, *row.UserAgent)
		}
		now := e.clock.Now()
		if !within(row.UpdatedAt, now, time.Second) || !within(row.CreatedAt, now, time.Second) {
			t.Fatalf("updated_at %v created_at %v, now %v", row.UpdatedAt, row.CreatedAt, now)
		}
		created := row.CreatedAt
		e.clock.Advance(time.Hour)
		e.do(req{path: "/set?k=a&v=1", cookie: r.cookie, ip: "192.0.2.7", ua: "Agent/1"})
		row = e.row(r.cookie)
		if !row.CreatedAt.Equal(created) {
			t.Fatalf("created_at changed: %v -> %v", created, row.CreatedAt)
		}
		if !within(row.UpdatedAt, e.clock.Now(), time.Second) {
			t.Fatalf("updated_at %v not within a second of %v", row.UpdatedAt, e.clock.Now())
		}
	})
}

// TestIPAndAgentChanges: a changed IP or user agent is recorded with the
// activity, at most once per ActivityInterval, the newest value winning: a
// client that alternates addresses or agents (dual stack, a shared stolen
// cookie) cannot turn reads into writes.
func TestIPAndAgentChanges(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		r := e.do(req{path: "/set?k=a&v=1", ip: "192.0.2.1", ua: "A"})
		tok := r.cookie
		exp := e.row(tok).ExpireDate
		e.drv.Reset()
		for i := range 100 {
			e.clock.Advance(100 * time.Millisecond) // 10 s in all, inside one interval
			ip, ua := "192.0.2.1", "A"
			if i%2 == 1 {
				ip, ua = "2001:db8::99", "B"
			}
			if got := e.do(req{path: "/get?k=a", cookie: tok, ip: ip, ua: ua}); got.code != 200 || got.body != "1|true" {
				t.Fatalf("read %d: %d %q", i, got.code, got.body)
			}
		}
		if w := e.drv.Writes(); w != 0 {
			t.Fatalf("100 reads alternating two IPs and two agents inside one interval wrote %d times, want 0: %v", w, e.drv.Queries())
		}
		if row := e.row(tok); *row.IP != "192.0.2.1" || *row.UserAgent != "A" {
			t.Fatalf("IP/UA written inside the interval: %q %q", *row.IP, *row.UserAgent)
		}
		e.clock.Advance(qsessions.DefaultActivityInterval)
		e.drv.Reset()
		e.do(req{path: "/get?k=a", cookie: tok, ip: "2001:db8::99", ua: "B"})
		if w := e.drv.Writes(); w != 1 {
			t.Fatalf("the read after the interval wrote %d times, want 1", w)
		}
		row := e.row(tok)
		if *row.IP != "2001:db8::99" || *row.UserAgent != "B" {
			t.Fatalf("the newest IP/UA was not recorded with the activity: %q %q", *row.IP, *row.UserAgent)
		}
		if !within(row.LastActivity, e.clock.Now(), time.Second) {
			t.Fatalf("last_activity %v, want %v", row.LastActivity, e.clock.Now())
		}
		if !row.ExpireDate.Equal(exp) {
			t.Fatalf("absolute expiry moved: %v -> %v", exp, row.ExpireDate)
		}
	})
}

func TestDeleteUnsavedOrDeletedIsNoop(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		if r := e.do(req{path: "/logout"}); r.code != 200 {
			t.Fatalf("logout of an unsaved session: %d %s", r.code, r.body)
		}
		tok := e.do(req{path: "/set?k=a&v=1"}).cookie
		if r := e.do(req{path: "/logout", cookie: tok}); r.code != 200 || !r.deleted {
			t.Fatalf("logout: %+v", r)
		}
		if e.row(tok) != nil {
			t.Fatal("row survives logout")
		}
		if r := e.do(req{path: "/logout", cookie: tok}); r.code != 200 {
			t.Fatalf("second logout: %d %s", r.code, r.body)
		}
	})
}

// TestClearEndsAnEmptySession: Clear leaves the session empty (no user, no
// values), and an empty session is not kept: the save deletes its row and
// its cookie (django-qsessions would keep a row with user_id NULL).
func TestClearEndsAnEmptySession(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		uid := e.newUser("dot")
		tok := e.do(req{path: "/login?user=" + strconv.Itoa(uid)}).cookie
		e.do(req{path: "/set?k=a&v=1", cookie: tok})
		if e.row(tok) == nil {
			t.Fatal("no row before Clear")
		}
		r := e.do(req{path: "/clear", cookie: tok})
		if !r.deleted {
			t.Fatalf("Clear: the cookie was not deleted (code %d, body %q)", r.code, r.body)
		}
		if row := e.row(tok); row != nil {
			t.Fatalf("Clear: the row is still there: %+v", row)
		}
		if r := e.do(req{path: "/whoami", cookie: tok}); r.body == strconv.Itoa(uid) {
			t.Fatal("the cleared session still signs the user in")
		}
	})
}

func TestClearKeepsIPAndAgent(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		uid := e.newUser("cat")
		tok := e.do(req{path: "/login?user=" + strconv.Itoa(uid), ip: "192.0.2.5", ua: "C"}).cookie
		e.do(req{path: "/set?k=a&v=1", cookie: tok, ip: "192.0.2.5", ua: "C"})
		// Clear leaves an empty anonymous session: the row goes, cookie too.
		// To see user_id NULL with IP/UA kept, clear and set a value.
		s := e.m.Start(context.Background(), tok, "192.0.2.5", "C")
		if err := s.Clear(); err != nil {
			t.Fatal(err)
		}
		if err := s.Set("after", "clear"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Save(context.Background()); err != nil {
			t.Fatal(err)
		}
		row := e.row(tok)
		if row == nil || row.UserID != nil {
			t.Fatalf("after Clear: %+v", row)
		}
		if row.IP == nil || *row.IP != "192.0.2.5" || row.UserAgent == nil || *row.UserAgent != "C" {
			t.Fatalf("Clear dropped IP/UA: %+v", row)
		}
		data, _ := qsessions.DecodeData(row.SessionData)
		if _, ok := data["a"]; ok || data["after"] != "clear" {
			t.Fatalf("data after Clear: %v", data)
		}
	})
}

func TestLoginRotatesAndFlushes(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		u1, u2 := e.newUser("dan"), e.newUser("eve")
		anon := e.do(req{path: "/set?k=cart&v=3"}).cookie
		r := e.do(req{path: "/login?user=" + strconv.Itoa(u1), cookie: anon})
		if r.cookie == "" || r.cookie == anon {
			t.Fatalf("login did not rotate the token: %q -> %q", anon, r.cookie)
		}
		tok := r.cookie
		if row := e.row(tok); row == nil || *row.UserID != u1 {
			t.Fatalf("row user after login: %+v", row)
		}
		if e.row(anon) != nil {
			t.Fatal("the pre-login row still exists")
		}
		if b := e.do(req{path: "/whoami", cookie: tok}).body; b != strconv.Itoa(u1) {
			t.Fatalf("new cookie sees %q", b)
		}
		if b := e.do(req{path: "/whoami", cookie: anon}).body; b != "<nil>" {
			t.Fatalf("old cookie still works: %q", b)
		}
		// Same user logging in again keeps the data.
		if b := e.do(req{path: "/get?k=cart", cookie: tok}).body; b != "3|true" {
			t.Fatalf("data lost at login: %q", b)
		}
		tok2 := e.do(req{path: "/login?user=" + strconv.Itoa(u1), cookie: tok}).cookie
		if b := e.do(req{path: "/get?k=cart", cookie: tok2}).body; b != "3|true" {
			t.Fatalf("data lost at re-login of the same user: %q", b)
		}
		// A different user: flushed.
		tok3 := e.do(req{path: "/login?user=" + strconv.Itoa(u2), cookie: tok2}).cookie
		if b := e.do(req{path: "/get?k=cart", cookie: tok3}).body; b != "<nil>|false" {
			t.Fatalf("another user's login kept the data: %q", b)
		}
		if b := e.do(req{path: "/whoami", cookie: tok3}).body; b != strconv.Itoa(u2) {
			t.Fatalf("whoami after switch = %q", b)
		}
	})
}

func TestActivityIntervalBoundsWrites(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		uid := e.newUser("fay")
		tok := e.do(req{path: "/login?user=" + strconv.Itoa(uid)}).cookie
		e.drv.Reset()
		for range 1000 {
			e.clock.Advance(50 * time.Millisecond) // 50 s in all: within one minute
			if r := e.do(req{path: "/whoami", cookie: tok}); r.body != strconv.Itoa(uid) {
				t.Fatalf("whoami = %q", r.body)
			}
		}
		if w := e.drv.Writes(); w > 1 {
			t.Fatalf("1000 read-only requests in one interval wrote %d times", w)
		}
		// Past the interval, the next request records the activity once.
		e.clock.Advance(time.Minute)
		e.drv.Reset()
		e.do(req{path: "/whoami", cookie: tok})
		if w := e.drv.Writes(); w != 1 {
			t.Fatalf("request past the interval wrote %d times, want 1", w)
		}
		if la := e.row(tok).LastActivity; !la.Equal(e.clock.Now()) {
			t.Fatalf("last_activity %v, want %v", la, e.clock.Now())
		}
	})
}

func TestRevokeDuringRequest(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		uid := e.newUser("gus")
		tok := e.do(req{path: "/login?user=" + strconv.Itoa(uid)}).cookie
		e.beforeSave = func() {
			if _, err := e.m.RevokeUser(context.Background(), uid); err != nil {
				t.Error(err)
			}
		}
		r := e.do(req{path: "/set?k=a&v=1", cookie: tok})
		e.beforeSave = nil
		if r.code != 400 {
			t.Fatalf("revoked mid-request: code %d body %q, want 400", r.code, r.body)
		}
		if !r.deleted {
			t.Fatal("revoked mid-request: cookie not deleted")
		}
		if n := e.count(); n != 0 {
			t.Fatalf("%d rows after the interrupted save; the session must not be recreated", n)
		}
	})
}

func TestRevokeOnlyOwnSessions(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		u1, u2 := e.newUser("hal"), e.newUser("ida")
		var toks []string
		for range 3 {
			toks = append(toks, e.do(req{path: "/login?user=" + strconv.Itoa(u1)}).cookie)
		}
		other := e.do(req{path: "/login?user=" + strconv.Itoa(u2)}).cookie
		ctx := context.Background()
		theirs, err := e.m.UserSessions(ctx, u2)
		if err != nil || len(theirs) != 1 {
			t.Fatalf("UserSessions(u2) = %v, %v", theirs, err)
		}
		if err := e.m.Revoke(ctx, u1, theirs[0].ID); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("revoking another user's session: %v, want ErrNotFound", err)
		}
		if e.row(other) == nil {
			t.Fatal("another user's session was deleted")
		}
		mine, _ := e.m.UserSessions(ctx, u1)
		if len(mine) != 3 {
			t.Fatalf("u1 has %d sessions", len(mine))
		}
		for _, in := range mine {
			// The public id is a prefix of the stored key (the SHA-256 of
			// the token), never a part of the token.
			if in.ID == "" || strings.Contains(toks[0]+toks[1]+toks[2], in.ID) {
				t.Fatalf("public id %q reveals the token", in.ID)
			}
		}
		// RevokeOthers from the first session keeps only it.
		r := e.do(req{path: "/revoke-others", cookie: toks[0]})
		if r.body != "2" {
			t.Fatalf("RevokeOthers ended %q sessions, want 2", r.body)
		}
		mine, _ = e.m.UserSessions(ctx, u1)
		if len(mine) != 1 || e.row(toks[0]) == nil {
			t.Fatalf("after RevokeOthers: %d sessions, current kept: %v", len(mine), e.row(toks[0]) != nil)
		}
		if e.row(other) == nil {
			t.Fatal("RevokeOthers touched another user")
		}
		// Revoke by public id.
		if err := e.m.Revoke(ctx, u2, theirs[0].ID); err != nil {
			t.Fatal(err)
		}
		if e.row(other) != nil {
			t.Fatal("Revoke left the row")
		}
	})
}

func TestUserSessionsMarksCurrentNewestFirst(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		uid := e.newUser("jo")
		var toks []string
		for range 3 {
			e.clock.Advance(time.Minute)
			toks = append(toks, e.do(req{path: "/login?user=" + strconv.Itoa(uid)}).cookie)
		}
		s := e.m.Start(context.Background(), toks[1], "192.0.2.1", "test-agent/1.0")
		ctx := qsessions.NewContext(context.Background(), s)
		list, err := e.m.UserSessions(ctx, uid)
		if err != nil || len(list) != 3 {
			t.Fatalf("%v %v", list, err)
		}
		for i := 1; i < len(list); i++ {
			if list[i].LastActivity.After(list[i-1].LastActivity) {
				t.Fatal("not newest activity first")
			}
		}
		cur := 0
		for _, in := range list {
			if in.Current {
				cur++
				if in.ID != backend.PublicID(backend.KeyOf(toks[1])) {
					t.Fatal("the wrong session is marked current")
				}
			}
		}
		if cur != 1 {
			t.Fatalf("%d sessions marked current", cur)
		}
	})
}

func TestStoredKeyIsHashOfToken(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.do(req{path: "/set?k=a&v=1"}).cookie
		var key, data string
		row := e.db.SQL.QueryRow("SELECT session_key, session_data FROM qsessions_session")
		if err := row.Scan(&key, &data); err != nil {
			t.Fatal(err)
		}
		if key != backend.KeyOf(tok) || len(key) != 64 {
			t.Fatalf("stored key %q, want sha256(token)", key)
		}
		if strings.Contains(key+data, tok) {
			t.Fatal("the token is stored")
		}
	})
}

func TestPerUserSessionCap(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		e.m.MaxSessionsPerUser = 3
		uid := e.newUser("kim")
		var toks []string
		for range 5 {
			e.clock.Advance(time.Minute)
			toks = append(toks, e.do(req{path: "/login?user=" + strconv.Itoa(uid)}).cookie)
		}
		list, err := e.m.UserSessions(context.Background(), uid)
		if err != nil || len(list) != 3 {
			t.Fatalf("after 5 logins with a cap of 3: %d sessions, %v", len(list), err)
		}
		for i, tok := range toks {
			if alive := e.row(tok) != nil; alive != (i >= 2) {
				t.Fatalf("login %d alive=%v; the oldest must go first", i, alive)
			}
		}
	})
}
