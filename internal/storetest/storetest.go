// Package storetest is the conformance suite of the backend.Store that
// entschema/entcext generates into an app's ent package. Every case runs on
// a fresh database of each dialect (SQLite always; Postgres and
// MySQL/MariaDB when reachable, see testutil), as subtests named
// <case>/<dialect>.
//
// A schema under test supplies a Harness: it opens its ent client over the
// database (through a testutil.CountingDriver), creates the tables, builds
// its store and returns an Env of small functions that do through ent what
// an app does: create and delete users, delete sessions by key and by
// predicate, move expire_date, delete inside a transaction, list a user's
// live sessions with user.QuerySessions(). The reference schema (ent/) and
// examples/uuidapp each implement it once. RunSchema checks the table
// their client.Schema.Create makes on each server. A Store over
// database/sql without ent hooks (sqlstore) sets Env.NoHooks, which skips
// the invalidation cases, and counts its statements with CountedSQL
// (sqldb.go).
//
// Every time the suite hands to the Store is in a non-UTC zone
// (Asia/Tehran) and carries nanoseconds, so a Store that does not convert
// to UTC and truncate to microseconds fails; run the suite with TZ set to
// a non-UTC zone as well.
package storetest

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/internal/testutil"
)

// Env is one schema's store over one fresh database, and the ent
// operations the suite needs. Times passed to the funcs are UTC: on SQLite
// ent compares times as text in the zone they were written in, so ent
// predicates only work with UTC times (the Store converts its own).
type Env struct {
	// Store is the generated store, built with the options the Harness got.
	Store backend.Store
	// Counter is the driver under the store's ent client; it must see every
	// statement the store and the funcs below run.
	Counter *testutil.CountingDriver

	// NewUser creates a user and returns its ID in the schema's ID type.
	NewUser func(ctx context.Context) (any, error)
	// DeleteUser deletes a user through ent (DeleteOneID).
	DeleteUser func(ctx context.Context, id any) error
	// DeleteByKey deletes one session through ent (DeleteOneID).
	DeleteByKey func(ctx context.Context, key string) error
	// DeleteByUserAgent runs Delete().Where(<session>.UserAgent(ua)).
	DeleteByUserAgent func(ctx context.Context, ua string) (int, error)
	// SetExpireDate runs Update().Where(<session>.ID(key)).SetExpireDate(t).
	SetExpireDate func(ctx context.Context, key string, t time.Time) (int, error)
	// DeleteByKeyInTx opens a transaction, deletes the session by key
	// inside it (DeleteOneID) and returns a func that ends it: commit or
	// roll back.
	DeleteByKeyInTx func(ctx context.Context, key string) (end func(commit bool) error, err error)
	// ClearUserSessions runs UpdateOneID(userID).ClearSessions() on the user:
	// the sessions stay, without a user.
	ClearUserSessions func(ctx context.Context, userID any) error
	// RemoveUserSession runs UpdateOneID(userID).RemoveSessionIDs(key).
	RemoveUserSession func(ctx context.Context, userID any, key string) error
	// AddUserSession runs UpdateOneID(userID).AddSessionIDs(key): a
	// session without a user gets this one (ent refuses one with a user).
	AddUserSession func(ctx context.Context, userID any, key string) error
	// LiveSessions returns the keys of
	// user.QuerySessions().Where(<session>.ExpireDateGT(now)) for the user
	// with this ID, in any order.
	LiveSessions func(ctx context.Context, userID any, now time.Time) ([]string, error)
	// CreateBulk inserts the records with one ent CreateBulk statement,
	// as they are (times already UTC).
	CreateBulk func(ctx context.Context, recs []*backend.Record) error

	// NoHooks marks a Store without ent hooks (sqlstore over database/sql):
	// it never calls its Invalidators, so the cases about them are skipped
	// (see sqldb.go); ClearUserSessions, RemoveUserSession and
	// AddUserSession may then be nil. Such a Store's harness counts
	// statements with CountedSQL.
	NoHooks bool
}

// Harness opens the schema under test on db: a client over
// testutil.NewCountingDriver(db.Driver()), the tables
// (client.Schema.Create) and the store built with opts.
type Harness func(t *testing.T, db *testutil.DB, opts ...backend.StoreOption) *Env

// Zone is the zone of every time the suite passes to the Store.
var Zone = func() *time.Location {
	if l, err := time.LoadLocation("Asia/Tehran"); err == nil {
		return l
	}
	return time.FixedZone("+0330", 3*3600+30*60)
}()

// Table is the session table's name, which the suite reads with raw SQL.
const Table = "qsessions_session"

type testCase struct {
	name string
	// keyBatch, when not 0, is passed as backend.WithKeyBatch.
	keyBatch int
	run      func(s *suite)
}

// Run runs every case against h, each as <case>/<dialect> on a fresh
// database.
func Run(t *testing.T, h Harness) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
				s := newSuite(t, db, h, c.keyBatch)
				skipHooks(t, c.name, s.Env)
				c.run(s)
			})
		})
	}
}

