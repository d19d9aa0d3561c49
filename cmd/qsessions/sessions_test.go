package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	entsql "entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/device"
	"github.com/qsessions/qsessions/ent"
	uuident "github.com/qsessions/qsessions/examples/uuidapp/ent"
	"github.com/qsessions/qsessions/internal/storetest"
	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/location/locationtest"
	"github.com/qsessions/qsessions/sqlstore"
)

// sessCLI runs `qsessions args...` and returns the exit code and output.
func sessCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// sessRow is a session row the tests insert directly.
type sessRow struct {
	key          string
	userID       *int
	ua, ip       string
	created      time.Time
	lastActivity time.Time
	expire       time.Time
}

func sessNewKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sessSchema creates the reference schema (users and qsessions_session) on
// db with ent, and returns the client.
func sessSchema(t testing.TB, db *testutil.DB) *ent.Client {
	t.Helper()
	client := ent.NewClient(ent.Driver(db.Driver()))
	if err := client.Schema.Create(context.Background()); err != nil {
		t.Fatalf("creating the schema: %v", err)
	}
	return client
}

// sessInsert inserts rows with multi-row INSERTs of up to 1000 rows, in one
// transaction: about 100,000 rows a second on every dialect.
func sessInsert(t testing.TB, db *testutil.DB, rows []sessRow) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const chunk = 1000
	const cols = 9
	for start := 0; start < len(rows); start += chunk {
		part := rows[start:min(start+chunk, len(rows))]
		var q strings.Builder
		q.WriteString("INSERT INTO qsessions_session (session_key, session_data, expire_date, user_id, user_agent, ip, created_at, updated_at, last_activity) VALUES ")
		params := make([]any, 0, len(part)*cols)
		for i, r := range part {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteByte('(')
			for c := range cols {
				if c > 0 {
					q.WriteByte(',')
				}
				if db.Dialect == testutil.Postgres {
					q.WriteString("$" + strconv.Itoa(len(params)+c+1))
				} else {
					q.WriteByte('?')
				}
			}
			q.WriteByte(')')
			var uid, ua, ip any
			if r.userID != nil {
				uid = *r.userID
			}
			if r.ua != "" {
				ua = r.ua
			}
			if r.ip != "" {
				ip = r.ip
			}
			created := backend.Time(r.created)
			params = append(params, r.key, []byte{}, backend.Time(r.expire), uid, ua, ip, created, created, backend.Time(r.lastActivity))
		}
		if _, err := tx.ExecContext(ctx, q.String(), params...); err != nil {
			t.Fatalf("inserting sessions: %v", err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func sessCount(t testing.TB, db *testutil.DB, where string) int {
	t.Helper()
	var n int
	if err := db.SQL.QueryRow("SELECT count(*) FROM qsessions_session WHERE " + where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

const (
	sessUAMac    = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	sessUAIPhone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
)

// sessFixture is two users' sessions and an anonymous one.
type sessFixture struct {
	db                              *testutil.DB
	alice, bob                      int
	aliceMac, aliceIPhone, aliceOld sessRow
	bobLive, anon                   sessRow
	idMac, idIPhone, idBob, idAnon  string
	aliceText, bobText              string
}

func newSessFixture(t *testing.T, db *testutil.DB) *sessFixture {
	t.Helper()
	ctx := context.Background()
	client := sessSchema(t, db)
	a := client.User.Create().SetUsername("alice").SaveX(ctx)
	b := client.User.Create().SetUsername("bob").SaveX(ctx)
	now := time.Now()
	f := &sessFixture{db: db, alice: a.ID, bob: b.ID, aliceText: strconv.Itoa(a.ID), bobText: strconv.Itoa(b.ID)}
	f.aliceMac = sessRow{key: sessNewKey(), userID: &f.alice, ua: sessUAMac, ip: "81.2.69.142", created: now.Add(-2 * time.Hour), lastActivity: now.Add(-time.Minute), expire: now.Add(time.Hour)}
	f.aliceIPhone = sessRow{key: sessNewKey(), userID: &f.alice, ua: sessUAIPhone, ip: "10.0.0.7", created: now.Add(-time.Hour), lastActivity: now.Add(-2 * time.Minute), expire: now.Add(time.Hour)}
	f.aliceOld = sessRow{key: sessNewKey(), userID: &f.alice, ua: sessUAMac, ip: "81.2.69.142", created: now.Add(-48 * time.Hour), lastActivity: now.Add(-47 * time.Hour), expire: now.Add(-time.Hour)}
	f.bobLive = sessRow{key: sessNewKey(), userID: &f.bob, ua: "curl/8.4.0", ip: "2001:db8::1", created: now.Add(-time.Hour), lastActivity: now.Add(-3 * time.Minute), expire: now.Add(time.Hour)}
	f.anon = sessRow{key: sessNewKey(), ua: "", ip: "", created: now.Add(-time.Hour), lastActivity: now.Add(-4 * time.Minute), expire: now.Add(time.Hour)}
	sessInsert(t, db, []sessRow{f.aliceMac, f.aliceIPhone, f.aliceOld, f.bobLive, f.anon})
	f.idMac, f.idIPhone = backend.PublicID(f.aliceMac.key), backend.PublicID(f.aliceIPhone.key)
	f.idBob, f.idAnon = backend.PublicID(f.bobLive.key), backend.PublicID(f.anon.key)
	return f
}

func TestSessionsList(t *testing.T) {
	geoDir := t.TempDir()
	locationtest.WriteFile(t, filepath.Join(geoDir, "GeoLite2-City.mmdb"), locationtest.Options{DatabaseType: "GeoLite2-City"},
		locationtest.Record{Network: "81.2.69.0/24", City: "London", Country: "United Kingdom", CountryCode: "GB"})
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		f := newSessFixture(t, db)

		code, out, errOut := sessCLI(t, "sessions", "list", "--db", db.URL, "--user", f.aliceText, "--geoip-dir", geoDir)
		if code != 0 {
			t.Fatalf("list --user: exit %d: %s", code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 {
			t.Fatalf("list --user: want a header and 2 rows (the expired one left out), got:\n%s", out)
		}
		for _, h := range []string{"ID", "USER", "DEVICE", "LOCATION", "IP", "CREATED", "LAST ACTIVITY", "EXPIRES"} {
			if !strings.Contains(lines[0], h) {
				t.Errorf("header %q lacks %s", lines[0], h)
			}
		}
		// Newest activity first: the Mac, then the iPhone.
		if !strings.HasPrefix(lines[1], f.idMac) || !strings.Contains(lines[1], "Chrome on Mac") ||
			!strings.Contains(lines[1], "London, United Kingdom") || !strings.Contains(lines[1], "81.2.69.142") {
			t.Errorf("first row: %q", lines[1])
		}
		if !strings.HasPrefix(lines[2], f.idIPhone) || !strings.Contains(lines[2], "Safari on iPhone") {
			t.Errorf("second row: %q", lines[2])
		}

		code, out, errOut = sessCLI(t, "sessions", "list", "--db", db.URL, "--all", "--json")
		if code != 0 {
			t.Fatalf("list --all --json: exit %d: %s", code, errOut)
		}
		var got struct {
			Sessions []struct {
				ID           string      `json:"id"`
				UserID       *string     `json:"user_id"`
				Device       string      `json:"device"`
				DeviceInfo   device.Info `json:"device_info"`
				Location     string      `json:"location"`
				IP           string      `json:"ip"`
				CreatedAt    time.Time   `json:"created_at"`
				LastActivity time.Time   `json:"last_activity"`
				ExpireDate   time.Time   `json:"expire_date"`
			} `json:"sessions"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("list --json: %v\n%s", err, out)
		}
		var ids []string
		for _, s := range got.Sessions {
			ids = append(ids, s.ID)
		}
		want := []string{f.idMac, f.idIPhone, f.idBob, f.idAnon}
		if strings.Join(ids, ",") != strings.Join(want, ",") {
			t.Fatalf("list --all: ids %v, want %v (newest activity first, live only)", ids, want)
		}
		if s := got.Sessions[2]; s.UserID == nil || *s.UserID != f.bobText || s.Device != "curl" || s.DeviceInfo.Browser != "curl" ||
			s.DeviceInfo.BrowserVersion != "8.4.0" || s.IP != "2001:db8::1" {
			t.Errorf("bob's session: %+v", s)
		}
		if s := got.Sessions[3]; s.UserID != nil || s.LastActivity.IsZero() || !s.ExpireDate.After(time.Now()) {
			t.Errorf("anonymous session: %+v", s)
		}

		// --limit cuts and says so.
		code, out, errOut = sessCLI(t, "sessions", "list", "--db", db.URL, "--all", "--limit", "1")
		if code != 0 || strings.Count(strings.TrimSpace(out), "\n") != 1 || !strings.Contains(errOut, "--limit 0") {
			t.Errorf("list --limit 1: exit %d\n%s\n%s", code, out, errOut)
		}
	})
}

func TestSessionsListErrors(t *testing.T) {
	db := testutil.Open(t, testutil.SQLite)
	sessSchema(t, db)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sessions"}, "missing subcommand"},
		{[]string{"sessions", "nope"}, "unknown subcommand"},
		{[]string{"sessions", "list", "--all"}, "--db is required"},
		{[]string{"sessions", "list", "--db", db.URL}, "--user ID or --all"},
		{[]string{"sessions", "list", "--db", db.URL, "--user", "1", "--all"}, "--user ID or --all"},
		{[]string{"sessions", "list", "--db", "redis://x", "--all"}, "unsupported URL scheme"},
		{[]string{"sessions", "revoke", "--db", db.URL}, "give the public ids"},
		{[]string{"sessions", "revoke", "--db", db.URL, "nothex"}, "not public session ids"},
		{[]string{"clear-expired"}, "--db is required"},
		{[]string{"clear-expired", "--db", db.URL, "--batch", "0"}, "--batch 0"},
	} {
		code, _, errOut := sessCLI(t, tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want an error containing %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestSessionsRevoke(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		f := newSessFixture(t, db)
		live := func(key string) bool {
			t.Helper()
			ph := "?"
			if db.Dialect == testutil.Postgres {
				ph = "$1"
			}
			var n int
			if err := db.SQL.QueryRow("SELECT count(*) FROM qsessions_session WHERE session_key = "+ph, key).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 1
		}

		// By public id: a primary-key range lookup.
		code, out, errOut := sessCLI(t, "sessions", "revoke", "--db", db.URL, f.idBob)
		if code != 0 || strings.TrimSpace(out) != "revoked 1 session" || live(f.bobLive.key) {
			t.Fatalf("revoke ID: exit %d, %q %q", code, out, errOut)
		}
		// An id that is not among the user's sessions is not found, and
		// nothing is deleted.
		code, out, errOut = sessCLI(t, "sessions", "revoke", "--db", db.URL, "--user", f.aliceText, f.idAnon)
		if code == 0 || !strings.Contains(errOut, "no live session of user "+f.aliceText+" has the id "+f.idAnon) ||
			strings.TrimSpace(out) != "revoked 0 sessions" || !live(f.anon.key) {
			t.Fatalf("revoke foreign ID: exit %d, %q %q", code, out, errOut)
		}
		// Flags after the ids work too; an id found and one missing: the
		// found one goes, the command fails naming the other.
		code, out, errOut = sessCLI(t, "sessions", "revoke", f.idIPhone, strings.ToUpper(f.idBob), "--db", db.URL, "--user", f.aliceText)
		if code == 0 || !strings.Contains(errOut, f.idBob) || strings.Contains(errOut, f.idIPhone) ||
			strings.TrimSpace(out) != "revoked 1 session" || live(f.aliceIPhone.key) || !live(f.aliceMac.key) {
			t.Fatalf("revoke two IDs: exit %d, %q %q", code, out, errOut)
		}
		// Every live session of a user (Manager.RevokeUser); the expired
		// one is left to clear-expired.
		code, out, errOut = sessCLI(t, "sessions", "revoke", "--db", db.URL, "--user", f.aliceText)
		if code != 0 || strings.TrimSpace(out) != "revoked 1 session" || live(f.aliceMac.key) || !live(f.aliceOld.key) {
			t.Fatalf("revoke --user: exit %d, %q %q", code, out, errOut)
		}
		if !live(f.anon.key) || sessCount(t, db, "1=1") != 2 {
			t.Fatalf("only the anonymous session and alice's expired one should be left")
		}
		// An expired session is found by its id too (an admin revoke).
		code, out, errOut = sessCLI(t, "sessions", "revoke", "--db", db.URL, backend.PublicID(f.aliceOld.key), f.idMac)
		if code == 0 || strings.TrimSpace(out) != "revoked 1 session" || live(f.aliceOld.key) ||
			!strings.Contains(errOut, "no session has the id "+f.idMac) {
			t.Fatalf("revoke of an expired id and a gone one: exit %d, %q %q", code, out, errOut)
		}
	})
}

// TestSessionsRevokeTombstones checks that --memcache keeps a revoked
// session out of a cached_db app's cache at once.
func TestSessionsRevokeTombstones(t *testing.T) {
	addr := testutil.Memcached(t)
	prefix := testutil.MemcachedPrefix(t)
	db := testutil.Open(t, testutil.SQLite)
	client := sessSchema(t, db)
	ctx := context.Background()
	u := client.User.Create().SetUsername("carol").SaveX(ctx)
	mc, err := backend.NewMemcache([]string{addr}, backend.MemcacheOptions{Timeout: testutil.MemcacheTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	b, err := backend.NewCachedDB(ent.NewSessionStore(client), mc, backend.CachedOptions{Prefix: prefix, Keys: testutil.CacheKeys})
	if err != nil {
		t.Fatal(err)
	}
	m := qsessions.New(b)
	s := m.Start(ctx, "", "192.0.2.1", sessUAMac)
	if err := s.Login(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	rec := s.Record()
	if _, err := b.Load(ctx, rec.Key, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Without the app's keys the CLI refuses, before revoking anything.
	t.Setenv(backend.CacheKeysEnv, "")
	code, out, errOut := sessCLI(t, "sessions", "revoke", "--db", db.URL, "--memcache", addr, "--cache-prefix", prefix, backend.PublicID(rec.Key))
	if code == 0 || out != "" || !strings.Contains(errOut, backend.CacheKeysEnv) {
		t.Fatalf("revoke --memcache without keys: exit %d, %q %q", code, out, errOut)
	}
	if _, err := b.Load(ctx, rec.Key, time.Now()); err != nil {
		t.Fatalf("a refused revoke ended the session: %v", err)
	}
	t.Setenv(backend.CacheKeysEnv, "zz")
	if code, _, errOut := sessCLI(t, "sessions", "revoke", "--db", db.URL, "--memcache", addr, backend.PublicID(rec.Key)); code == 0 ||
		!strings.Contains(errOut, backend.CacheKeysEnv+": cache key 1 is not hex") {
		t.Fatalf("revoke with a malformed key: exit %d, %q", code, errOut)
	}
	// The app's keys, as the app has them: the CLI signs with the first.
	t.Setenv(backend.CacheKeysEnv, hex.EncodeToString(testutil.CacheKeys[0])+","+strings.Repeat("ab", 32))
	code, out, errOut = sessCLI(t, "sessions", "revoke", "--db", db.URL, "--memcache", addr, "--cache-prefix", prefix, backend.PublicID(rec.Key))
	if code != 0 || strings.TrimSpace(out) != "revoked 1 session" {
		t.Fatalf("revoke: exit %d, %q %q", code, out, errOut)
	}
	if _, err := b.Load(ctx, rec.Key, time.Now()); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("after the CLI revoke the cached_db backend still loads the session: %v", err)
	}
	if st := b.Stats(); st.BadEntries != 0 {
		t.Errorf("the app found %d cache entries it could not verify: the CLI's tombstones are not signed with its key", st.BadEntries)
	}
}

// TestSessionsUUIDUsers runs list and revoke on an app whose user IDs are
// UUIDs (examples/uuidapp): user IDs are opaque text to the CLI.
func TestSessionsUUIDUsers(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		client := uuident.NewClient(uuident.Driver(db.Driver()))
		if err := client.Schema.Create(ctx); err != nil {
			t.Fatal(err)
		}
		acc := client.Account.Create().SetEmail("erin@example.com").SaveX(ctx)
		m := qsessions.New(backend.NewDB(uuident.NewLoginSessionStore(client)))
		var ids []string
		for _, ua := range []string{sessUAMac, sessUAIPhone} {
			s := m.Start(ctx, "", "192.0.2.1", ua)
			if err := s.Login(ctx, acc.ID); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, s.ID())
		}
		code, out, errOut := sessCLI(t, "sessions", "list", "--db", db.URL, "--user", acc.ID.String(), "--json")
		if code != 0 {
			t.Fatalf("list: exit %d: %s", code, errOut)
		}
		got := decodeList(t, out)
		if len(got) != 2 || got[0].UserID == nil || *got[0].UserID != acc.ID.String() {
			t.Fatalf("list --user UUID: %s", out)
		}
		code, out, errOut = sessCLI(t, "sessions", "revoke", "--db", db.URL, "--user", acc.ID.String(), ids[0])
		if code != 0 || strings.TrimSpace(out) != "revoked 1 session" {
			t.Fatalf("revoke: exit %d, %q %q", code, out, errOut)
		}
		list, err := m.UserSessions(ctx, acc.ID)
		if err != nil || len(list) != 1 || list[0].ID != ids[1] {
			t.Fatalf("after revoke: %v %v", list, err)
		}
	})
}

// decodeList decodes the output of `sessions list --json`.
func decodeList(t *testing.T, out string) []listJSON {
	t.Helper()
	var got struct {
		Sessions []listJSON `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("sessions list --json: %v\n%s", err, out)
	}
	return got.Sessions
}

// TestSessionsListTerminalSafety: C1 and bidi control characters stored in
// a user agent and an IP (SQL outside the stores can write anything) reach
// neither the table nor the JSON raw; the JSON still decodes to the stored
// text.
func TestSessionsListTerminalSafety(t *testing.T) {
	const ua = "Mozilla/5.0 \u009b31m(X11; Linux x86_64) \u202eFirefox/120.0\u2066 \u200f\u061c\x7f\x1b[2J"
	const ip = "10.0.0.1\u202e\u009b"
	raw := []string{"\u009b", "\u202e", "\u2066", "\u200f", "\u061c", "\x7f", "\x1b"}
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		client := sessSchema(t, db)
		u := client.User.Create().SetUsername("mallory").SaveX(context.Background())
		now := time.Now()
		uid := u.ID
		row := sessRow{key: sessNewKey(), userID: &uid, ua: ua, ip: ip, created: now, lastActivity: now, expire: now.Add(time.Hour)}
		sessInsert(t, db, []sessRow{row})
		for _, args := range [][]string{
			{"sessions", "list", "--db", db.URL, "--all"},
			{"sessions", "list", "--db", db.URL, "--user", strconv.Itoa(uid)},
			{"sessions", "list", "--db", db.URL, "--all", "--json"},
			{"sessions", "list", "--db", db.URL, "--user", strconv.Itoa(uid), "--json"},
		} {
			code, out, errOut := sessCLI(t, args...)
			if code != 0 {
				t.Fatalf("%q: exit %d: %s", args, code, errOut)
			}
			for _, r := range raw {
				if strings.Contains(out, r) || strings.Contains(errOut, r) {
					t.Errorf("%q printed %q raw:\n%s", args, r, out)
				}
			}
			if !strings.Contains(out, `\u202e`) || !strings.Contains(out, `\u009b`) {
				t.Errorf("%q does not show the escapes \\u202e and \\u009b:\n%s", args, out)
			}
			if args[len(args)-1] != "--json" {
				continue
			}
			if got := decodeList(t, out); len(got) != 1 || got[0].UserAgent != ua || got[0].IP != ip {
				t.Errorf("%q: the JSON decodes to %+v, want the stored text", args, got)
			}
		}
	})
}

func TestTermCellAndJSONEscapes(t *testing.T) {
	for in, want := range map[string]string{
		"":                    "-",
		"plain ü 😀":           "plain ü 😀",
		"a\tb\nc":             `a\u0009b\u000ac`,
		"\u009b31m":           `\u009b31m`,
		"x\u202ey\u2069":      `x\u202ey\u2069`,
		"\u200e\u200f\u061c":  `\u200e\u200f\u061c`,
		"line\u2028sep":       `line\u2028sep`,
		"bad\xffbyte":         `bad\xffbyte`,
		"\x1b[31mred\x1b[0m":  `\u001b[31mred\u001b[0m`,
		"\u200bzero-width ok": "\u200bzero-width ok",
	} {
		if got := termCell(in); got != want {
			t.Errorf("termCell(%q) = %q, want %q", in, got, want)
		}
	}
	in := map[string]string{"s": "a\u009bb\u202ec\x7fd\u2066e\ttab\u00e9"}
	b, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out := escapeJSONControls(b)
	if want := "{\n  \"s\": \"a\\u009bb\\u202ec\\u007fd\\u2066e\\ttab\u00e9\"\n}"; string(out) != want {
		t.Errorf("escapeJSONControls = %s, want %s", out, want)
	}
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil || back["s"] != in["s"] {
		t.Errorf("the escaped JSON decodes to %q, %v; want %q", back["s"], err, in["s"])
	}
	clean := []byte(`{"a": "b"}`)
	if got := escapeJSONControls(clean); &got[0] != &clean[0] {
		t.Error("escapeJSONControls copied a document with nothing to escape")
	}
}

// TestRevokeByIDIsARangeLookup: a revoke by public id without a user is
// one primary-key range SELECT (key BETWEEN lo AND hi) and one DELETE by
// key, whatever the table holds: no scan of the keys.
func TestRevokeByIDIsARangeLookup(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		pool, counter := storetest.CountedSQL(t, db)
		client := ent.NewClient(ent.Driver(entsql.OpenDB(db.Dialect, pool)))
		if err := client.Schema.Create(ctx); err != nil {
			t.Fatal(err)
		}
		st, err := sqlstore.New(ctx, pool, db.Dialect)
		if err != nil {
			t.Fatal(err)
		}
		m := manager(backend.NewDB(st))
		now := time.Now()
		var keys []string
		for range 50 {
			r := sessRow{key: sessNewKey(), created: now, lastActivity: now, expire: now.Add(time.Hour)}
			keys = append(keys, r.key)
			sessInsert(t, db, []sessRow{r})
		}
		counter.Reset()
		n, missing, err := revoke(ctx, m, "", []string{backend.PublicID(keys[7]), "0000000000000000"})
		if err != nil || n != 1 || len(missing) != 1 || missing[0] != "0000000000000000" {
			t.Fatalf("revoke = %d, missing %v, %v", n, missing, err)
		}
		var sel, del int
		for _, q := range counter.Queries() {
			s := strings.ToUpper(q.SQL)
			switch {
			case strings.HasPrefix(s, "SELECT"):
				sel++
				if !strings.Contains(s, "SESSION_KEY BETWEEN") {
					t.Errorf("a SELECT that is no primary-key range: %s", q.SQL)
				}
			case strings.HasPrefix(s, "DELETE"):
				del++
			}
		}
		if sel != 2 || del != 1 || counter.Count() != 3 {
			t.Errorf("%d SELECTs, %d DELETEs, %d statements; want a range SELECT per id and one DELETE: %v", sel, del, counter.Count(), counter.Queries())
		}
		if got := sessCount(t, db, "1=1"); got != 49 {
			t.Errorf("%d rows left, want 49", got)
		}
	})
}

// TestSessionsBadUser: a --user that cannot be a user_id of the table is
// refused before anything runs, naming the flag and the column's type.
func TestSessionsBadUser(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		f := newSessFixture(t, db)
		for _, args := range [][]string{
			{"sessions", "list", "--db", db.URL, "--user", f.aliceText + "abc"},
			{"sessions", "revoke", "--db", db.URL, "--user", f.aliceText + "abc"},
			{"sessions", "revoke", "--db", db.URL, "--user", f.aliceText + "abc", f.idMac},
		} {
			code, out, errOut := sessCLI(t, args...)
			if code == 0 || out != "" || !strings.Contains(errOut, `--user: qsessions: user ID does not fit the user_id column: "`+f.aliceText+`abc" is not a valid`) {
				t.Errorf("%q: exit %d, %q %q", args, code, out, errOut)
			}
		}
		if n := sessCount(t, db, "1=1"); n != 5 {
			t.Errorf("%d rows left, want all 5", n)
		}
	})
}

// TestSessionsNoTable: a database without the table is one clear error,
// without a repeated "qsessions:".
func TestSessionsNoTable(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		for _, args := range [][]string{
			{"sessions", "list", "--db", db.URL, "--all"},
			{"sessions", "revoke", "--db", db.URL, "0123456789abcdef"},
			{"clear-expired", "--db", db.URL},
		} {
			code, _, errOut := sessCLI(t, args...)
			if code == 0 || !strings.Contains(errOut, "no table qsessions_session") || strings.Count(errOut, "qsessions:") > 0 ||
				!strings.Contains(errOut, "migrate apply") {
				t.Errorf("%q: exit %d, %q", args, code, errOut)
			}
		}
	})
}

