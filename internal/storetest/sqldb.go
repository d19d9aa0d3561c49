package storetest

// The suite's extension for a Store over database/sql (sqlstore): a pool
// whose statements a CountingDriver records, and the cases a Store without
// ent hooks skips (Env.NoHooks).

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/internal/testutil"
)

// hookCases are the cases about the invalidation hooks the entc extension
// generates; a Store with Env.NoHooks skips them.
var hookCases = map[string]bool{
	"InvalidateDeleteOne":      true,
	"InvalidateDeleteWhere":    true,
	"InvalidateExpireUpdate":   true,
	"InvalidateUserDelete":     true,
	"InvalidateUserEdgeUpdate": true,
	"InvalidateTxCommit":       true,
	"InvalidateTxRollback":     true,
	"InvalidateBatches":        true,
	"SeveralInvalidators":      true,
}

// skipHooks skips t when the case needs ent hooks the Store has not.
func skipHooks(t *testing.T, name string, env *Env) {
	if env.NoHooks && hookCases[name] {
		t.Skip("the Store has no ent hooks (Env.NoHooks): it never calls its Invalidators, so the invalidation cases do not apply")
	}
}

// CountedSQL opens a second pool on db's database whose every statement
// (inside transactions too) is recorded by the returned CountingDriver, as
// Env.Counter needs for a Store over database/sql: give the pool to the
// Store and entsql.OpenDB(db.Dialect, pool) to the ent client of the Env
// funcs. The pool is closed at the end of t. The connections are set up
// as dburl's (MySQL: parseTime, UTC, clientFoundRows, client-side
// arguments; SQLite: foreign keys, WAL, busy timeout), at most 4 at a time.
func CountedSQL(t testing.TB, db *testutil.DB) (*sql.DB, *testutil.CountingDriver) {
	t.Helper()
	dsn, err := driverDSN(db)
	if err != nil {
		t.Fatalf("storetest: the driver DSN of %s: %v", db.URL, err)
	}
	counter := testutil.NewCountingDriver(recordOnly{db.Dialect})
	pool := sql.OpenDB(&countConnector{drv: db.SQL.Driver(), dsn: dsn, counter: counter})
	pool.SetMaxOpenConns(4)
	t.Cleanup(func() { pool.Close() })
	return pool, counter
}

// Rebind turns the ? placeholders of q into Postgres' $n when dialect is
// postgres, for plain SQL that runs on every dialect.
func Rebind(dialect, q string) string {
	if dialect != "postgres" {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// driverDSN returns the DSN of db's URL in its driver's own form.
func driverDSN(db *testutil.DB) (string, error) {
	u, err := url.Parse(db.URL)
	if err != nil {
		return "", err
	}
	switch db.Dialect {
	case dialect.Postgres:
		return db.URL, nil // pgx reads URLs; search_path is a run-time parameter
	case dialect.MySQL:
		pass, _ := u.User.Password()
		q := url.Values{}
		q.Set("parseTime", "true")
		q.Set("loc", "UTC")
		q.Set("clientFoundRows", "true")
		q.Set("interpolateParams", "true")
		q.Set("time_zone", "'+00:00'")
		return u.User.Username() + ":" + pass + "@tcp(" + u.Host + ")" + u.Path + "?" + q.Encode(), nil
	default:
		return dburl.SQLiteDSN(u.Host+u.Path, u.Query()), nil
	}
}

// recordOnly is the ent driver under the CountingDriver of CountedSQL: the
// statements already ran through database/sql, so it runs nothing.
type recordOnly struct{ name string }

func (recordOnly) Exec(context.Context, string, any, any) error  { return nil }
func (recordOnly) Query(context.Context, string, any, any) error { return nil }
func (recordOnly) Tx(context.Context) (dialect.Tx, error)        { return nil, driver.ErrSkip }
func (recordOnly) Close() error                                  { return nil }
func (d recordOnly) Dialect() string                             { return d.name }

// countConnector opens connections of drv that record their statements.
type countConnector struct {
	drv     driver.Driver
	dsn     string
	counter *testutil.CountingDriver
}

func (c *countConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &countConn{Conn: conn, c: c}, nil
}

func (c *countConnector) Driver() driver.Driver { return c.drv }

// record notes one statement that ran.
func (c *countConnector) record(ctx context.Context, query string, args []driver.NamedValue, exec bool) {
	vals := make([]any, len(args))
	for i, a := range args {
		vals[i] = a.Value
	}
	if exec {
		_ = c.counter.Exec(ctx, query, vals, nil)
	} else {
		_ = c.counter.Query(ctx, query, vals, nil)
	}
}

// countConn records what runs on it: statements run directly
// (ExecContext, QueryContext) and prepared ones when they execute.
type countConn struct {
	driver.Conn
	c *countConnector
}

func (cc *countConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := cc.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	res, err := e.ExecContext(ctx, q, args)
	if err != driver.ErrSkip {
		cc.c.record(ctx, q, args, true)
	}
	return res, err
}

func (cc *countConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	e, ok := cc.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	rows, err := e.QueryContext(ctx, q, args)
	if err != driver.ErrSkip {
		cc.c.record(ctx, q, args, false)
	}
	return rows, err
}

func (cc *countConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	var st driver.Stmt
	var err error
	if p, ok := cc.Conn.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(ctx, q)
	} else {
		st, err = cc.Conn.Prepare(q)
	}
	if err != nil {
		return nil, err
	}
	return &countStmt{Stmt: st, c: cc.c, q: q}, nil
}

func (cc *countConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := cc.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	return cc.Conn.Begin() //nolint:staticcheck // the fallback database/sql itself uses
}

func (cc *countConn) CheckNamedValue(v *driver.NamedValue) error {
	if c, ok := cc.Conn.(driver.NamedValueChecker); ok {
		return c.CheckNamedValue(v)
	}
	return driver.ErrSkip
}

func (cc *countConn) Ping(ctx context.Context) error {
	if p, ok := cc.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (cc *countConn) ResetSession(ctx context.Context) error {
	if r, ok := cc.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (cc *countConn) IsValid() bool {
	if v, ok := cc.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// countStmt records a prepared statement each time it executes.
type countStmt struct {
	driver.Stmt
	c *countConnector
	q string
}

func (s *countStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.c.record(ctx, s.q, args, true)
	if e, ok := s.Stmt.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	return s.Stmt.Exec(values(args)) //nolint:staticcheck // the fallback database/sql itself uses
}

func (s *countStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.c.record(ctx, s.q, args, false)
	if q, ok := s.Stmt.(driver.StmtQueryContext); ok {
		return q.QueryContext(ctx, args)
	}
	return s.Stmt.Query(values(args)) //nolint:staticcheck // the fallback database/sql itself uses
}

func (s *countStmt) CheckNamedValue(v *driver.NamedValue) error {
	if c, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return c.CheckNamedValue(v)
	}
	return driver.ErrSkip
}

func values(args []driver.NamedValue) []driver.Value {
	out := make([]driver.Value, len(args))
	for i, a := range args {
		out[i] = a.Value
	}
	return out
}
