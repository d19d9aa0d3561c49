package sqlstore_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	entsql "entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/qsessions/qsessions/backend"
	uuident "github.com/qsessions/qsessions/examples/uuidapp/ent"
	"github.com/qsessions/qsessions/internal/storetest"
	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/sqlstore"
)

// TestInsertNew: a batch insert in the caller's transaction inserts the
// new keys, skips the ones the table holds (and repeats within the batch)
// without touching those rows, counts what it inserted, rolls back with
// the transaction, checks every record before any statement, and spans
// several statements past ImportChunk.
func TestInsertNew(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		client, s := refStore(t, db)
		u := client.User.Create().SetUsername("u").SaveX(ctx)
		now := time.Now().UTC()
		old := rec(u.ID, now, time.Hour)
		if err := s.Insert(ctx, old); err != nil {
			t.Fatal(err)
		}
		clash := *old
		clash.Data, clash.UserID = []byte("other"), nil
		fresh := []*backend.Record{rec(u.ID, now, time.Hour), rec(nil, now, time.Hour), rec(strconv.Itoa(u.ID), now, 2*time.Hour)}
		batch := append([]*backend.Record{&clash}, fresh...)
		batch = append(batch, fresh[0]) // a repeat

		// Rolled back: nothing stays.
		tx, _ := db.SQL.BeginTx(ctx, nil)
		if n, err := s.InsertNew(ctx, tx, batch); n != 3 || err != nil {
			t.Fatalf("InsertNew = %d, %v; want 3", n, err)
		}
		tx.Rollback()
		if _, err := s.Get(ctx, fresh[0].Key, now); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("a rolled-back insert stayed: %v", err)
		}

		tx, _ = db.SQL.BeginTx(ctx, nil)
		if n, err := s.InsertNew(ctx, tx, batch); n != 3 || err != nil {
			t.Fatalf("InsertNew = %d, %v; want 3", n, err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, old.Key, now)
		if err != nil || string(got.Data) != "d" || got.UserID != strconv.Itoa(u.ID) {
			t.Fatalf("the existing row was changed: %+v, %v", got, err)
		}
		for _, r := range fresh {
			got, err := s.Get(ctx, r.Key, now)
			if err != nil || !got.ExpireDate.Equal(backend.Time(r.ExpireDate)) || got.IP != "192.0.2.1" || got.UserAgent != "curl/8" {
				t.Fatalf("inserted row %+v, %v", got, err)
			}
		}
		if n, err := s.InsertNew(ctx, db.SQL, batch); n != 0 || err != nil {
			t.Fatalf("again: %d, %v; want 0", n, err)
		}

		// Bad records: an error naming them, before any statement.
		pool, counter := storetest.CountedSQL(t, db)
		cs, err := sqlstore.New(ctx, pool, db.Dialect)
		if err != nil {
			t.Fatal(err)
		}
		counter.Reset()
		if _, err := cs.InsertNew(ctx, pool, []*backend.Record{rec(nil, now, time.Hour), rec("x1", now, time.Hour)}); !errors.Is(err, sqlstore.ErrUserID) {
			t.Fatalf("a malformed user ID: %v", err)
		}
		if _, err := cs.InsertNew(ctx, pool, []*backend.Record{{Key: "bad\x00"}}); err == nil {
			t.Fatal("a malformed key was accepted")
		}
		if n := counter.Count(); n != 0 {
			t.Fatalf("bad records ran %d statements", n)
		}

		// More than one chunk.
		many := make([]*backend.Record, sqlstore.ImportChunk+7)
		for i := range many {
			many[i] = rec(nil, now, time.Duration(i+1)*time.Minute)
		}
		if n, err := s.InsertNew(ctx, db.SQL, many); n != len(many) || err != nil {
			t.Fatalf("%d records: %d, %v", len(many), n, err)
		}
		if n, err := s.InsertNew(ctx, db.SQL, many); n != 0 || err != nil {
			t.Fatalf("%d records again: %d, %v", len(many), n, err)
		}
		// A user the users table lacks is the database's foreign-key error.
		if _, err := s.InsertNew(ctx, db.SQL, []*backend.Record{rec(u.ID+1000, now, time.Hour)}); err == nil {
			t.Fatal("a session of a missing user was inserted")
		}
	})
}