// suite is one case on one database.
type suite struct {
	*Env
	t     *testing.T
	ctx   context.Context
	db    *testutil.DB
	clock *testutil.Clock
	rec   *testutil.Recorder
	b     *backend.DB
	seq   int
}

func newSuite(t *testing.T, db *testutil.DB, h Harness, keyBatch int) *suite {
	clock := testutil.NewClock()
	opts := []backend.StoreOption{backend.WithClock(func() time.Time { return clock.Now().In(Zone) })}
	if keyBatch > 0 {
		opts = append(opts, backend.WithKeyBatch(keyBatch))
	}
	env := h(t, db, opts...)
	return &suite{
		Env:   env,
		t:     t,
		ctx:   context.Background(),
		db:    db,
		clock: clock,
		rec:   &testutil.Recorder{},
		b:     backend.NewDB(env.Store),
	}
}

// now is the clock's time in Zone, with nanoseconds.
func (s *suite) now() time.Time { return s.clock.Now().In(Zone).Add(321 * time.Nanosecond) }

// utcNow is the clock's time in UTC, for the ent funcs.
func (s *suite) utcNow() time.Time { return s.clock.Now() }

// record returns a new session record owned by uid (nil: anonymous) that
// expires ttl from now; times in Zone with nanoseconds.
func (s *suite) record(uid any, ttl time.Duration) *backend.Record {
	s.seq++
	seq := s.seq
	now := s.now()
	return &backend.Record{
		Data:         []byte("data #" + strconv.Itoa(seq)),
		ExpireDate:   now.Add(ttl + 789*time.Nanosecond),
		UserID:       uid,
		UserAgent:    "Mozilla/5.0 (X11; Linux x86_64) qsessions-test/" + strconv.Itoa(seq),
		IP:           "192.0.2." + strconv.Itoa(seq%250+1),
		CreatedAt:    now.Add(-2 * time.Hour),
		UpdatedAt:    now.Add(-time.Hour),
		LastActivity: now.Add(-time.Minute),
	}
}

// create stores r through backend.DB.Create and returns its key.
func (s *suite) create(r *backend.Record) string {
	s.t.Helper()
	tok, err := s.b.Create(s.ctx, r, s.now())
	if err != nil {
		s.t.Fatalf("Create: %v", err)
	}
	if r.Key != backend.KeyOf(tok) {
		s.t.Fatalf("Create set rec.Key %q, want KeyOf(token) %q", r.Key, backend.KeyOf(tok))
	}
	return r.Key
}

// live creates a session of uid expiring in an hour.
func (s *suite) live(uid any) string { return s.create(s.record(uid, time.Hour)) }

// expired creates a session of uid that expired an hour ago.
func (s *suite) expired(uid any) string { return s.create(s.record(uid, -time.Hour)) }

func (s *suite) user() any {
	s.t.Helper()
	id, err := s.NewUser(s.ctx)
	if err != nil {
		s.t.Fatalf("NewUser: %v", err)
	}
	return id
}

func (s *suite) get(key string) *backend.Record {
	s.t.Helper()
	r, err := s.Store.Get(s.ctx, key, s.now())
	if err != nil {
		s.t.Fatalf("Get(%.8s): %v", key, err)
	}
	return r
}

// calls returns the Invalidator's calls since the last look.
func (s *suite) calls() [][]string { return s.rec.Calls() }

// rebind turns ? placeholders into Postgres' $n.
func (s *suite) rebind(q string) string { return Rebind(s.db.Dialect, q) }

// rawKeys reads every session_key of the table, sorted, with raw SQL.
func (s *suite) rawKeys() []string {
	s.t.Helper()
	rows, err := s.db.SQL.QueryContext(s.ctx, "SELECT session_key FROM "+Table+" ORDER BY session_key")
	if err != nil {
		s.t.Fatalf("reading keys: %v", err)
	}
	defer rows.Close()
	keys := []string{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			s.t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		s.t.Fatal(err)
	}
	return keys
}

// rawRow is one row read with raw SQL.
type rawRow struct {
	Data                                      []byte
	ExpireDate, CreatedAt, UpdatedAt, LastAct time.Time
	UserAgent, IP                             sql.NullString
	HasUser                                   bool
}

func (s *suite) rawRow(key string) (rawRow, bool) {
	s.t.Helper()
	var r rawRow
	err := s.db.SQL.QueryRowContext(s.ctx, s.rebind(
		"SELECT session_data, expire_date, created_at, updated_at, last_activity, user_agent, ip, user_id IS NOT NULL FROM "+
			Table+" WHERE session_key = ?"), key).
		Scan(&r.Data, &r.ExpireDate, &r.CreatedAt, &r.UpdatedAt, &r.LastAct, &r.UserAgent, &r.IP, &r.HasUser)
	if err == sql.ErrNoRows {
		return r, false
	}
	if err != nil {
		s.t.Fatalf("reading row %.8s: %v", key, err)
	}
	return r, true
}

// statements returns how many recorded statements start with verb.
func (s *suite) statements(verb string) int {
	n := 0
	for _, q := range s.Counter.Queries() {
		if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(q.SQL)), verb) {
			n++
		}
	}
	return n
}
