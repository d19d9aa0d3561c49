package sqlstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	entsql "entgo.io/ent/dialect/sql"
	"github.com/go-sql-driver/mysql"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/ent"
	uuident "github.com/qsessions/qsessions/examples/uuidapp/ent"
	"github.com/qsessions/qsessions/internal/storetest"
	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/sqlstore"
)

// rec is a live session record of uid created at now.
func rec(uid any, now time.Time, ttl time.Duration) *backend.Record {
	return &backend.Record{Key: backend.KeyOf(fmt.Sprint(now.UnixNano(), uid, ttl, time.Now().UnixNano())), Data: []byte("d"),
		ExpireDate: now.Add(ttl), UserID: uid, UserAgent: "curl/8", IP: "192.0.2.1",
		CreatedAt: now, UpdatedAt: now, LastActivity: now}
}

// refStore creates the reference schema on db and returns its ent client
// and a Store over db's pool.
func refStore(t *testing.T, db *testutil.DB) (*ent.Client, *sqlstore.Store) {
	t.Helper()
	ctx := context.Background()
	client := ent.NewClient(ent.Driver(db.Driver()))
	if err := client.Schema.Create(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := sqlstore.New(ctx, db.SQL, db.Dialect)
	if err != nil {
		t.Fatal(err)
	}
	return client, s
}

// TestUUIDUserIDs: on a table whose user_id is a UUID, a user ID is
// accepted in any of its spellings and read back as the database prints
// it; a malformed one is ErrUserID with no query, on every database.
func TestUUIDUserIDs(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		pool, counter := storetest.CountedSQL(t, db)
		client := uuident.NewClient(uuident.Driver(entsql.OpenDB(db.Dialect, pool)))
		if err := client.Schema.Create(ctx); err != nil {
			t.Fatal(err)
		}
		s, err := sqlstore.New(ctx, pool, db.Dialect)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"sqlite3": "uuid", "postgres": "uuid", "mysql": "uuid"}[db.Dialect]; s.UserIDType() != want {
			t.Errorf("UserIDType = %q, want %q", s.UserIDType(), want)
		}
		acc := client.Account.Create().SetEmail("erin@example.com").SaveX(ctx)
		now := time.Now().UTC()
		// Written as a uuid.UUID (a fmt.Stringer), as upper case text, braced.
		for _, id := range []any{acc.ID, strings.ToUpper(acc.ID.String()), "{" + acc.ID.String() + "}"} {
			if err := s.Insert(ctx, rec(id, now, time.Hour)); err != nil {
				t.Fatalf("Insert with user %v: %v", id, err)
			}
		}
		for _, id := range []any{acc.ID, acc.ID.String(), strings.ToUpper(acc.ID.String()), strings.ReplaceAll(acc.ID.String(), "-", "")} {
			rs, err := s.UserSessions(ctx, id, now)
			if err != nil || len(rs) != 3 {
				t.Fatalf("UserSessions(%v) = %d, %v; want 3", id, len(rs), err)
			}
			for _, r := range rs {
				if r.UserID != acc.ID.String() {
					t.Errorf("UserID read back as %#v, want %q", r.UserID, acc.ID.String())
				}
			}
		}
		if got, err := s.ParseUserID(strings.ToUpper(acc.ID.String())); err != nil || got != acc.ID.String() {
			t.Errorf("ParseUserID(upper case) = %q, %v", got, err)
		}
		counter.Reset()
		for _, bad := range []any{"not-a-uuid", acc.ID.String() + "0", "", "42", []byte("x"), 3.5, "\x00"} {
			if _, err := s.UserSessions(ctx, bad, now); !errors.Is(err, sqlstore.ErrUserID) {
				t.Errorf("UserSessions(%#v) = %v; want ErrUserID", bad, err)
			}
			if err := s.Insert(ctx, rec(bad, now, time.Hour)); !errors.Is(err, sqlstore.ErrUserID) || !strings.Contains(err.Error(), "user") {
				t.Errorf("Insert with user %#v = %v; want ErrUserID", bad, err)
			}
		}
		if n := counter.Count(); n != 0 {
			t.Errorf("malformed user IDs ran %d statements, want none: %v", n, counter.Queries())
		}
		// Another user's ID that is a valid UUID: no sessions, no error.
		if rs, err := s.UserSessions(ctx, uuid.New(), now); err != nil || len(rs) != 0 {
			t.Errorf("UserSessions(unknown UUID) = %v, %v", rs, err)
		}
	})
}