// TestUsersTable finds the table user_id references, on the reference
// schema (users.id, integers) and on uuidapp's (accounts.id, UUIDs), and
// says which users exist in any spelling the store accepts.
func TestUsersTable(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		client, s := refStore(t, db)
		a := client.User.Create().SetUsername("a").SaveX(ctx)
		b := client.User.Create().SetUsername("b").SaveX(ctx)
		users, err := s.UsersTable(ctx)
		if err != nil || users.Table != "users" || users.Column != "id" {
			t.Fatalf("UsersTable = %+v, %v", users, err)
		}
		ids := []string{strconv.Itoa(a.ID), strconv.Itoa(b.ID), strconv.Itoa(b.ID + 10), strconv.Itoa(a.ID)}
		got, err := users.Existing(ctx, db.SQL, ids)
		if err != nil || len(got) != 2 || !got[ids[0]] || !got[ids[1]] || got[ids[2]] {
			t.Fatalf("Existing(%q) = %v, %v", ids, got, err)
		}
		if _, err := users.Existing(ctx, db.SQL, []string{"nope"}); !errors.Is(err, sqlstore.ErrUserID) {
			t.Fatalf("Existing(nope) = %v, want ErrUserID", err)
		}
		many := make([]string, sqlstore.ImportChunk+5)
		for i := range many {
			many[i] = strconv.Itoa(b.ID + 100 + i)
		}
		many[len(many)-1] = strconv.Itoa(a.ID)
		if got, err := users.Existing(ctx, db.SQL, many); err != nil || len(got) != 1 || !got[strconv.Itoa(a.ID)] {
			t.Fatalf("Existing of %d IDs = %v, %v", len(many), got, err)
		}

		// uuidapp, in a database of its own.
		udb := testutil.Open(t, map[string]string{"sqlite3": testutil.SQLite, "postgres": testutil.Postgres, "mysql": testutil.MySQL}[db.Dialect])
		uc := uuident.NewClient(uuident.Driver(entsql.OpenDB(udb.Dialect, udb.SQL)))
		if err := uc.Schema.Create(ctx); err != nil {
			t.Fatal(err)
		}
		acc := uc.Account.Create().SetEmail("e@example.com").SaveX(ctx)
		us, err := sqlstore.New(ctx, udb.SQL, udb.Dialect)
		if err != nil {
			t.Fatal(err)
		}
		ut, err := us.UsersTable(ctx)
		if err != nil || ut.Table != "accounts" || ut.Column != "id" {
			t.Fatalf("uuidapp: UsersTable = %+v, %v", ut, err)
		}
		canon, _ := us.ParseUserID(strings.ToUpper(acc.ID.String()))
		got, err = ut.Existing(ctx, udb.SQL, []string{canon, uuid.NewString()})
		if err != nil || len(got) != 1 || !got[acc.ID.String()] {
			t.Fatalf("uuidapp: Existing = %v, %v", got, err)
		}
	})
}

// TestNoUsersTable: a user_id without a foreign key is ErrNoUsersTable.
func TestNoUsersTable(t *testing.T) {
	db := testutil.Open(t, testutil.SQLite)
	if _, err := db.SQL.Exec(`CREATE TABLE qsessions_session (session_key text PRIMARY KEY, session_data blob NOT NULL,
		expire_date datetime NOT NULL, user_id integer, user_agent text, ip text, created_at datetime NOT NULL,
		updated_at datetime NOT NULL, last_activity datetime NOT NULL, dbsc_key text, dbsc_secret blob)`); err != nil {
		t.Fatal(err)
	}
	s, err := sqlstore.New(context.Background(), db.SQL, db.Dialect)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UsersTable(context.Background()); !errors.Is(err, sqlstore.ErrNoUsersTable) {
		t.Fatalf("UsersTable = %v, want ErrNoUsersTable", err)
	}
}
