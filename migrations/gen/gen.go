// Package gen writes Atlas migration directories from ent's tables: the
// reference directories under migrations/ and those of examples/uuidapp are
// generated with it, and an app may use it for its own.
//
// For each dialect it replays the directory into a clean, throwaway dev
// database (a new Postgres database, a new MariaDB/MySQL database, an
// in-memory SQLite database), diffs the result against ent's tables with
// ent's NamedDiff and, when they differ, writes one new file in Atlas'
// default format (<version>_<name>.sql) and rewrites atlas.sum. When they do
// not differ it writes nothing, so running it again reproduces the
// directory byte for byte.
//
// Versions are fixed, not the wall clock: the first file gets FirstVersion,
// each later one the day after the latest file (or Config.Version).
//
// For an app whose database was created by ent's Schema.Create, AdoptTables
// (from its ent tables) and AdoptDatabase (from the live database, only
// read; `qsessions migrate adopt`) write a baseline of its tables and a
// separate file that adds qsessions_session; see docs/migrations.md.
package gen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	entschema "entgo.io/ent/dialect/sql/schema"

	"github.com/qsessions/qsessions/dburl"
)

// FirstVersion is the version of the first file of a new directory.
const FirstVersion = "20261125000000"

// versionLayout is the layout of timestamp versions (Atlas' own).
const versionLayout = "20060102150405"

// Default dev-server URLs, the same as the test suite's; the environment
// variables QSESSIONS_TEST_POSTGRES and QSESSIONS_TEST_MYSQL override them.
const (
	DefaultPostgresURL = "postgres://root@127.0.0.1:5432/test?sslmode=disable"
	DefaultMySQLURL    = "mysql://root:@127.0.0.1:3306/test"
)

// Dialects are the directories Generate writes by default, named by the
// Atlas URL scheme of their dialect: postgres, mysql and sqlite.
var Dialects = []string{"postgres", "mysql", "sqlite"}

// EntDialect returns ent's dialect name for a directory name (postgres,
// mysql, sqlite; ent's own names and maria/mariadb are accepted too).
// Cost: a string switch.
func EntDialect(name string) (string, error) {
	switch name {
	case "postgres", "postgresql":
		return dialect.Postgres, nil
	case "mysql", "maria", "mariadb":
		return dialect.MySQL, nil
	case "sqlite", "sqlite3":
		return dialect.SQLite, nil
	}
	return "", fmt.Errorf("unsupported dialect %q (want postgres, mysql or sqlite)", name)
}

// Config says what to generate where.
type Config struct {
	// Root holds one directory per dialect (Root/postgres, Root/mysql,
	// Root/sqlite); missing ones are created.
	Root string
	// Tables are ent's tables, usually the generated ent/migrate.Tables.
	Tables []*entschema.Table
	// Dialects to generate, by directory name; nil means Dialects.
	Dialects []string
	// Name of a new file; "" means "initial" for the first file of a
	// directory and "changes" for later ones.
	Name string
	// Version of a new file; "" means FirstVersion for the first file and
	// the day after the latest file's version for later ones.
	Version string
	// PostgresURL and MySQLURL are the servers that host the throwaway dev
	// databases (Atlas-style URLs); "" means the environment variables
	// QSESSIONS_TEST_POSTGRES / QSESSIONS_TEST_MYSQL, then the defaults.
	// The user needs the right to create and drop databases.
	PostgresURL, MySQLURL string
}

// Result reports what Generate did for one dialect.
type Result struct {
	Dialect string
	// File is the name of the new file, "" when the directory was already
	// up to date.
	File string
}

// Generate brings each dialect's directory under cfg.Root up to date with
// cfg.Tables. Cost: per dialect, one throwaway dev database created,
// replayed into and dropped (a few hundred milliseconds on a local server).
// It fails, naming the dialect, when a server is unreachable; it never
// skips a dialect silently.
func Generate(ctx context.Context, cfg Config) ([]Result, error) {
	if err := checkTables(cfg.Tables); err != nil {
		return nil, fmt.Errorf("gen: %w", err)
	}
	dialects := cfg.Dialects
	if dialects == nil {
		dialects = Dialects
	}
	var out []Result
	for _, d := range dialects {
		name, err := GenerateDialect(ctx, d, filepath.Join(cfg.Root, d), cfg)
		if err != nil {
			return out, fmt.Errorf("gen %s: %w", d, err)
		}
		out = append(out, Result{Dialect: d, File: name})
	}
	return out, nil
}

