package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ariga.io/atlas/sql/migrate"

	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/migrations"
)

// migrateCLI runs `qsessions migrate args...` and returns the exit code
// and output.
func migrateCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"migrate"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// refCopy writes the reference directory of dialect d to a temp dir.
func refCopy(t *testing.T, d string) string {
	t.Helper()
	return refCopyUpTo(t, d, "")
}

// refCopyUpTo writes the files of the reference directory of dialect d up
// to version (included; "" means all) to a temp dir, with their atlas.sum:
// the directory as the release that ended with that version shipped it.
func refCopyUpTo(t *testing.T, d, version string) string {
	t.Helper()
	path := t.TempDir()
	for _, f := range refFiles(t, d) {
		if version != "" && f.Version() > version {
			continue
		}
		if err := os.WriteFile(filepath.Join(path, f.Name()), f.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rehashDir(t, path)
	return path
}

// refFiles are the files of the embedded reference directory of d, which
// the CLI applies without --dir.
func refFiles(t *testing.T, d string) []migrate.File {
	t.Helper()
	dir, err := migrations.Dir(d)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := dir.Files()
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) == 0 || fs[0].Name() != initialFile {
		t.Fatalf("the %s reference directory does not start with %s", d, initialFile)
	}
	return fs
}

// splitName takes a file name <version>_<description>.sql apart, without
// Atlas' help.
func splitName(t *testing.T, name string) (version, desc string) {
	t.Helper()
	version, desc, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
	if !ok || !strings.HasSuffix(name, ".sql") {
		t.Fatalf("file name %q is not <version>_<description>.sql", name)
	}
	return version, desc
}

// dayAfter is the version after version as qsessions' generator picks it,
// the next midnight: a test's own file comes after the reference files.
func dayAfter(t *testing.T, version string) string {
	t.Helper()
	v, err := time.Parse("20060102150405", version)
	if err != nil {
		t.Fatalf("version %q: %v", version, err)
	}
	return v.Truncate(24 * time.Hour).Add(24 * time.Hour).Format("20060102150405")
}

// revisionVersions lists the versions in db's revision table, in order.
func revisionVersions(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query("SELECT version FROM atlas_schema_revisions ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The reference directories' first file: the whole schema of the release
// before 20261126000000_add_device_binding_and_events.sql.
const (
	initialVersion = "20261125000000"
	initialFile    = initialVersion + "_initial.sql"
)

func rehashDir(t *testing.T, path string) {
	t.Helper()
	dir, err := migrate.NewLocalDir(path)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := dir.Checksum()
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate.WriteSumFile(dir, sum); err != nil {
		t.Fatal(err)
	}
}

func countRows(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func tableExists(t *testing.T, db *testutil.DB, name string) bool {
	t.Helper()
	var q string
	switch db.Dialect {
	case "postgres":
		q = "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '" + name + "'"
	case "mysql":
		q = "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '" + name + "'"
	default:
		q = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '" + name + "'"
	}
	return countRows(t, db.SQL, q) == 1
}

// apply and status with the embedded reference directories: every file
// pending, then applied in order, one revision row each.
func TestMigrateCLIApplyStatus(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			db := testutil.Open(t, d)
			var vs, listed []string
			for _, f := range refFiles(t, d) {
				v, desc := splitName(t, f.Name())
				vs = append(vs, v)
				listed = append(listed, v+"  "+desc)
			}
			last := vs[len(vs)-1]
			code, out, errs := migrateCLI(t, "status", "--db", db.URL)
			if code != 0 || !strings.Contains(out, "Migration Status: PENDING") || !strings.Contains(out, fmt.Sprintf("Pending Files:   %d\n", len(vs))) {
				t.Fatalf("status before: exit %d\n%s%s", code, out, errs)
			}
			for _, s := range listed {
				if !strings.Contains(out, s) {
					t.Errorf("status before lacks %q:\n%s", s, out)
				}
			}
			code, out, errs = migrateCLI(t, "apply", "--db", db.URL)
			if code != 0 || !strings.Contains(out, fmt.Sprintf("applied %d file(s)", len(vs))) || !strings.Contains(out, "now at version "+last) {
				t.Fatalf("apply: exit %d\n%s%s", code, out, errs)
			}
			for _, v := range vs {
				if !strings.Contains(out, "migrating version "+v) {
					t.Errorf("apply output lacks version %s:\n%s", v, out)
				}
			}
			for _, table := range []string{"users", "qsessions_session", "qsessions_event"} {
				if !tableExists(t, db, table) {
					t.Fatalf("%s missing after apply", table)
				}
			}
			code, out, errs = migrateCLI(t, "apply", "--db", db.URL)
			if code != 0 || !strings.Contains(out, "No migration files to execute") {
				t.Fatalf("second apply: exit %d\n%s%s", code, out, errs)
			}
			code, out, errs = migrateCLI(t, "status", "--db", db.URL)
			if code != 0 || !strings.Contains(out, "Migration Status: OK") || !strings.Contains(out, "Current Version: "+last) {
				t.Fatalf("status after: exit %d\n%s%s", code, out, errs)
			}
			if got := revisionVersions(t, db.SQL); !slices.Equal(got, vs) {
				t.Fatalf("revision rows %v, want %v", got, vs)
			}
		})
	}
}

// Upgrading qsessions (docs/migrations.md): a database at the previous
// release's last version (the initial file) gets the newer files alone.
func TestMigrateCLIUpgrade(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			db := testutil.Open(t, d)
			code, out, errs := migrateCLI(t, "apply", "--db", db.URL, "--no-session-check", "--dir", refCopyUpTo(t, d, initialVersion))
			if code != 0 || !strings.Contains(out, "now at version "+initialVersion) || tableExists(t, db, "qsessions_event") {
				t.Fatalf("apply of the previous release: exit %d\n%s%s", code, out, errs)
			}
			var vs, newer []string
			for _, f := range refFiles(t, d) {
				v, desc := splitName(t, f.Name())
				vs = append(vs, v)
				if v != initialVersion {
					newer = append(newer, v+"  "+desc)
				}
			}
			code, out, errs = migrateCLI(t, "status", "--db", db.URL)
			if code != 0 || !strings.Contains(out, "Current Version: "+initialVersion) || !strings.Contains(out, fmt.Sprintf("Pending Files:   %d\n", len(newer))) {
				t.Fatalf("status of the previous release's database: exit %d\n%s%s", code, out, errs)
			}
			for _, s := range newer {
				if !strings.Contains(out, s) {
					t.Errorf("status lacks the pending file %q:\n%s", s, out)
				}
			}
			code, out, errs = migrateCLI(t, "apply", "--db", db.URL)
			if code != 0 || strings.Contains(out, "migrating version "+initialVersion) || !strings.Contains(out, fmt.Sprintf("applied %d file(s)", len(newer))) ||
				!strings.Contains(out, "now at version "+vs[len(vs)-1]) {
				t.Fatalf("upgrade: exit %d\n%s%s", code, out, errs)
			}
			if !tableExists(t, db, "qsessions_event") {
				t.Fatal("qsessions_event missing after the upgrade")
			}
			if got := revisionVersions(t, db.SQL); !slices.Equal(got, vs) {
				t.Fatalf("revision rows %v, want %v", got, vs)
			}
		})
	}
}

