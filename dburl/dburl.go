// Package dburl opens a database from an Atlas-style URL, the one URL format
// qsessions' CLI, demo and tests take:
//
//	postgres://user:pass@host:5432/db?sslmode=disable&search_path=public
//	mysql://user:pass@host:3306/db     (maria:// and mariadb:// too)
//	sqlite://path/to/file.db           (sqlite://file?mode=memory too)
//
// Each is translated to its driver's own configuration: pgx's ConnConfig,
// go-sql-driver/mysql's Config with parseTime and loc=UTC, and a mattn
// go-sqlite3 DSN with foreign keys on, WAL, a busy timeout and immediate
// write transactions. No driver name is registered with database/sql: the
// connectors are opened with sql.OpenDB, so an app may register any name.
//
// # Pool and timeouts
//
// database/sql's defaults (no limit on open connections, two idle ones, no
// connect timeout) let a stuck database take every connection the server
// allows and churn new ones when it comes back. Open sets instead, each
// overridable by a query parameter of the URL (removed before the driver
// sees the URL):
//
//	max_open_conns=20       DefaultMaxOpenConns: more requests wait for a connection (bounded by their context)
//	max_idle_conns=20       as many as may be open, so a busy app does not reconnect
//	conn_max_lifetime=30m   DefaultConnMaxLifetime: connections are renewed (fail-overs, server restarts)
//	conn_max_idle_time=5m   DefaultConnMaxIdleTime: idle connections close after a quiet spell
//	connect_timeout=5       seconds (Postgres); MySQL's own timeout=5s the same
//
// On Postgres, max_open_conns bounds sockets, not only pooled
// connections: pgx closes a connection whose statement was interrupted in
// the background (a cancel request, then up to 15 s waiting for the
// server), and a new connection waits, within its context, until such a
// socket has closed. Against a database that stopped answering, the app
// never holds more than max_open_conns connections to it.
//
// MySQL and MariaDB connections also set lock_wait_timeout and
// innodb_lock_wait_timeout to 10 s (overridable as URL parameters): a
// request whose context ended stops waiting on the client side at once,
// and these end its statement on the server soon after instead of a year
// later. SQLite ignores the pool settings but max_open_conns.
package dburl

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/mattn/go-sqlite3"
)

// DB is an open database and what the URL said about it.
type DB struct {
	// SQL is the connection pool.
	SQL *sql.DB
	// Dialect is ent's dialect name: dialect.Postgres, dialect.MySQL or
	// dialect.SQLite.
	Dialect string
	// URL is the URL it was opened from, with any password removed.
	URL string
	// Schema is the database (MySQL), the first search_path entry
	// (Postgres) or "main" (SQLite); "" when the URL names none.
	Schema string
}

// Close closes the pool.
func (d *DB) Close() error { return d.SQL.Close() }

// ErrScheme is returned for a URL whose scheme is not one of the supported.
var ErrScheme = errors.New("dburl: unsupported URL scheme (want postgres://, mysql://, maria:// or sqlite://)")

// Redact returns u with its password replaced by "xxxxx", for messages.
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}

// Defaults of the pool (see the package doc for the URL parameters).
const (
	DefaultMaxOpenConns    = 20
	DefaultConnMaxLifetime = 30 * time.Minute
	DefaultConnMaxIdleTime = 5 * time.Minute
	DefaultConnectTimeout  = 5 * time.Second
)

// pool is the pool settings of a URL.
type pool struct {
	maxOpen, maxIdle  int
	lifetime, idleTTL time.Duration
}

// takePool removes the pool parameters from u's query and returns them
// with the defaults filled in, or an error naming a bad value.
func takePool(u *url.URL) (pool, error) {
	p := pool{maxOpen: DefaultMaxOpenConns, maxIdle: -1, lifetime: DefaultConnMaxLifetime, idleTTL: DefaultConnMaxIdleTime}
	q := u.Query()
	for _, f := range []struct {
		name string
		n    *int
		d    *time.Duration
	}{
		{"max_open_conns", &p.maxOpen, nil},
		{"max_idle_conns", &p.maxIdle, nil},
		{"conn_max_lifetime", nil, &p.lifetime},
		{"conn_max_idle_time", nil, &p.idleTTL},
	} {
		v := q.Get(f.name)
		if v == "" {
			continue
		}
		q.Del(f.name)
		if f.n != nil {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return p, fmt.Errorf("dburl: %s=%q: want a whole number of at least 1", f.name, v)
			}
			*f.n = n
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return p, fmt.Errorf("dburl: %s=%q: want a duration such as 30m (0 for none)", f.name, v)
		}
		*f.d = d
	}
	if p.maxIdle < 0 || p.maxIdle > p.maxOpen {
		p.maxIdle = p.maxOpen
	}
	u.RawQuery = q.Encode()
	return p, nil
}

func (p pool) apply(db *sql.DB) {
	db.SetMaxOpenConns(p.maxOpen)
	db.SetMaxIdleConns(p.maxIdle)
	db.SetConnMaxLifetime(p.lifetime)
	db.SetConnMaxIdleTime(p.idleTTL)
}