// GenerateDialect brings one directory, path, up to date with cfg.Tables
// for dialect name (postgres, mysql or sqlite; cfg.Root and cfg.Dialects are
// ignored). It returns the name of the file it wrote, or "" when nothing
// changed. Cost: as Generate's, for one dialect.
func GenerateDialect(ctx context.Context, name, path string, cfg Config) (string, error) {
	if err := checkTables(cfg.Tables); err != nil {
		return "", err
	}
	d, err := EntDialect(name)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return "", err
	}
	dir, err := migrate.NewLocalDir(path)
	if err != nil {
		return "", err
	}
	if err := migrate.Validate(dir); err != nil {
		return "", fmt.Errorf("directory %s does not match its atlas.sum (%w); fix the edit or restore the file before generating", path, err)
	}
	files, err := dir.Files()
	if err != nil {
		return "", err
	}
	version, fname := cfg.Version, cfg.Name
	if len(files) == 0 {
		if version == "" {
			version = FirstVersion
		}
		if fname == "" {
			fname = "initial"
		}
	} else {
		last := files[len(files)-1].Version()
		if version == "" {
			if version, err = NextVersion(last); err != nil {
				return "", err
			}
		}
		if version <= last {
			return "", fmt.Errorf("version %s is not after the latest file's version %s", version, last)
		}
		if fname == "" {
			fname = "changes"
		}
	}
	dev, drop, err := openDev(ctx, d, cfg)
	if err != nil {
		return "", err
	}
	defer drop()
	rec := &recordingDir{LocalDir: dir}
	m, err := entschema.NewMigrate(entsql.OpenDB(d, dev.SQL),
		entschema.WithDir(rec),
		entschema.WithFormatter(fixedVersion(version)),
		entschema.WithMigrationMode(entschema.ModeReplay),
		entschema.WithDropColumn(true),
		entschema.WithDropIndex(true),
	)
	if err != nil {
		return "", err
	}
	if err := m.NamedDiff(ctx, fname, cfg.Tables...); err != nil {
		return "", err
	}
	return rec.written, nil
}

func checkTables(tables []*entschema.Table) error {
	if len(tables) == 0 {
		return errors.New("no tables given")
	}
	for i, t := range tables {
		if t == nil || t.Name == "" || len(t.Columns) == 0 {
			return fmt.Errorf("table %d is nil, unnamed or has no columns", i)
		}
		for _, c := range t.Columns {
			if c == nil {
				return fmt.Errorf("table %s has a nil column", t.Name)
			}
		}
	}
	return nil
}

// NextVersion returns the version after last: the next midnight for a
// timestamp version (20261125000000 -> 20261126000000), last+1 for a plain
// number. Cost: parsing only.
func NextVersion(last string) (string, error) {
	if t, err := time.Parse(versionLayout, last); err == nil && len(last) == len(versionLayout) {
		return t.Truncate(24 * time.Hour).Add(24 * time.Hour).Format(versionLayout), nil
	}
	if n, err := strconv.ParseUint(last, 10, 63); err == nil {
		return strconv.FormatUint(n+1, 10), nil
	}
	return "", fmt.Errorf("cannot compute the version after %q; set Config.Version", last)
}

// fixedVersion formats plans with Atlas' DefaultFormatter under a fixed
// version instead of the current time.
type fixedVersion string

func (v fixedVersion) Format(p *migrate.Plan) ([]migrate.File, error) {
	cp := *p
	cp.Version = string(v)
	return migrate.DefaultFormatter.Format(&cp)
}

// recordingDir remembers the migration file ent's planner writes.
type recordingDir struct {
	*migrate.LocalDir
	written string
}

func (d *recordingDir) WriteFile(name string, b []byte) error {
	if strings.HasSuffix(name, ".sql") {
		d.written = name
	}
	return d.LocalDir.WriteFile(name, b)
}