// A failing file: non-zero exit naming the file and the statement, nothing
// of it applied, no revision row; after the fix the next apply succeeds.
func TestMigrateCLIFailingFile(t *testing.T) {
	for _, d := range []string{testutil.Postgres, testutil.SQLite} {
		t.Run(d, func(t *testing.T) {
			db := testutil.Open(t, d)
			dir := refCopy(t, d)
			var refVersions []string
			for _, f := range refFiles(t, d) {
				v, _ := splitName(t, f.Name())
				refVersions = append(refVersions, v)
			}
			// The failing file comes after the reference files.
			version := dayAfter(t, refVersions[len(refVersions)-1])
			name := version + "_add_audit.sql"
			write := func(body string) {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
				rehashDir(t, dir)
			}
			write("CREATE TABLE audit (id integer NOT NULL);\nINSERT INTO no_such_table (id) VALUES (1);\n")
			code, out, errs := migrateCLI(t, "apply", "--db", db.URL, "--dir", dir)
			if code == 0 {
				t.Fatalf("a failing file exited 0:\n%s", out)
			}
			for _, s := range []string{name, "INSERT INTO no_such_table (id) VALUES (1)", "rolled back"} {
				if !strings.Contains(errs, s) {
					t.Errorf("stderr does not mention %q:\n%s", s, errs)
				}
			}
			if tableExists(t, db, "audit") {
				t.Fatal("the failed file's first statement stayed applied")
			}
			if n := countRows(t, db.SQL, "SELECT count(*) FROM atlas_schema_revisions WHERE version = '"+version+"'"); n != 0 {
				t.Fatalf("%d revision rows for the failed file", n)
			}
			if got := revisionVersions(t, db.SQL); !slices.Equal(got, refVersions) {
				t.Fatalf("revision rows %v: the reference files before it, %v, are not all recorded", got, refVersions)
			}
			write("CREATE TABLE audit (id integer NOT NULL);\nCREATE INDEX audit_id ON audit (id);\n")
			code, out, errs = migrateCLI(t, "apply", "--db", db.URL, "--dir", "file://"+dir)
			if code != 0 || !strings.Contains(out, "migrating version "+version) || !strings.Contains(out, "applied 1 file(s)") {
				t.Fatalf("apply after the fix: exit %d\n%s%s", code, out, errs)
			}
			if !tableExists(t, db, "audit") {
				t.Fatal("audit missing after the fix")
			}
			if got := revisionVersions(t, db.SQL); !slices.Equal(got, append(refVersions, version)) {
				t.Fatalf("revision rows after the fix %v", got)
			}
		})
	}
}