// TestIntegerUserIDs: on an integer user_id, "42abc" (which MySQL would
// compare equal to 42) and other non-integers are ErrUserID; "042" and 42
// are the same user, read back as "42".
func TestIntegerUserIDs(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		client, s := refStore(t, db)
		u := client.User.Create().SetUsername("u").SaveX(ctx)
		now := time.Now().UTC()
		text := fmt.Sprint(u.ID)
		if err := s.Insert(ctx, rec(u.ID, now, time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.Insert(ctx, rec(int64(u.ID), now, time.Hour)); err != nil {
			t.Fatal(err)
		}
		for _, id := range []any{text, "0" + text, u.ID, uint8(u.ID)} {
			rs, err := s.UserSessions(ctx, id, now)
			if err != nil || len(rs) != 2 || rs[0].UserID != text {
				t.Fatalf("UserSessions(%#v) = %v, %v; want 2 sessions of %q", id, rs, err, text)
			}
		}
		for _, bad := range []string{text + "abc", " " + text, text + ".0", "1e3", "", "99999999999999999999"} {
			if _, err := s.UserSessions(ctx, bad, now); !errors.Is(err, sqlstore.ErrUserID) || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
				t.Errorf("UserSessions(%q) = %v; want ErrUserID naming it", bad, err)
			}
			if keys, err := s.ExcessKeys(ctx, bad, now, 0); !errors.Is(err, sqlstore.ErrUserID) || keys != nil {
				t.Errorf("ExcessKeys(%q) = %v, %v; want ErrUserID", bad, keys, err)
			}
		}
	})
}

// TestLive lists every user's live sessions, newest activity first,
// without their data.
func TestLive(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		client, s := refStore(t, db)
		u := client.User.Create().SetUsername("u").SaveX(ctx)
		now := time.Now().UTC().Truncate(time.Microsecond)
		var want []string
		for i := range 5 {
			r := rec(nil, now, time.Hour)
			if i%2 == 0 {
				r.UserID = u.ID
			}
			r.LastActivity = now.Add(-time.Duration(i) * time.Minute)
			if err := s.Insert(ctx, r); err != nil {
				t.Fatal(err)
			}
			want = append(want, r.Key)
		}
		if err := s.Insert(ctx, rec(u.ID, now, -time.Second)); err != nil {
			t.Fatal(err)
		}
		all, err := s.Live(ctx, now, 0)
		if err != nil || len(all) != 5 {
			t.Fatalf("Live(0) = %d, %v; want the 5 live sessions", len(all), err)
		}
		for i, r := range all {
			if r.Key != want[i] || r.Data != nil || !r.LastActivity.Equal(now.Add(-time.Duration(i)*time.Minute)) {
				t.Errorf("Live[%d] = %.8s (data %q, last activity %v), want %.8s without data", i, r.Key, r.Data, r.LastActivity, want[i])
			}
			if (i%2 == 0) != (r.UserID == fmt.Sprint(u.ID)) {
				t.Errorf("Live[%d].UserID = %#v", i, r.UserID)
			}
		}
		if two, err := s.Live(ctx, now, 2); err != nil || len(two) != 2 || two[1].Key != want[1] {
			t.Errorf("Live(2) = %v, %v", two, err)
		}
		if _, err := s.Live(ctx, now, -1); err == nil {
			t.Error("Live(-1) gave no error")
		}
	})
}