// Open parses rawURL and opens a pool with sql.OpenDB, with the pool
// settings and timeouts of the package doc. It does not connect; call Ping
// to find out whether the server is there. Cost: parsing only.
func Open(rawURL string) (*DB, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("dburl: parsing the database URL: %v", errors.Unwrap(err))
	}
	p, err := takePool(u)
	if err != nil {
		return nil, err
	}
	var db *DB
	switch u.Scheme {
	case "postgres", "postgresql":
		db, err = openPostgres(u, p.maxOpen)
	case "mysql", "maria", "mariadb":
		db, err = openMySQL(u)
	case "sqlite", "sqlite3", "file":
		db, err = openSQLite(u)
	case "":
		return nil, fmt.Errorf("%w: %q has no scheme", ErrScheme, Redact(rawURL))
	default:
		return nil, fmt.Errorf("%w: %q", ErrScheme, u.Scheme+"://")
	}
	if err != nil {
		return nil, err
	}
	if db.Dialect == dialect.SQLite {
		if u.Query().Get("mode") != "memory" {
			db.SQL.SetMaxOpenConns(p.maxOpen)
		}
		return db, nil
	}
	p.apply(db.SQL)
	return db, nil
}

func openPostgres(u *url.URL, maxOpen int) (*DB, error) {
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("dburl: postgres URL %q: %w", u.Redacted(), err)
	}
	if u.Query().Get("connect_timeout") == "" {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	schema := ""
	if sp := cfg.RuntimeParams["search_path"]; sp != "" {
		schema = strings.TrimSpace(strings.Split(sp, ",")[0])
	}
	boundPostgres(&cfg.Config, maxOpen) // before GetConnector copies cfg
	return &DB{SQL: sql.OpenDB(boundedConnector{stdlib.GetConnector(*cfg)}), Dialect: dialect.Postgres, URL: u.Redacted(), Schema: schema}, nil
}

func openMySQL(u *url.URL) (*DB, error) {
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" && u.Host != "" {
		cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.MultiStatements = false
	// UPDATE reports matched rows, not changed ones: a save that changes
	// nothing is not mistaken for a revoked session.
	cfg.ClientFoundRows = true
	// Arguments are interpolated client-side (safe with utf8mb4): one round
	// trip per query instead of prepare, execute and close.
	cfg.InterpolateParams = true
	q := u.Query()
	if v := q.Get("socket"); v != "" {
		cfg.Net, cfg.Addr = "unix", v
	}
	if v := q.Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("dburl: mysql URL timeout %q: %w", v, err)
		}
		cfg.Timeout = d
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultConnectTimeout
	}
	// Times are sent as UTC literals and read back as UTC, whatever the
	// server's time zone. A statement waiting on a lock ends on the server
	// after 10 s, long after its request gave up (see the package doc).
	cfg.Params = map[string]string{"time_zone": "'+00:00'", "lock_wait_timeout": "10", "innodb_lock_wait_timeout": "10"}
	for _, k := range []string{"lock_wait_timeout", "innodb_lock_wait_timeout"} {
		if v := q.Get(k); v != "" {
			if n, err := strconv.Atoi(v); err != nil || n < 1 {
				return nil, fmt.Errorf("dburl: mysql URL %s=%q: want whole seconds", k, v)
			}
			cfg.Params[k] = v
		}
	}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("dburl: mysql URL %q: %w", u.Redacted(), err)
	}
	return &DB{SQL: sql.OpenDB(c), Dialect: dialect.MySQL, URL: u.Redacted(), Schema: cfg.DBName}, nil
}

// SQLiteDSN returns the mattn/go-sqlite3 DSN qsessions uses for a file (or
// ":memory:"-style name with mode=memory in query): foreign keys on (the
// cascade from users to sessions needs it), WAL, a 5 s busy timeout,
// immediate write transactions and UTC.
func SQLiteDSN(path string, query url.Values) string {
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	set := func(k, v string) {
		if q.Get(k) == "" {
			q.Set(k, v)
		}
	}
	set("_fk", "1")
	set("_busy_timeout", "5000")
	set("_txlock", "immediate")
	set("_loc", "UTC")
	if q.Get("mode") != "memory" {
		set("_journal_mode", "WAL")
	}
	return "file:" + path + "?" + q.Encode()
}

func openSQLite(u *url.URL) (*DB, error) {
	path := u.Host + u.Path
	if u.Opaque != "" {
		path = u.Opaque
	}
	if path == "" {
		return nil, fmt.Errorf("dburl: sqlite URL %q names no file", u.Redacted())
	}
	dsn := SQLiteDSN(path, u.Query())
	db := sql.OpenDB(sqliteConnector{dsn: dsn})
	if u.Query().Get("mode") == "memory" {
		// Each connection of an in-memory database is a database of its own.
		db.SetMaxOpenConns(1)
	}
	return &DB{SQL: db, Dialect: dialect.SQLite, URL: u.Redacted(), Schema: "main"}, nil
}

// sqliteConnector opens mattn/go-sqlite3 connections without registering
// a driver name.
type sqliteConnector struct{ dsn string }

// sqliteOpenWait bounds how long Connect retries a file that is locked
// while it opens: as long as the busy timeout SQLiteDSN sets.
const sqliteOpenWait = 5 * time.Second

// Connect opens a connection. Opening runs the DSN's pragmas, and
// switching a new file to WAL takes a lock for which SQLite does not use
// its busy timeout: two processes opening a new file at once (two
// instances starting, two migration appliers) would see "database is
// locked". Connect retries that error every 10 ms for up to
// sqliteOpenWait, within ctx.
func (c sqliteConnector) Connect(ctx context.Context) (driver.Conn, error) {
	deadline := time.Now().Add(sqliteOpenWait)
	for {
		conn, err := (&sqlite3.SQLiteDriver{}).Open(c.dsn)
		var se sqlite3.Error
		if err == nil || !errors.As(err, &se) || (se.Code != sqlite3.ErrBusy && se.Code != sqlite3.ErrLocked) || time.Now().After(deadline) {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (c sqliteConnector) Driver() driver.Driver { return &sqlite3.SQLiteDriver{} }
