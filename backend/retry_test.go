package backend_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/internal/testutil"
)

// TestStaleConnectionRetried: the server ends the pooled connection a
// session was loaded on (as a restart does); the next Load is answered on
// a fresh connection instead of failing the request, while a Save (not
// idempotent to retry blindly) reports the failure.
func TestStaleConnectionRetried(t *testing.T) {
	for _, name := range []string{testutil.Postgres, testutil.MySQL} {
		t.Run(name, func(t *testing.T) {
			db := testutil.Open(t, name)
			db.SQL.SetMaxOpenConns(1) // every statement on the one pooled connection
			clock := testutil.NewClock()
			_, store, _ := newClient(t, db, clock, true)
			b := backend.NewDB(store)
			ctx := context.Background()
			r := &backend.Record{Data: []byte("x"), ExpireDate: clock.Now().Add(time.Hour),
				CreatedAt: clock.Now(), UpdatedAt: clock.Now(), LastActivity: clock.Now()}
			if _, err := b.Create(ctx, r, clock.Now()); err != nil {
				t.Fatal(err)
			}
			kill := func() {
				t.Helper()
				var id int64
				q, stmt := "SELECT pg_backend_pid()", "SELECT pg_terminate_backend($1)"
				if name == testutil.MySQL {
					q, stmt = "SELECT CONNECTION_ID()", "KILL ?"
				}
				if err := db.SQL.QueryRowContext(ctx, q).Scan(&id); err != nil {
					t.Fatal(err)
				}
				other := testutil.Open(t, name) // a second server connection to kill the first from
				if _, err := other.SQL.ExecContext(ctx, stmt, id); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			kill()
			got, err := b.Load(ctx, r.Key, clock.Now())
			if err != nil || got.Key != r.Key {
				t.Fatalf("Load after the server ended its connection: %v; want it retried on a fresh connection", err)
			}
		})
	}
}

type sqlStateErr string

func (e sqlStateErr) Error() string    { return "pg: " + string(e) }
func (e sqlStateErr) SQLState() string { return string(e) }

// TestReadRetriedOnceOnlyWhenStale: a stale-connection error gets one more
// try, anything else (or a context that ended) none.
func TestReadRetriedOnceOnlyWhenStale(t *testing.T) {
	for _, tc := range []struct {
		err   error
		calls int
	}{
		{sqlStateErr("57P01"), 2},
		{sqlStateErr("08006"), 2},
		{sqlStateErr("40001"), 1}, // serialization failure: the statement ran
		{sqlStateErr("42P01"), 1}, // no such table
		{errors.New("invalid connection"), 2},
		{errors.New("boom"), 1},
		{context.DeadlineExceeded, 1},
	} {
		calls := 0
		store := &failingStore{MemStore: backend.NewMemStore(), fail: func() error { calls++; return tc.err }}
		_, err := backend.NewDB(store).Load(context.Background(), backend.KeyOf("x"), time.Now())
		if calls != tc.calls || !errors.Is(err, tc.err) {
			t.Errorf("%v: %d calls (%v), want %d", tc.err, calls, err, tc.calls)
		}
	}
}

type failingStore struct {
	*backend.MemStore
	fail func() error
}

func (s *failingStore) Get(context.Context, string, time.Time) (*backend.Record, error) {
	return nil, s.fail()
}
