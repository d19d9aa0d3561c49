package migrations_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ariga.io/atlas/sql/migrate"
	entschema "entgo.io/ent/dialect/sql/schema"

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

// copyDirUpTo copies the reference directory of d into a temp dir, keeping
// only the files up to version (included), with the atlas.sum that
// directory had: the reference directory as an earlier release shipped it.
func copyDirUpTo(t *testing.T, d, version string) string {
	t.Helper()
	path := copyDir(t, d)
	kept := 0
	for _, name := range fileNames(t, localDir(t, path)) {
		if v, _ := splitName(t, name); v > version {
			if err := os.Remove(filepath.Join(path, name)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		kept++
	}
	if kept == 0 {
		t.Fatalf("the %s directory has no file up to version %s", d, version)
	}
	rehash(t, path)
	return path
}

// fileNames lists the names of dir's migration files, in order.
func fileNames(t *testing.T, dir migrate.Dir) []string {
	t.Helper()
	var out []string
	for _, f := range files(t, dir) {
		out = append(out, f.Name())
	}
	if len(out) == 0 {
		t.Fatal("the directory holds no migration file")
	}
	return out
}

// splitName takes a file name <version>_<description>.sql apart, without
// Atlas' help, so the tests check what the package and Atlas derive.
func splitName(t *testing.T, name string) (version, desc string) {
	t.Helper()
	version, desc, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
	if !ok || !strings.HasSuffix(name, ".sql") {
		t.Fatalf("file name %q is not <version>_<description>.sql", name)
	}
	return version, desc
}

// versions returns the versions of file names, in order.
func versions(t *testing.T, names []string) []string {
	t.Helper()
	out := make([]string, len(names))
	for i, n := range names {
		out[i], _ = splitName(t, n)
	}
	return out
}

// dayAfter is the version after version as package gen picks it: the next
// midnight (the reference directories' versions are midnights). A test's
// own file gets a version after the reference directory's last one, so it
// does not collide with a file a later release adds.
func dayAfter(t *testing.T, version string) string {
	t.Helper()
	v, err := time.Parse("20060102150405", version)
	if err != nil {
		t.Fatalf("version %q: %v", version, err)
	}
	return v.Truncate(24 * time.Hour).Add(24 * time.Hour).Format("20060102150405")
}

// initialVersion and initialFile are the reference directories' first
// file, the whole schema of the release before the device-binding and
// events file (20261126000000_add_device_binding_and_events.sql).
const (
	initialVersion = "20261125000000"
	initialFile    = initialVersion + "_initial.sql"
	eventsFile     = "20261126000000_add_device_binding_and_events.sql"
)

// initialTables are copies of tables (qsessions' or an app's, with
// entschema's mixins) as they were when initialFile was generated: without
// qsessions_event and without qsessions_session's dbsc_key and dbsc_secret,
// which eventsFile adds.
func initialTables(tables []*entschema.Table) []*entschema.Table {
	var out []*entschema.Table
	for _, tb := range cloneTables(tables)() {
		switch tb.Name {
		case "qsessions_event":
			continue
		case "qsessions_session":
			tb.Columns = slices.DeleteFunc(tb.Columns, func(c *entschema.Column) bool {
				return c.Name == "dbsc_key" || c.Name == "dbsc_secret"
			})
		}
		out = append(out, tb)
	}
	return out
}

// tableNames are the names of tables and the revision table, sorted: the
// tables a database migrated to exactly those tables holds.
func tableNames(tables []*entschema.Table) []string {
	out := []string{migrations.RevisionTable}
	for _, tb := range tables {
		out = append(out, tb.Name)
	}
	slices.Sort(out)
	return out
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

// TestDuplicateVersionRefused: two files of one version are an error
// naming both, not a panic in Atlas' executor.
func TestDuplicateVersionRefused(t *testing.T) {
	db := fresh(t, testutil.SQLite)
	path := copyDir(t, "sqlite")
	files := files(t, localDir(t, path))
	dup := files[len(files)-1].Version() + "_twin.sql"
	writeFile(t, path, dup, "CREATE TABLE twin (id integer);\n")
	rehash(t, path)
	_, err := migrations.Apply(ctx, db.SQL, db.Dialect, localDir(t, path), on(db, migrations.Options{}))
	if err == nil || !strings.Contains(err.Error(), "the same version") || !strings.Contains(err.Error(), dup) {
		t.Fatalf("Apply of a directory with a duplicate version: %v", err)
	}
}