// TestSessionsOnMigratedUUIDTable: on a table made by an app's own
// migrations (examples/uuidapp's, applied with `qsessions migrate apply
// --dir`), whose user_id is a UUID, list and revoke take the user ID in any
// spelling and print it as the database does.
func TestSessionsOnMigratedUUIDTable(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		dir := map[string]string{testutil.Postgres: "postgres", testutil.MySQL: "mysql"}[db.Dialect]
		if dir == "" {
			dir = "sqlite"
		}
		if code, _, errOut := sessCLI(t, "migrate", "apply", "--db", db.URL, "--dir", "../../examples/uuidapp/migrations/"+dir); code != 0 {
			t.Fatalf("migrate apply: exit %d: %s", code, errOut)
		}
		acc := uuid.New()
		q := "INSERT INTO accounts (id, email, joined_at) VALUES (?, ?, ?)"
		if db.Dialect == testutil.Postgres {
			q = "INSERT INTO accounts (id, email, joined_at) VALUES ($1, $2, $3)"
		}
		if _, err := db.SQL.ExecContext(ctx, q, acc.String(), "erin@example.com", time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
		st, err := sqlstore.New(ctx, db.SQL, db.Dialect)
		if err != nil {
			t.Fatal(err)
		}
		b := backend.NewDB(st)
		now := time.Now()
		var ids []string
		for i, ua := range []string{sessUAMac, sessUAIPhone, "curl/8"} {
			r := &backend.Record{ExpireDate: now.Add(time.Hour), UserID: acc, UserAgent: ua, CreatedAt: now, UpdatedAt: now,
				LastActivity: now.Add(-time.Duration(i) * time.Minute)}
			if _, err := b.Create(ctx, r, now); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, backend.PublicID(r.Key))
		}
		upper := strings.ToUpper(acc.String())
		code, out, errOut := sessCLI(t, "sessions", "list", "--db", db.URL, "--user", upper, "--json")
		if code != 0 {
			t.Fatalf("list: exit %d: %s", code, errOut)
		}
		got := decodeList(t, out)
		if len(got) != 3 || got[0].ID != ids[0] || got[0].UserID == nil || *got[0].UserID != acc.String() || got[1].Device != "Safari on iPhone" {
			t.Fatalf("list --user (upper case UUID): %s", out)
		}
		code, out, errOut = sessCLI(t, "sessions", "revoke", "--db", db.URL, "--user", upper, ids[1])
		if code != 0 || strings.TrimSpace(out) != "revoked 1 session" {
			t.Fatalf("revoke --user ID: exit %d, %q %q", code, out, errOut)
		}
		code, out, errOut = sessCLI(t, "sessions", "revoke", "--db", db.URL, "--user", "{"+acc.String()+"}")
		if code != 0 || strings.TrimSpace(out) != "revoked 2 sessions" {
			t.Fatalf("revoke --user: exit %d, %q %q", code, out, errOut)
		}
		if n := sessCount(t, db, "1=1"); n != 0 {
			t.Fatalf("%d sessions left", n)
		}
		if code, _, errOut := sessCLI(t, "sessions", "list", "--db", db.URL, "--user", "42"); code == 0 || !strings.Contains(errOut, `"42" is not a valid uuid`) {
			t.Errorf("list --user 42 on a UUID column: exit %d, %q", code, errOut)
		}
	})
}