// openDev creates a clean dev database for dialect d and returns it with
// a function that drops it.
func openDev(ctx context.Context, d string, cfg Config) (*dburl.DB, func(), error) {
	if d == dialect.SQLite {
		db, err := dburl.Open("sqlite://qsessions_gen?mode=memory")
		if err != nil {
			return nil, nil, err
		}
		return db, func() { db.Close() }, nil
	}
	var base string
	switch d {
	case dialect.Postgres:
		base = pick(cfg.PostgresURL, os.Getenv("QSESSIONS_TEST_POSTGRES"), DefaultPostgresURL)
	case dialect.MySQL:
		base = pick(cfg.MySQLURL, os.Getenv("QSESSIONS_TEST_MYSQL"), DefaultMySQLURL)
	default:
		return nil, nil, fmt.Errorf("unsupported dialect %q (want %s, %s or %s)", d, dialect.Postgres, dialect.MySQL, dialect.SQLite)
	}
	admin, err := dburl.Open(base)
	if err != nil {
		return nil, nil, err
	}
	if admin.Dialect != d {
		admin.Close()
		return nil, nil, fmt.Errorf("dev server URL %s is not a %s URL", dburl.Redact(base), d)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = admin.SQL.PingContext(pctx)
	cancel()
	if err != nil {
		admin.Close()
		return nil, nil, fmt.Errorf("the dev server %s is unreachable: %w", dburl.Redact(base), err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "qsessions_gen_" + hex.EncodeToString(b[:])
	u, err := url.Parse(base)
	if err != nil {
		admin.Close()
		return nil, nil, err
	}
	create, dropStmt := "CREATE DATABASE "+name, "DROP DATABASE IF EXISTS "+name
	if d == dialect.MySQL {
		// ent's tables use utf8mb4_bin unless told otherwise; a dev
		// database with the same defaults keeps table options out of the
		// generated DDL whatever the server's defaults are.
		create += " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
	} else {
		q := u.Query()
		q.Set("search_path", "public")
		u.RawQuery = q.Encode()
	}
	if _, err := admin.SQL.ExecContext(ctx, create); err != nil {
		admin.Close()
		return nil, nil, fmt.Errorf("creating the dev database: %w", err)
	}
	u.Path = "/" + name
	dev, err := dburl.Open(u.String())
	if err != nil {
		_, _ = admin.SQL.ExecContext(ctx, dropStmt)
		admin.Close()
		return nil, nil, err
	}
	return dev, func() {
		dev.Close()
		_, _ = admin.SQL.ExecContext(context.WithoutCancel(ctx), dropStmt)
		admin.Close()
	}, nil
}

func pick(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// Main is the whole of a generator program (a `//go:build ignore` gen.go
// beside the directories, run by go generate): it reads the flags -name,
// -version, -dialects and -adopt, generates the directories under the
// working directory from tables, prints each new file prefixed by label,
// and exits non-zero on an error. With -adopt it writes, into directories that hold
// no files yet, the two files of an app that adopts qsessions (see
// AdoptTables) and prints the --baseline version to apply them with.
func Main(label string, tables []*entschema.Table) {
	name := flag.String("name", "", "name of a new migration file (default: initial, then changes)")
	version := flag.String("version", "", "version of a new migration file (default: fixed, see package gen)")
	dialects := flag.String("dialects", strings.Join(Dialects, ","), "comma-separated directories to generate: postgres, mysql, sqlite")
	adopt := flag.Bool("adopt", false, "for an app whose database was created by Schema.Create: write a baseline of the tables without qsessions_session and a separate add_sessions file into empty directories")
	flag.Parse()
	cfg := Config{Root: ".", Tables: tables, Name: *name, Version: *version, Dialects: strings.Split(*dialects, ",")}
	if *adopt {
		if *name != "" {
			log.Fatal("-adopt names its files itself (baseline, add_sessions); drop -name")
		}
		res, err := Adopt(context.Background(), cfg)
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range res {
			fmt.Printf("%s/%s: wrote %s (the tables before qsessions) and %s (adds qsessions_session)\n", label, r.Dialect, r.Baseline, r.AddSessions)
		}
		if len(res) > 0 {
			fmt.Printf("apply to a database created by Schema.Create with: qsessions migrate apply --db URL --dir DIR --baseline %s\n", res[0].BaselineVersion)
		}
		return
	}
	res, err := Generate(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range res {
		if r.File != "" {
			fmt.Printf("%s/%s: wrote %s\n", label, r.Dialect, r.File)
		}
	}
}
