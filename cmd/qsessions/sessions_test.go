package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/ent"
	uuident "github.com/qsessions/qsessions/examples/uuidapp/ent"
	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/location/locationtest"
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
		if !strings.HasPrefix(lines[1], f.idMac) || !strings.Contains(lines[1], "Other / macOS / Chrome") ||
			!strings.Contains(lines[1], "London, United Kingdom") || !strings.Contains(lines[1], "81.2.69.142") {
			t.Errorf("first row: %q", lines[1])
		}
		if !strings.HasPrefix(lines[2], f.idIPhone) || !strings.Contains(lines[2], "iPhone / iOS / Mobile Safari") {
			t.Errorf("second row: %q", lines[2])
		}

		code, out, errOut = sessCLI(t, "sessions", "list", "--db", db.URL, "--all", "--json")
		if code != 0 {
			t.Fatalf("list --all --json: exit %d: %s", code, errOut)
		}
		var got struct {
			Sessions []struct {
				ID           string    `json:"id"`
				UserID       *string   `json:"user_id"`
				Device       string    `json:"device"`
				Location     string    `json:"location"`
				IP           string    `json:"ip"`
				CreatedAt    time.Time `json:"created_at"`
				LastActivity time.Time `json:"last_activity"`
				ExpireDate   time.Time `json:"expire_date"`
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
		if s := got.Sessions[2]; s.UserID == nil || *s.UserID != f.bobText || s.Device != "Other / Other / curl 8.4.0" || s.IP != "2001:db8::1" {
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

		// By public id, scanning every live session.
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
		// Every session of a user, live and expired.
		code, out, errOut = sessCLI(t, "sessions", "revoke", "--db", db.URL, "--user", f.aliceText)
		if code != 0 || strings.TrimSpace(out) != "revoked 2 sessions" || live(f.aliceMac.key) || live(f.aliceOld.key) {
			t.Fatalf("revoke --user: exit %d, %q %q", code, out, errOut)
		}
		if !live(f.anon.key) || sessCount(t, db, "1=1") != 1 {
			t.Fatalf("only the anonymous session should be left")
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
	mc, err := backend.NewMemcache([]string{addr}, backend.MemcacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	b, err := backend.NewCachedDB(ent.NewSessionStore(client), mc, backend.CachedOptions{Prefix: prefix})
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
	code, out, errOut := sessCLI(t, "sessions", "revoke", "--db", db.URL, "--memcache", addr, "--cache-prefix", prefix, backend.PublicID(rec.Key))
	if code != 0 || strings.TrimSpace(out) != "revoked 1 session" {
		t.Fatalf("revoke: exit %d, %q %q", code, out, errOut)
	}
	if _, err := b.Load(ctx, rec.Key, time.Now()); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("after the CLI revoke the cached_db backend still loads the session: %v", err)
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
		var got struct {
			Sessions []struct {
				ID     string `json:"id"`
				UserID string `json:"user_id"`
			} `json:"sessions"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Sessions) != 2 || !strings.EqualFold(got.Sessions[0].UserID, acc.ID.String()) {
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