var scaleRows = flag.Int("sessions.scale", 0, "TestSessionsRevokeScale: fill qsessions_session on PostgreSQL with this many rows (1000000 for issue 13's check) and time `sessions revoke --db URL ID`")

// TestSessionsRevokeScale is issue 13's check, run on demand
// (-sessions.scale=1000000): on a table of that many sessions of 1000
// users, made by `qsessions migrate apply`, `sessions revoke --db URL ID`
// takes under 0.2 s, connecting included (a primary-key range lookup, no
// scan).
func TestSessionsRevokeScale(t *testing.T) {
	if *scaleRows <= 0 {
		t.Skip("run with -sessions.scale=N")
	}
	db := testutil.Open(t, testutil.Postgres)
	if code, _, errOut := sessCLI(t, "migrate", "apply", "--db", db.URL); code != 0 {
		t.Fatalf("migrate apply: exit %d: %s", code, errOut)
	}
	ctx := context.Background()
	start := time.Now()
	for _, q := range []string{
		"INSERT INTO users (username) SELECT 'u'||i FROM generate_series(1,1000) i",
		`INSERT INTO qsessions_session SELECT md5(i::text)||md5((i+7)::text), '\x00'::bytea, now()+interval '7 days',
			'curl/8', '127.0.0.1', now(), now(), now(), (i%1000)+1 FROM generate_series(1,` + strconv.Itoa(*scaleRows) + `) i`,
		"ANALYZE qsessions_session",
	} {
		if _, err := db.SQL.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("filled %d rows in %v", *scaleRows, time.Since(start).Round(time.Millisecond))
	rows, err := db.SQL.QueryContext(ctx, "SELECT left(session_key, 16) FROM qsessions_session TABLESAMPLE SYSTEM (1) LIMIT 20")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	var times []time.Duration
	for _, id := range ids {
		start := time.Now()
		code, out, errOut := sessCLI(t, "sessions", "revoke", "--db", db.URL, id)
		times = append(times, time.Since(start))
		if code != 0 || strings.TrimSpace(out) != "revoked 1 session" {
			t.Fatalf("revoke %s: exit %d, %q %q", id, code, out, errOut)
		}
	}
	slices.Sort(times)
	t.Logf("sessions revoke --db URL ID on %d rows, %d runs: median %v, max %v", *scaleRows, len(times), times[len(times)/2], times[len(times)-1])
	if med := times[len(times)/2]; med > 200*time.Millisecond {
		t.Errorf("median revoke by id took %v, want under 0.2 s", med)
	}
}
