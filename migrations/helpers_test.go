package migrations_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ariga.io/atlas/sql/migrate"

	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/migrations"
)

// fresh returns a fresh database of dialect d (skipping when its server is
// absent) opened from its URL, so Schema is set as for a user's URL.
func fresh(t *testing.T, d string) *dburl.DB {
	t.Helper()
	db, _ := freshURL(t, d)
	return db
}

// freshURL is fresh and the URL with its password (DB.URL has none).
func freshURL(t *testing.T, d string) (*dburl.DB, string) {
	t.Helper()
	tdb := testutil.Open(t, d)
	db, err := dburl.Open(tdb.URL)
	if err != nil {
		t.Fatal(err)
	}
	db.SQL.SetMaxOpenConns(4)
	t.Cleanup(func() { db.Close() })
	return db, tdb.URL
}

func refDir(t *testing.T, d string) migrate.Dir {
	t.Helper()
	dir, err := migrations.Dir(d)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// copyDir copies the reference directory of d into a temp dir.
func copyDir(t *testing.T, d string) string {
	t.Helper()
	name, err := migrations.DirName(d)
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	entries, err := os.ReadDir(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(name, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func localDir(t *testing.T, path string) *migrate.LocalDir {
	t.Helper()
	dir, err := migrate.NewLocalDir(path)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// rehash rewrites atlas.sum of the directory at path.
func rehash(t *testing.T, path string) {
	t.Helper()
	dir := localDir(t, path)
	sum, err := dir.Checksum()
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate.WriteSumFile(dir, sum); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(path, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// on fills opts with what db's URL says, as the CLI does.
func on(db *dburl.DB, opts migrations.Options) migrations.Options {
	opts.Schema, opts.URL = db.Schema, db.URL
	return opts
}

func apply(t *testing.T, db *dburl.DB, dir migrate.Dir, opts migrations.Options) *migrations.Result {
	t.Helper()
	res, err := migrations.Apply(context.Background(), db.SQL, db.Dialect, dir, on(db, opts))
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return res
}

// revRow is a row of atlas_schema_revisions as an independent reader sees
// it: plain SQL, no code of the package under test.
type revRow struct {
	Version, Description string
	Type                 int64
	Applied, Total       int
	ExecutedAt           time.Time
	ExecutionTime        int64
	Error, ErrorStmt     sql.NullString
	Hash                 string
	PartialHashes        sql.NullString
	OperatorVersion      string
}

// readRevisions reads table (atlas_schema_revisions, maybe qualified).
func readRevisions(t *testing.T, db *sql.DB, table string) []revRow {
	t.Helper()
	rows, err := db.Query("SELECT version, description, type, applied, total, executed_at, execution_time, " +
		"error, error_stmt, hash, partial_hashes, operator_version FROM " + table + " ORDER BY version")
	if err != nil {
		t.Fatalf("reading %s: %v", table, err)
	}
	defer rows.Close()
	var out []revRow
	for rows.Next() {
		var r revRow
		if err := rows.Scan(&r.Version, &r.Description, &r.Type, &r.Applied, &r.Total, &r.ExecutedAt, &r.ExecutionTime,
			&r.Error, &r.ErrorStmt, &r.Hash, &r.PartialHashes, &r.OperatorVersion); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// tables lists the tables of the connected schema (database), sorted.
func tables(t *testing.T, db *dburl.DB) []string {
	t.Helper()
	var q string
	switch db.Dialect {
	case "postgres":
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1"
	case "mysql":
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1"
	default:
		q = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1"
	}
	rows, err := db.SQL.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func hasTable(t *testing.T, db *dburl.DB, name string) bool {
	for _, n := range tables(t, db) {
		if n == name {
			return true
		}
	}
	return false
}

// stmts returns the statements of a file as Atlas splits them.
func stmts(t *testing.T, f migrate.File) []string {
	t.Helper()
	s, err := f.StmtDecls()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(s))
	for i := range s {
		out[i] = strings.TrimSpace(s[i].Text)
	}
	return out
}

func files(t *testing.T, dir migrate.Dir) []migrate.File {
	t.Helper()
	fs, err := dir.Files()
	if err != nil {
		t.Fatal(err)
	}
	return fs
}