// TestMySQLWithoutFoundRowsOrParseTime runs a store over a MySQL pool as a
// caller may open it: no clientFoundRows (an UPDATE that changes nothing
// counts 0 rows), no parseTime (times come as text), server-side prepared
// statements (LIMIT ?).
func TestMySQLWithoutFoundRowsOrParseTime(t *testing.T) {
	db := testutil.Open(t, testutil.MySQL)
	ctx := context.Background()
	client := ent.NewClient(ent.Driver(db.Driver()))
	if err := client.Schema.Create(ctx); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(db.URL)
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.DBName = "tcp", u.Host, u.User.Username(), strings.TrimPrefix(u.Path, "/")
	cfg.Passwd, _ = u.User.Password()
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pool := sql.OpenDB(conn)
	defer pool.Close()
	s, err := sqlstore.New(ctx, pool, "mysql")
	if err != nil {
		t.Fatal(err)
	}
	user := client.User.Create().SetUsername("u").SaveX(ctx)
	now := time.Date(2030, 5, 6, 7, 8, 9, 123456789, time.UTC)
	r := rec(user.ID, now, time.Hour)
	if err := s.Insert(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, r.Key, now)
	if err != nil {
		t.Fatal(err)
	}
	if !got.ExpireDate.Equal(backend.Time(r.ExpireDate)) || got.LastActivity != backend.Time(now) || got.UserID != fmt.Sprint(user.ID) {
		t.Errorf("Get = %+v; want the times written (UTC, microseconds)", got)
	}
	for i := range 2 {
		if err := s.Update(ctx, got, now); err != nil {
			t.Fatalf("unchanged save #%d: %v", i+1, err)
		}
	}
	if keys, err := s.ExcessKeys(ctx, user.ID, now, 0); err != nil || len(keys) != 1 {
		t.Fatalf("ExcessKeys = %v, %v", keys, err)
	}
	if n, err := s.Delete(ctx, r.Key); err != nil || n != 1 {
		t.Fatalf("Delete = %d, %v", n, err)
	}
	if err := s.Update(ctx, got, now); !errors.Is(err, backend.ErrSessionInterrupted) {
		t.Fatalf("save after delete: %v, want ErrSessionInterrupted", err)
	}
	if err := s.Insert(ctx, rec(nil, now.Add(-2*time.Hour), time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, last, err := s.DeleteExpired(ctx, time.Time{}, now, 10); err != nil || n != 1 || !last.Equal(backend.Time(now.Add(-time.Hour))) {
		t.Fatalf("DeleteExpired = %d, %v, %v", n, last, err)
	}
}

// TestBadKeys: keys that no database stores alike (invalid UTF-8, NUL)
// find nothing and delete nothing, with no query, on every database.
func TestBadKeys(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		pool, counter := storetest.CountedSQL(t, db)
		if err := ent.NewClient(ent.Driver(entsql.OpenDB(db.Dialect, pool))).Schema.Create(ctx); err != nil {
			t.Fatal(err)
		}
		s, err := sqlstore.New(ctx, pool, db.Dialect)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		counter.Reset()
		for _, k := range []string{"a\x00b", "\xff\xfe"} {
			if _, err := s.Get(ctx, k, now); !errors.Is(err, backend.ErrNotFound) {
				t.Errorf("Get(%q) = %v", k, err)
			}
			if n, err := s.Delete(ctx, k); err != nil || n != 0 {
				t.Errorf("Delete(%q) = %d, %v", k, n, err)
			}
			r := rec(nil, now, time.Hour)
			r.Key = k
			if err := s.Insert(ctx, r); err == nil || errors.Is(err, backend.ErrKeyExists) {
				t.Errorf("Insert(%q) = %v; want an error naming the key", k, err)
			}
			if err := s.Update(ctx, r, now); !errors.Is(err, backend.ErrSessionInterrupted) {
				t.Errorf("Update(%q) = %v", k, err)
			}
		}
		if _, _, err := s.DeleteExpired(ctx, time.Time{}, now, 0); err == nil {
			t.Error("DeleteExpired with limit 0 gave no error")
		}
		if n := counter.Count(); n != 0 {
			t.Errorf("%d statements for keys no row can have: %v", n, counter.Queries())
		}
	})
}

// TestIsUniqueViolation recognises each driver's error, wrapped or
// joined, and nothing else.
func TestIsUniqueViolation(t *testing.T) {
	sqliteUnique := errors.New("UNIQUE constraint failed: qsessions_session.session_key")
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "23505", Message: "doppelter Schlüsselwert verletzt Unique-Constraint"}, true},
		{fmt.Errorf("inserting: %w", &pgconn.PgError{Code: "23505"}), true},
		{&pgconn.PgError{Code: "23503", Message: "violates foreign key constraint"}, false},
		{&mysql.MySQLError{Number: 1062, Message: "Duplicate entry"}, true},
		{errors.Join(errors.New("x"), fmt.Errorf("y: %w", &mysql.MySQLError{Number: 1062})), true},
		{&mysql.MySQLError{Number: 1452, Message: "Cannot add or update a child row"}, false},
		{sqliteUnique, true},
		{fmt.Errorf("exec: %w", sqliteUnique), true},
		{errors.New("FOREIGN KEY constraint failed"), false},
		{errors.New("Error 1062 in a message that is no MySQL error"), false},
		{nil, false},
	} {
		if got := sqlstore.IsUniqueViolation(c.err); got != c.want {
			t.Errorf("IsUniqueViolation(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestNoDrivers: the package links no database driver, so a Postgres app
// that uses it links neither go-sqlite3 nor the MySQL driver.
func TestNoDrivers(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/qsessions/qsessions/sqlstore").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v: %s", err, out)
	}
	for _, bad := range []string{"github.com/mattn/go-sqlite3", "github.com/go-sql-driver/mysql", "github.com/jackc/pgx", "github.com/lib/pq", "modernc.org/sqlite"} {
		if bytes.Contains(out, []byte(bad)) {
			t.Errorf("sqlstore depends on %s", bad)
		}
	}
}
