package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	dir, err := migrations.Dir(d)
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir()
	fs, err := dir.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if err := os.WriteFile(filepath.Join(path, f.Name()), f.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rehashDir(t, path)
	return path
}

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

// apply and status with the embedded reference directories.
func TestMigrateCLIApplyStatus(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			db := testutil.Open(t, d)
			code, out, errs := migrateCLI(t, "status", "--db", db.URL)
			if code != 0 || !strings.Contains(out, "Migration Status: PENDING") || !strings.Contains(out, "20261125000000  initial") {
				t.Fatalf("status before: exit %d\n%s%s", code, out, errs)
			}
			code, out, errs = migrateCLI(t, "apply", "--db", db.URL)
			if code != 0 || !strings.Contains(out, "migrating version 20261125000000") || !strings.Contains(out, "now at version 20261125000000") {
				t.Fatalf("apply: exit %d\n%s%s", code, out, errs)
			}
			if !tableExists(t, db, "qsessions_session") {
				t.Fatal("qsessions_session missing after apply")
			}
			code, out, errs = migrateCLI(t, "apply", "--db", db.URL)
			if code != 0 || !strings.Contains(out, "No migration files to execute") {
				t.Fatalf("second apply: exit %d\n%s%s", code, out, errs)
			}
			code, out, errs = migrateCLI(t, "status", "--db", db.URL)
			if code != 0 || !strings.Contains(out, "Migration Status: OK") || !strings.Contains(out, "Current Version: 20261125000000") {
				t.Fatalf("status after: exit %d\n%s%s", code, out, errs)
			}
			if n := countRows(t, db.SQL, "SELECT count(*) FROM atlas_schema_revisions"); n != 1 {
				t.Fatalf("%d revision rows", n)
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
			const name = "20261126000000_add_audit.sql"
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
			if n := countRows(t, db.SQL, "SELECT count(*) FROM atlas_schema_revisions WHERE version = '20261126000000'"); n != 0 {
				t.Fatalf("%d revision rows for the failed file", n)
			}
			if n := countRows(t, db.SQL, "SELECT count(*) FROM atlas_schema_revisions WHERE version = '20261125000000'"); n != 1 {
				t.Fatal("the initial file before it is not recorded")
			}
			write("CREATE TABLE audit (id integer NOT NULL);\nCREATE INDEX audit_id ON audit (id);\n")
			code, out, errs = migrateCLI(t, "apply", "--db", db.URL, "--dir", "file://"+dir)
			if code != 0 || !strings.Contains(out, "migrating version 20261126000000") {
				t.Fatalf("apply after the fix: exit %d\n%s%s", code, out, errs)
			}
			if !tableExists(t, db, "audit") {
				t.Fatal("audit missing after the fix")
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
// reference directory's statements that do not touch qsessions_session.
// On Postgres it is the external check's statement exactly.
func usersOnly(t *testing.T, db *testutil.DB) {
	t.Helper()
	if db.Dialect == "postgres" {
		if _, err := db.SQL.Exec(`CREATE TABLE "users" ("id" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY, "username" character varying NOT NULL, "password_hash" bytea NULL, "is_admin" boolean NOT NULL DEFAULT false, PRIMARY KEY ("id"))`); err != nil {
			t.Fatal(err)
		}
		return
	}
	dir, err := migrations.Dir(db.Dialect)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := dir.Files()
	if err != nil {
		t.Fatal(err)
	}
	stmts, err := fs[0].StmtDecls()
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
// qsessions_session and the fix, and records nothing. A baseline recorded
// with the check off shows in status and fails every apply.
func TestMigrateCLIBaselineTrap(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			db := testutil.Open(t, d)
			usersOnly(t, db)
			code, out, errs := migrateCLI(t, "apply", "--db", db.URL, "--baseline", "20261125000000")
			if code == 0 {
				t.Fatalf("apply --baseline exited 0:\n%s%s", out, errs)
			}
			for _, s := range []string{"refusing --baseline 20261125000000", "qsessions_session", "20261125000000_initial.sql", "qsessions migrate adopt --db", "Nothing was applied or recorded"} {
				if !strings.Contains(errs, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errs)
				}
			}
			if tableExists(t, db, "atlas_schema_revisions") || tableExists(t, db, "qsessions_session") {
				t.Fatal("the refused apply wrote to the database")
			}
			// Recorded anyway with the check off (as the atlas CLI would).
			if code, out, errs = migrateCLI(t, "apply", "--db", db.URL, "--baseline", "20261125000000", "--no-session-check"); code != 0 {
				t.Fatalf("apply --no-session-check: exit %d\n%s%s", code, out, errs)
			}
			code, out, errs = migrateCLI(t, "status", "--db", db.URL)
			if code != 0 || !strings.Contains(out, "-- Session Table:   MISSING") || !strings.Contains(out, "the baseline 20261125000000 recorded") {
				t.Fatalf("status: exit %d\n%s%s", code, out, errs)
			}
			code, out, errs = migrateCLI(t, "apply", "--db", db.URL)
			if code == 0 || !strings.Contains(errs, "no table qsessions_session") || !strings.Contains(errs, "DELETE FROM") {
				t.Fatalf("apply after the recorded baseline: exit %d\n%s%s", code, out, errs)
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