// An app's tables already there: the first apply needs --allow-dirty and
// says so.
func TestMigrateCLIAllowDirty(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			db := testutil.Open(t, d)
			if _, err := db.SQL.Exec("CREATE TABLE accounts (id integer NOT NULL PRIMARY KEY)"); err != nil {
				t.Fatal(err)
			}
			code, _, errs := migrateCLI(t, "apply", "--db", db.URL)
			if code == 0 || !strings.Contains(errs, "--allow-dirty") || !strings.Contains(errs, `"accounts"`) {
				t.Fatalf("apply on a dirty database: exit %d\n%s", code, errs)
			}
			if tableExists(t, db, "qsessions_session") {
				t.Fatal("the refused apply created tables")
			}
			code, out, errs := migrateCLI(t, "apply", "--db", db.URL, "--allow-dirty")
			if code != 0 || !tableExists(t, db, "qsessions_session") || !tableExists(t, db, "accounts") {
				t.Fatalf("apply --allow-dirty: exit %d\n%s%s", code, out, errs)
			}
		})
	}
}

// Bad URLs, an unreachable server and bad arguments: clear errors and a
// non-zero exit, never a panic.
func TestMigrateCLIErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"apply", "--db", "oracle://scott:tiger@localhost/orcl"}, "unsupported URL scheme"},
		{[]string{"status", "--db", "oracle://localhost/orcl"}, "unsupported URL scheme"},
		{[]string{"apply", "--db", "postgres://root@127.0.0.1:1/test?sslmode=disable&connect_timeout=2"}, "connecting to postgres://root@127.0.0.1:1/test"},
		{[]string{"apply", "--db", "mysql://root:secret@127.0.0.1:1/test?timeout=2s"}, "connecting to mysql://root:xxxxx@127.0.0.1:1/test"},
		{[]string{"apply"}, "--db is required"},
		{[]string{"apply", "--db", "sqlite://" + filepath.Join(t.TempDir(), "x.db"), "--dir", filepath.Join(t.TempDir(), "missing")}, "migration directory"},
		{[]string{"apply", "--db", "sqlite://" + filepath.Join(t.TempDir(), "x.db"), "--dir", "https://example.com/migrations"}, "only local directories"},
		{[]string{"apply", "--db", "sqlite://" + filepath.Join(t.TempDir(), "x.db"), "zero"}, "invalid amount"},
		{[]string{"apply", "--db", "sqlite://" + filepath.Join(t.TempDir(), "x.db"), "--tx-mode", "maybe"}, "unknown transaction mode"},
		{[]string{"apply", "--no-such-flag"}, "no-such-flag"},
		{[]string{"rollback"}, "unknown subcommand"},
		{nil, "missing subcommand"},
	} {
		code, out, errs := migrateCLI(t, c.args...)
		if code == 0 {
			t.Errorf("migrate %q exited 0:\n%s", c.args, out)
			continue
		}
		if !strings.Contains(errs, c.want) {
			t.Errorf("migrate %q: stderr lacks %q:\n%s", c.args, c.want, errs)
		}
		if strings.Contains(errs, "secret") || strings.Contains(errs, "tiger") {
			t.Errorf("migrate %q printed a password:\n%s", c.args, errs)
		}
	}
}

