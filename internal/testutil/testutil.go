// Package testutil gives qsessions' tests real databases: SQLite in temp
// files always, Postgres and MySQL/MariaDB when reachable, each test in a
// fresh schema or database of its own. It also holds a query-counting ent
// driver, a recording Invalidator and a fake UTC clock.
//
// Servers come from QSESSIONS_TEST_POSTGRES and QSESSIONS_TEST_MYSQL
// (Atlas-style URLs, defaults below). A test whose server is absent skips
// with a one-line reason, unless QSESSIONS_TEST_REQUIRE names it
// (comma-separated: postgres,mysql,memcached,chromium), as CI sets it: then
// it fails.
package testutil

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/qsessions/qsessions/dburl"
)

// Default server URLs.
const (
	DefaultPostgres = "postgres://root@127.0.0.1:5432/test?sslmode=disable"
	DefaultMySQL    = "mysql://root:@127.0.0.1:3306/test"
)

// Dialect names used as subtest names.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
	MySQL    = "mysql"
)

// AllDialects lists every dialect, SQLite first.
var AllDialects = []string{SQLite, Postgres, MySQL}

// Required reports whether QSESSIONS_TEST_REQUIRE names what.
func Required(what string) bool {
	return slices.Contains(strings.Split(os.Getenv("QSESSIONS_TEST_REQUIRE"), ","), what)
}

// Unavailable skips t with reason, or fails it when what is required.
func Unavailable(t testing.TB, what, reason string) {
	t.Helper()
	if Required(what) {
		t.Fatalf("%s is required (QSESSIONS_TEST_REQUIRE) but unavailable: %s", what, reason)
	}
	t.Skipf("%s unavailable: %s", what, reason)
}

// Env returns the environment variable name, or def when it is unset.
func Env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// DB is a test database of one dialect, fresh for one test.
type DB struct {
	Dialect string
	// SQL is the pool, on the fresh schema/database.
	SQL *sql.DB
	// URL opens the same fresh schema/database (for code under test that
	// takes a URL, such as the CLI).
	URL string
}

// Driver returns an ent driver over the pool.
func (d *DB) Driver() dialect.Driver { return entsql.OpenDB(d.Dialect, d.SQL) }

var (
	probeMu sync.Mutex
	probed  = map[string]error{}
)

// probe connects once per process per server and remembers the answer.
func probe(name, rawURL string) error {
	probeMu.Lock()
	defer probeMu.Unlock()
	if err, ok := probed[name]; ok {
		return err
	}
	db, err := dburl.Open(rawURL)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = db.SQL.PingContext(ctx)
		cancel()
		db.Close()
	}
	probed[name] = err
	return err
}

func randName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "qs_t_" + hex.EncodeToString(b[:])
}

// Open returns a fresh database of dialect for t, dropped at cleanup:
// a temp file for SQLite, a new schema for Postgres, a new database for
// MySQL. Pools are small: Postgres allows 100 connections in all.
func Open(t testing.TB, name string) *DB {
	t.Helper()
	switch name {
	case SQLite:
		return openSQLite(t)
	case Postgres, MySQL:
		return openServer(t, servers[name])
	}
	t.Fatalf("testutil: unknown dialect %q", name)
	return nil
}

func openSQLite(t testing.TB) *DB {
	path := filepath.Join(t.TempDir(), "test.db")
	u := "sqlite://" + path
	db, err := dburl.Open(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &DB{Dialect: dialect.SQLite, SQL: db.SQL, URL: u}
}

// server describes how to make a fresh namespace on one server: a schema
// (Postgres) or a database (MySQL), and the URL that opens it.
type server struct {
	name, env, def, dialect string
	create, drop            string // statements; %s is the namespace
	use                     func(u *url.URL, ns string)
}

var servers = map[string]server{
	Postgres: {
		name: Postgres, env: "QSESSIONS_TEST_POSTGRES", def: DefaultPostgres, dialect: dialect.Postgres,
		create: "CREATE SCHEMA %s", drop: "DROP SCHEMA %s CASCADE",
		use: func(u *url.URL, ns string) {
			q := u.Query()
			q.Set("search_path", ns)
			u.RawQuery = q.Encode()
		},
	},
	MySQL: {
		name: MySQL, env: "QSESSIONS_TEST_MYSQL", def: DefaultMySQL, dialect: dialect.MySQL,
		create: "CREATE DATABASE %s CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", drop: "DROP DATABASE %s",
		use: func(u *url.URL, ns string) { u.Path = "/" + ns },
	},
}

// openServer creates a fresh namespace on the server, opens a small pool on
// it, and drops it at cleanup.
func openServer(t testing.TB, srv server) *DB {
	base := Env(srv.env, srv.def)
	if err := probe(srv.name, base); err != nil {
		Unavailable(t, srv.name, fmt.Sprintf("%s: %v", dburl.Redact(base), err))
	}
	exec := func(stmt string) error {
		admin, err := dburl.Open(base)
		if err != nil {
			return err
		}
		defer admin.Close()
		_, err = admin.SQL.ExecContext(context.Background(), stmt)
		return err
	}
	ns := randName()
	if err := exec(fmt.Sprintf(srv.create, ns)); err != nil {
		t.Fatalf("creating %s: %v", ns, err)
	}
	u, _ := url.Parse(base)
	srv.use(u, ns)
	db, err := dburl.Open(u.String())
	if err != nil {
		t.Fatal(err)
	}
	db.SQL.SetMaxOpenConns(4)
	t.Cleanup(func() {
		db.Close()
		_ = exec(fmt.Sprintf(srv.drop, ns))
	})
	return &DB{Dialect: srv.dialect, SQL: db.SQL, URL: u.String()}
}

// EachDialect runs f as a subtest named by each dialect, each with a fresh
// database.
func EachDialect(t *testing.T, f func(t *testing.T, db *DB)) {
	for _, d := range AllDialects {
		t.Run(d, func(t *testing.T) { f(t, Open(t, d)) })
	}
}