// usersOnly gives db the reference schema's users table alone: the
// initial file's statements that do not touch qsessions_session. On
// Postgres it is the external check's statement exactly.
func usersOnly(t *testing.T, db *testutil.DB) {
	t.Helper()
	if db.Dialect == "postgres" {
		if _, err := db.SQL.Exec(`CREATE TABLE "users" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "username" character varying NOT NULL, "password_hash" bytea NULL, "is_admin" boolean NOT NULL DEFAULT false, PRIMARY KEY ("id"))`); err != nil {
			t.Fatal(err)
		}
		return
	}
	stmts, err := refFiles(t, db.Dialect)[0].StmtDecls()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		if !strings.Contains(s.Text, "qsessions_session") {
			if _, err := db.SQL.Exec(s.Text); err != nil {
				t.Fatalf("%s: %v", s.Text, err)
			}
		}
	}
}

// The trap of issue 12 fails loudly: apply --baseline of qsessions' own
// directory on a database holding its users table exits non-zero naming
// qsessions_session and the fix, and records nothing, whether the baseline
// is the initial file (which creates qsessions_session) or a later one. A
// baseline recorded with the check off shows in status and fails every
// apply.
func TestMigrateCLIBaselineTrap(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			db := testutil.Open(t, d)
			usersOnly(t, db)
			for _, f := range refFiles(t, d) {
				v, _ := splitName(t, f.Name())
				code, out, errs := migrateCLI(t, "apply", "--db", db.URL, "--baseline", v)
				if code == 0 {
					t.Fatalf("apply --baseline %s exited 0:\n%s%s", v, out, errs)
				}
				for _, s := range []string{"refusing --baseline " + v, "qsessions_session", initialFile, "qsessions migrate adopt --db", "Nothing was applied or recorded"} {
					if !strings.Contains(errs, s) {
						t.Errorf("apply --baseline %s: stderr lacks %q:\n%s", v, s, errs)
					}
				}
				if tableExists(t, db, "atlas_schema_revisions") || tableExists(t, db, "qsessions_session") || tableExists(t, db, "qsessions_event") {
					t.Fatalf("the refused apply --baseline %s wrote to the database", v)
				}
			}
			// Recorded anyway with the check off, as the atlas CLI would
			// have with the previous release's directory (the initial file
			// alone): the baseline row and nothing else.
			prev := refCopyUpTo(t, d, initialVersion)
			if code, out, errs := migrateCLI(t, "apply", "--db", db.URL, "--dir", prev, "--baseline", initialVersion, "--no-session-check"); code != 0 {
				t.Fatalf("apply --no-session-check: exit %d\n%s%s", code, out, errs)
			}
			if got := revisionVersions(t, db.SQL); !slices.Equal(got, []string{initialVersion}) {
				t.Fatalf("revision rows %v after the recorded baseline", got)
			}
			// The status, with the current directory or the previous one,
			// reports it with the fix.
			for _, dir := range []string{"", prev} {
				args := []string{"status", "--db", db.URL}
				if dir != "" {
					args = append(args, "--dir", dir)
				}
				code, out, errs := migrateCLI(t, args...)
				if code != 0 || !strings.Contains(out, "-- Session Table:   MISSING") || !strings.Contains(out, "the baseline "+initialVersion+" recorded") || !strings.Contains(out, "DELETE FROM") {
					t.Fatalf("%v: exit %d\n%s%s", args, code, out, errs)
				}
			}
			// Every apply fails. With the directory that holds nothing
			// pending the session check explains it and gives the fix.
			code, out, errs := migrateCLI(t, "apply", "--db", db.URL, "--dir", prev)
			if code == 0 || !strings.Contains(errs, "no table qsessions_session") || !strings.Contains(errs, "the baseline "+initialVersion+" recorded") || !strings.Contains(errs, "DELETE FROM") {
				t.Fatalf("apply after the recorded baseline: exit %d\n%s%s", code, out, errs)
			}
			// With the current directory, its next file changes the
			// missing table and fails; nothing of it is applied. (The
			// session check runs after the files, so this error is the
			// database's, naming the table, not the check's.)
			code, out, errs = migrateCLI(t, "apply", "--db", db.URL)
			if code == 0 || !strings.Contains(errs, "qsessions_session") {
				t.Fatalf("apply of the current directory after the recorded baseline: exit %d\n%s%s", code, out, errs)
			}
			if tableExists(t, db, "qsessions_session") || tableExists(t, db, "qsessions_event") {
				t.Fatal("a file after the recorded baseline was applied")
			}
		})
	}
}

// adopt reads a database created without qsessions, writes a baseline and
// a file that adds qsessions_session, and prints the command that applies
// them; that command creates the table.
func TestMigrateCLIAdopt(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			db := testutil.Open(t, d)
			usersOnly(t, db)
			args := []string{"adopt", "--db", db.URL, "--dir", filepath.Join(t.TempDir(), "migrations"), "--version", "20261201000000"}
			if d != testutil.SQLite {
				args = append(args, "--dev-url", testutil.Open(t, d).URL)
			}
			code, out, errs := migrateCLI(t, args...)
			if code != 0 {
				t.Fatalf("adopt: exit %d\n%s%s", code, out, errs)
			}
			dir := args[4]
			for _, s := range []string{"1 table(s): users", "20261201000000_baseline.sql", "20261201000001_add_sessions.sql", "Verified: replayed",
				"qsessions migrate apply --db '", "--dir " + dir + " --baseline 20261201000000"} {
				if !strings.Contains(out, s) {
					t.Errorf("adopt output lacks %q:\n%s", s, out)
				}
			}
			if tableExists(t, db, "atlas_schema_revisions") || tableExists(t, db, "qsessions_session") {
				t.Fatal("adopt wrote to the database")
			}
			code, out, errs = migrateCLI(t, "apply", "--db", db.URL, "--dir", dir, "--baseline", "20261201000000")
			if code != 0 || !strings.Contains(out, "migrating version 20261201000001") {
				t.Fatalf("apply: exit %d\n%s%s", code, out, errs)
			}
			if !tableExists(t, db, "qsessions_session") {
				t.Fatal("qsessions_session missing after the adopted apply")
			}
			code, out, errs = migrateCLI(t, "status", "--db", db.URL, "--dir", dir)
			if code != 0 || !strings.Contains(out, "Migration Status: OK") || !strings.Contains(out, "-- Session Table:   present (qsessions_session)") {
				t.Fatalf("status: exit %d\n%s%s", code, out, errs)
			}
			// A second adopt refuses: the directory has files, and the
			// database records migrations now.
			if code, _, errs = migrateCLI(t, "adopt", "--db", db.URL, "--dir", dir); code == 0 || !strings.Contains(errs, "already holds") {
				t.Errorf("adopt into a written directory: exit %d\n%s", code, errs)
			}
			if code, _, errs = migrateCLI(t, "adopt", "--db", db.URL, "--dir", t.TempDir()); code == 0 || !strings.Contains(errs, "managed by a migration directory") {
				t.Errorf("adopt of a migrated database: exit %d\n%s", code, errs)
			}
		})
	}
}

// adopt's argument errors.
func TestMigrateCLIAdoptErrors(t *testing.T) {
	sqliteURL := "sqlite://" + filepath.Join(t.TempDir(), "x.db")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"adopt", "--dir", t.TempDir()}, "--db is required"},
		{[]string{"adopt", "--db", sqliteURL}, "--dir is required"},
		{[]string{"adopt", "--db", sqliteURL, "--dir", t.TempDir(), "extra"}, "unexpected arguments"},
		{[]string{"adopt", "--db", "postgres://root:secret@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", "--dir", t.TempDir()}, "connecting to postgres://root:xxxxx@127.0.0.1:1/test"},
		{[]string{"adopt", "--db", sqliteURL, "--dir", t.TempDir()}, "has no tables"},
	} {
		code, out, errs := migrateCLI(t, c.args...)
		if code == 0 {
			t.Errorf("migrate %q exited 0:\n%s", c.args, out)
			continue
		}
		if !strings.Contains(errs, c.want) {
			t.Errorf("migrate %q: stderr lacks %q:\n%s", c.args, c.want, errs)
		}
		if strings.Contains(errs, "secret") {
			t.Errorf("migrate %q printed a password:\n%s", c.args, errs)
		}
	}
}
