package migrations_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ariga.io/atlas/sql/migrate"
	atlasmysql "ariga.io/atlas/sql/mysql"
	atlaspg "ariga.io/atlas/sql/postgres"
	atlassqlite "ariga.io/atlas/sql/sqlite"
	entsql "entgo.io/ent/dialect/sql"
	entschema "entgo.io/ent/dialect/sql/schema"
	"entgo.io/ent/schema/field"

	"github.com/qsessions/qsessions/dburl"
	refmigrate "github.com/qsessions/qsessions/ent/migrate"
	uuidmigrate "github.com/qsessions/qsessions/examples/uuidapp/ent/migrate"
	uuidmigrations "github.com/qsessions/qsessions/examples/uuidapp/migrations"
	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/migrations"
	"github.com/qsessions/qsessions/migrations/gen"
)

var ctx = context.Background()

// assertNoDrift runs ent's migration engine against db in inspect mode
// (drops included) and fails if it would change anything.
func assertNoDrift(t *testing.T, db *dburl.DB, tables []*entschema.Table) {
	t.Helper()
	dir := &migrate.MemDir{}
	m, err := entschema.NewMigrate(entsql.OpenDB(db.Dialect, db.SQL),
		entschema.WithDir(dir),
		entschema.WithFormatter(migrate.DefaultFormatter),
		entschema.WithDropColumn(true),
		entschema.WithDropIndex(true),
		entschema.WithErrNoPlan(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	err = m.NamedDiff(ctx, "drift", tables...)
	if errors.Is(err, migrate.ErrNoPlan) {
		return
	}
	if err != nil {
		t.Fatalf("diffing the applied schema against ent: %v", err)
	}
	var b strings.Builder
	for _, f := range files(t, dir) {
		b.Write(f.Bytes())
	}
	t.Fatalf("the applied directory differs from ent's schema; ent would run:\n%s", b.String())
}

// Drift: on a clean database, the directory (every file, in order) gives
// exactly ent's schema.
func TestMigrationsDrift(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			db := fresh(t, d)
			dir := refDir(t, d)
			res := apply(t, db, dir, migrations.Options{})
			if want := fileNames(t, dir); !slices.Equal(res.Applied, want) {
				t.Fatalf("applied %v, want every file of the directory: %v", res.Applied, want)
			}
			assertNoDrift(t, db, refmigrate.Tables)
			if got, want := tables(t, db), tableNames(refmigrate.Tables); !slices.Equal(got, want) {
				t.Fatalf("tables %v, want %v", got, want)
			}
		})
	}
}

// Upgrading qsessions (docs/migrations.md, "Upgrading qsessions"): a
// database migrated by the previous release, whose directory ended with
// the initial file, gets the newer files alone from the current directory
// and ends with ent's current schema; its sessions stay.
func TestMigrationsUpgradeFromInitial(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			db := fresh(t, d)
			// The previous release: its directory is the initial file.
			old := localDir(t, copyDirUpTo(t, d, initialVersion))
			if got := fileNames(t, old); !slices.Equal(got, []string{initialFile}) {
				t.Fatalf("the previous release's directory holds %v", got)
			}
			// The previous release's check knew only its own columns.
			if res := apply(t, db, old, migrations.Options{SessionCheck: migrations.CheckNever}); !slices.Equal(res.Applied, []string{initialFile}) {
				t.Fatalf("applying the previous release: %+v", res)
			}
			prev := initialTables(refmigrate.Tables)
			assertNoDrift(t, db, prev) // it is that release's schema
			if got, want := tables(t, db), tableNames(prev); !slices.Equal(got, want) {
				t.Fatalf("tables of the previous release %v, want %v", got, want)
			}
			exec1(t, db, "INSERT INTO users (username, is_admin) VALUES ('ann', false)")
			exec1(t, db, "INSERT INTO qsessions_session (session_key, session_data, expire_date, created_at, updated_at, last_activity, user_id) VALUES "+
				"('k1', "+ph(d, 1)+", "+ph(d, 2)+", "+ph(d, 3)+", "+ph(d, 4)+", "+ph(d, 5)+", 1)",
				[]byte("{}"), time.Now().Add(time.Hour).UTC(), time.Now().UTC(), time.Now().UTC(), time.Now().UTC())

			// The current release's directory: the status names the newer
			// files as pending.
			dir := refDir(t, d)
			names := fileNames(t, dir)
			if len(names) < 2 || names[0] != initialFile || !slices.Contains(names, eventsFile) {
				t.Fatalf("the reference directory holds %v; want %s first and %s", names, initialFile, eventsFile)
			}
			newer := names[1:]
			st, err := migrations.ReadStatus(ctx, db.SQL, db.Dialect, dir, on(db, migrations.Options{}))
			if err != nil {
				t.Fatal(err)
			}
			var pending []string
			for _, f := range st.Pending {
				pending = append(pending, f.Name())
			}
			if st.OK() || st.Current != initialVersion || len(st.Applied) != 1 || !slices.Equal(pending, newer) {
				t.Fatalf("status of the previous release's database: %+v (pending %v, want %v)", st, pending, newer)
			}

			var log strings.Builder
			res := apply(t, db, dir, migrations.Options{Log: &log})
			if !slices.Equal(res.Applied, newer) || res.From != initialVersion || res.To != versions(t, names)[len(names)-1] {
				t.Fatalf("upgrade applied %+v, want %v from %s", res, newer, initialVersion)
			}
			if strings.Contains(log.String(), "migrating version "+initialVersion) {
				t.Errorf("the upgrade ran the initial file again:\n%s", log.String())
			}
			assertNoDrift(t, db, refmigrate.Tables)
			if got, want := tables(t, db), tableNames(refmigrate.Tables); !slices.Equal(got, want) {
				t.Fatalf("tables after the upgrade %v, want %v", got, want)
			}
			revs := readRevisions(t, db.SQL, migrations.RevisionTable)
			if got := revVersions(revs); !slices.Equal(got, versions(t, names)) {
				t.Fatalf("revisions after the upgrade %v, want %v", got, versions(t, names))
			}
			// The session of the previous release is still there; the new
			// nullable columns are NULL in it.
			var key string
			var dbscKey any
			if err := db.SQL.QueryRow("SELECT session_key, dbsc_key FROM qsessions_session WHERE user_id = 1").Scan(&key, &dbscKey); err != nil || key != "k1" || dbscKey != nil {
				t.Fatalf("the session after the upgrade: %q, dbsc_key %v, %v", key, dbscKey, err)
			}
			st, err = migrations.ReadStatus(ctx, db.SQL, db.Dialect, dir, on(db, migrations.Options{}))
			if err != nil || !st.OK() || len(st.Applied) != len(names) || st.SessionTable != migrations.SessionOK {
				t.Fatalf("status after the upgrade: %+v, %v", st, err)
			}
		})
	}
}

// revVersions are the versions of revision rows, in their order.
func revVersions(revs []revRow) []string {
	out := make([]string, len(revs))
	for i, r := range revs {
		out[i] = r.Version
	}
	return out
}

// The uuidapp example's directories hold the same way for its schema.
func TestMigrationsDriftUUIDApp(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			db := fresh(t, d)
			dir, err := uuidmigrations.Dir(d)
			if err != nil {
				t.Fatal(err)
			}
			apply(t, db, dir, migrations.Options{})
			assertNoDrift(t, db, uuidmigrate.Tables)
		})
	}
}

var intWidth = regexp.MustCompile(`^(bigint|int)\(\d+\)`)

var fileName = regexp.MustCompile(`^[0-9]{14}_[a-z0-9_]+\.sql$`)

// Golden format: Validate, atlas.sum as Atlas hashes it, file names.
func TestMigrationsGoldenDirectory(t *testing.T) {
	for _, d := range gen.Dialects {
		t.Run(d, func(t *testing.T) {
			for name, dir := range map[string]migrate.Dir{"embedded": refDir(t, d), "on disk": localDir(t, d)} {
				if err := migrate.Validate(dir); err != nil {
					t.Fatalf("%s: Validate: %v", name, err)
				}
				fs := files(t, dir)
				if len(fs) == 0 {
					t.Fatalf("%s: no migration files", name)
				}
				for _, f := range fs {
					if !fileName.MatchString(f.Name()) {
						t.Errorf("%s: file name %q is not <version>_<name>.sql", name, f.Name())
					}
				}
				sum, err := migrate.NewHashFile(fs)
				if err != nil {
					t.Fatal(err)
				}
				want, err := sum.MarshalText()
				if err != nil {
					t.Fatal(err)
				}
				got, err := readSum(dir)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != string(want) {
					t.Fatalf("%s: atlas.sum is\n%s\nAtlas' HashFile gives\n%s", name, got, want)
				}
			}
			if fs := files(t, refDir(t, d)); fs[0].Name() != "20261125000000_initial.sql" {
				t.Fatalf("first file %s, want 20261125000000_initial.sql", fs[0].Name())
			}
		})
	}
}

func readSum(dir migrate.Dir) ([]byte, error) {
	f, err := dir.Open(migrate.HashFileName)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := f.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return []byte(b.String()), nil
}

// Golden format: the revision rows, read back with plain SQL, carry the
// CLI's columns and values.
func TestMigrationsGoldenRevisions(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			db := fresh(t, d)
			dir := refDir(t, d)
			before := time.Now().Add(-time.Second)
			apply(t, db, dir, migrations.Options{OperatorVersion: "qsessions test"})
			after := time.Now().Add(time.Second)

			// The CLI's columns, in its order.
			rows, err := db.SQL.Query("SELECT * FROM " + migrations.RevisionTable)
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := rows.Columns()
			rows.Close()
			wantCols := []string{"version", "description", "type", "applied", "total", "executed_at", "execution_time",
				"error", "error_stmt", "hash", "partial_hashes", "operator_version"}
			if !slices.Equal(cols, wantCols) {
				t.Fatalf("columns %v, want %v", cols, wantCols)
			}
			checkColumnTypes(t, db)

			// One row per file of the directory, in order, each with the
			// CLI's values for that file.
			revs := readRevisions(t, db.SQL, migrations.RevisionTable)
			fs := files(t, dir)
			if len(revs) != len(fs) {
				t.Fatalf("%d revision rows for %d files: %+v", len(revs), len(fs), revs)
			}
			if revs[0].Version != initialVersion || revs[0].Description != "initial" {
				t.Errorf("first row: version %q description %q, want %s initial", revs[0].Version, revs[0].Description, initialVersion)
			}
			sum, _ := dir.Checksum()
			sumText := string(must(readSum(dir)))
			for i, f := range fs {
				r := revs[i]
				version, desc := splitName(t, f.Name())
				hash, _ := sum.SumByName(f.Name())
				n := len(stmts(t, f))
				switch {
				case r.Version != version || r.Description != desc:
					t.Errorf("%s: version %q description %q", f.Name(), r.Version, r.Description)
				case r.Type != int64(migrate.RevisionTypeExecute):
					t.Errorf("%s: type %d, want 2 (executed)", f.Name(), r.Type)
				case r.Applied != n || r.Total != n:
					t.Errorf("%s: applied %d total %d, want %d of %d", f.Name(), r.Applied, r.Total, n, n)
				case r.ExecutedAt.Before(before) || r.ExecutedAt.After(after):
					t.Errorf("%s: executed_at %v not within [%v, %v]", f.Name(), r.ExecutedAt, before, after)
				case r.ExecutionTime < 0 || time.Duration(r.ExecutionTime) > time.Minute:
					t.Errorf("%s: execution_time %d ns", f.Name(), r.ExecutionTime)
				case !r.Error.Valid || r.Error.String != "" || !r.ErrorStmt.Valid || r.ErrorStmt.String != "":
					// The CLI writes empty strings, not NULLs.
					t.Errorf("%s: error %+v error_stmt %+v, want empty strings", f.Name(), r.Error, r.ErrorStmt)
				case strings.HasPrefix(r.Hash, "h1:") || r.Hash != hash || len(r.Hash) != 44:
					t.Errorf("%s: hash %q, want %q (atlas.sum's, without h1:)", f.Name(), r.Hash, hash)
				case !r.PartialHashes.Valid || r.PartialHashes.String != "null":
					t.Errorf("%s: partial_hashes %+v, want JSON null", f.Name(), r.PartialHashes)
				case r.OperatorVersion != "qsessions test":
					t.Errorf("%s: operator_version %q", f.Name(), r.OperatorVersion)
				}
				// The revision for the file is the atlas.sum line's hash.
				if !strings.Contains(sumText, f.Name()+" h1:"+r.Hash) {
					t.Errorf("atlas.sum has no line %q", f.Name()+" h1:"+r.Hash)
				}
			}
			if t.Failed() {
				t.FailNow()
			}
			// The cloud-identifier row the CLI may write is not a revision.
			if _, err := db.SQL.Exec("INSERT INTO " + migrations.RevisionTable +
				" (version, description, type, applied, total, executed_at, execution_time, hash, operator_version) VALUES ('.atlas_cloud_identifier', 'b7c4a7b2-0000-4000-8000-000000000000', 2, 0, 0, '2026-01-01 00:00:00', 0, '', 'Atlas CLI v0.32.0')"); err != nil {
				t.Fatal(err)
			}
			st, err := migrations.ReadStatus(ctx, db.SQL, db.Dialect, dir, on(db, migrations.Options{}))
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Applied) != len(fs) || st.Current != revs[len(revs)-1].Version || !st.OK() {
				t.Fatalf("status with a cloud identifier row: %+v", st)
			}
			if res := apply(t, db, dir, migrations.Options{}); len(res.Applied) != 0 {
				t.Fatalf("applied %v with a cloud identifier row", res.Applied)
			}
			// The default operator version names qsessions.
			db2 := fresh(t, d)
			apply(t, db2, dir, migrations.Options{})
			for _, r := range readRevisions(t, db2.SQL, migrations.RevisionTable) {
				if !strings.HasPrefix(r.OperatorVersion, "qsessions ") {
					t.Errorf("%s: default operator_version %q", r.Version, r.OperatorVersion)
				}
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// checkColumnTypes pins the revision table's column types: those ent
// gives the CLI's revision schema.
func checkColumnTypes(t *testing.T, db *dburl.DB) {
	t.Helper()
	var q string
	want := map[string]string{}
	switch db.Dialect {
	case "postgres":
		q = "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'atlas_schema_revisions'"
		want = map[string]string{
			"version": "character varying NO", "description": "character varying NO", "type": "bigint NO",
			"applied": "bigint NO", "total": "bigint NO", "executed_at": "timestamp with time zone NO",
			"execution_time": "bigint NO", "error": "text YES", "error_stmt": "text YES",
			"hash": "character varying NO", "partial_hashes": "jsonb YES", "operator_version": "character varying NO",
		}
	case "mysql":
		q = "SELECT column_name, column_type, is_nullable FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'atlas_schema_revisions'"
		// ent makes a TIMESTAMP column without a default nullable on
		// MariaDB (and MySQL < 8.0.2), to suppress the server's implicit
		// DEFAULT/ON UPDATE CURRENT_TIMESTAMP; the CLI's table has it too.
		executedAt := "timestamp NO"
		var version string
		if err := db.SQL.QueryRow("SELECT VERSION()").Scan(&version); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(version, "MariaDB") {
			executedAt = "timestamp YES"
		}
		want = map[string]string{
			"version": "varchar(255) NO", "description": "varchar(255) NO", "type": "bigint unsigned NO",
			"applied": "bigint NO", "total": "bigint NO", "executed_at": executedAt,
			"execution_time": "bigint NO", "error": "longtext YES", "error_stmt": "longtext YES",
			"hash": "varchar(255) NO", "partial_hashes": "longtext YES", "operator_version": "varchar(255) NO",
		}
	default:
		q = "SELECT name, type, CASE WHEN \"notnull\" = 1 THEN 'NO' ELSE 'YES' END FROM pragma_table_info('atlas_schema_revisions')"
		want = map[string]string{
			"version": "text NO", "description": "text NO", "type": "integer NO",
			"applied": "integer NO", "total": "integer NO", "executed_at": "datetime NO",
			"execution_time": "integer NO", "error": "text YES", "error_stmt": "text YES",
			"hash": "text NO", "partial_hashes": "json YES", "operator_version": "text NO",
		}
	}
	rows, err := db.SQL.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var n, typ, null string
		if err := rows.Scan(&n, &typ, &null); err != nil {
			t.Fatal(err)
		}
		// MySQL 8.0.19+ shows no display widths: bigint(20) is bigint.
		got[n] = intWidth.ReplaceAllString(strings.ToLower(typ), "$1") + " " + null
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("column %s: %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("columns %v, want %v", got, want)
	}
}

// An edited file is refused with a checksum error, and nothing changes.
func TestMigrationsEditedFile(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			db := fresh(t, d)
			path := copyDir(t, d)
			f := files(t, localDir(t, path))[0]
			writeFile(t, path, f.Name(), string(f.Bytes())+"CREATE TABLE sneaky (id integer);\n")
			_, err := migrations.Apply(ctx, db.SQL, db.Dialect, localDir(t, path), on(db, migrations.Options{}))
			if !errors.Is(err, migrations.ErrChecksum) {
				t.Fatalf("Apply of an edited file: %v, want ErrChecksum", err)
			}
			for _, s := range []string{f.Name(), "edited", "atlas.sum"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if got := tables(t, db); len(got) != 0 {
				t.Fatalf("tables %v after a refused apply, want none", got)
			}
			if _, err := migrations.ReadStatus(ctx, db.SQL, db.Dialect, localDir(t, path), on(db, migrations.Options{})); !errors.Is(err, migrations.ErrChecksum) {
				t.Fatalf("status of an edited directory: %v, want ErrChecksum", err)
			}
			// Applied first, edited later: still refused, nothing runs.
			path2 := copyDir(t, d)
			apply(t, db, localDir(t, path2), migrations.Options{})
			revs := readRevisions(t, db.SQL, migrations.RevisionTable)
			writeFile(t, path2, f.Name(), string(f.Bytes())+"CREATE TABLE sneaky (id integer);\n")
			if _, err := migrations.Apply(ctx, db.SQL, db.Dialect, localDir(t, path2), on(db, migrations.Options{})); !errors.Is(err, migrations.ErrChecksum) {
				t.Fatalf("Apply of an edited applied file: %v, want ErrChecksum", err)
			}
			if hasTable(t, db, "sneaky") || len(readRevisions(t, db.SQL, migrations.RevisionTable)) != len(revs) {
				t.Fatal("a refused apply changed the database")
			}
		})
	}
}

// extraTable is a table added to the reference schema to make a second
// migration.
func extraTable() *entschema.Table {
	cols := []*entschema.Column{
		{Name: "id", Type: field.TypeInt, Increment: true},
		{Name: "note", Type: field.TypeString, Nullable: true},
	}
	return &entschema.Table{Name: "qs_extra", Columns: cols, PrimaryKey: cols[:1]}
}

// Applying twice is a no-op; status lists applied and pending versions; a
// new migration (generated into a copy) is applied alone.
func TestMigrationsIncremental(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			db := fresh(t, d)
			path := copyDir(t, d)
			names := fileNames(t, localDir(t, path))
			vs := versions(t, names)
			last := vs[len(vs)-1]

			st, err := migrations.ReadStatus(ctx, db.SQL, db.Dialect, localDir(t, path), on(db, migrations.Options{}))
			if err != nil {
				t.Fatal(err)
			}
			var pending []string
			for _, f := range st.Pending {
				pending = append(pending, f.Name())
			}
			if st.OK() || !slices.Equal(pending, names) || st.Current != "" {
				t.Fatalf("status before any apply: %+v (pending %v, want %v)", st, pending, names)
			}
			if got := tables(t, db); len(got) != 0 {
				t.Fatalf("status created tables: %v", got)
			}

			var log strings.Builder
			res := apply(t, db, localDir(t, path), migrations.Options{Log: &log})
			if res.From != "" || res.To != last || !slices.Equal(res.Applied, names) || res.Statements == 0 {
				t.Fatalf("first apply: %+v", res)
			}
			for _, v := range vs {
				if !strings.Contains(log.String(), "migrating version "+v) {
					t.Errorf("log lacks version %s:\n%s", v, log.String())
				}
			}
			log.Reset()
			res = apply(t, db, localDir(t, path), migrations.Options{Log: &log})
			if len(res.Applied) != 0 || res.From != last || res.To != last {
				t.Fatalf("second apply: %+v", res)
			}
			if !strings.Contains(log.String(), "No migration files to execute") {
				t.Errorf("log of a no-op:\n%s", log.String())
			}
			if got := revVersions(readRevisions(t, db.SQL, migrations.RevisionTable)); !slices.Equal(got, vs) {
				t.Fatalf("revision rows after two applies: %v, want %v", got, vs)
			}

			// Nothing changed: the generator writes nothing.
			cfg := gen.Config{Tables: refmigrate.Tables}
			name, err := gen.GenerateDialect(ctx, d, path, cfg)
			if err != nil || name != "" {
				t.Fatalf("generating an unchanged schema: %q, %v", name, err)
			}
			// A schema change: the generator writes the next version, the
			// day after the directory's last file.
			next := dayAfter(t, last)
			cfg.Tables = append(slices.Clone(refmigrate.Tables), extraTable())
			if name, err = gen.GenerateDialect(ctx, d, path, cfg); err != nil {
				t.Fatal(err)
			}
			if name != next+"_changes.sql" {
				t.Fatalf("generated %q, want %s_changes.sql", name, next)
			}
			if err := migrate.Validate(localDir(t, path)); err != nil {
				t.Fatalf("generated directory: %v", err)
			}

			st, err = migrations.ReadStatus(ctx, db.SQL, db.Dialect, localDir(t, path), on(db, migrations.Options{}))
			if err != nil {
				t.Fatal(err)
			}
			if st.OK() || st.Current != last || len(st.Applied) != len(names) || len(st.Pending) != 1 || st.Pending[0].Version() != next {
				t.Fatalf("status with a new file: %+v", st)
			}
			var out strings.Builder
			if err := st.Write(&out); err != nil {
				t.Fatal(err)
			}
			want := []string{"Migration Status: PENDING", "Current Version: " + last, "Next Version:    " + next, "Pending Files:   1", next + "  changes"}
			for _, n := range names {
				v, desc := splitName(t, n)
				want = append(want, v+"  "+desc)
			}
			for _, s := range want {
				if !strings.Contains(out.String(), s) {
					t.Errorf("status output lacks %q:\n%s", s, out.String())
				}
			}

			res = apply(t, db, localDir(t, path), migrations.Options{})
			if !slices.Equal(res.Applied, []string{next + "_changes.sql"}) || res.From != last || res.To != next {
				t.Fatalf("apply of the new file: %+v", res)
			}
			if !hasTable(t, db, "qs_extra") {
				t.Fatal("qs_extra was not created")
			}
			revs := readRevisions(t, db.SQL, migrations.RevisionTable)
			if r := revs[len(revs)-1]; !slices.Equal(revVersions(revs), append(slices.Clone(vs), next)) || r.Description != "changes" || r.Applied != r.Total {
				t.Fatalf("revisions after the new file: %+v", revs)
			}
			assertNoDrift(t, db, cfg.Tables)
			st, err = migrations.ReadStatus(ctx, db.SQL, db.Dialect, localDir(t, path), on(db, migrations.Options{}))
			if err != nil {
				t.Fatal(err)
			}
			if !st.OK() || st.Current != next || len(st.Applied) != len(names)+1 {
				t.Fatalf("final status: %+v", st)
			}
		})
	}
}

// holdLock takes the CLI's lock on db through the Atlas driver directly,
// as a concurrent `atlas migrate apply` would.
func holdLock(t *testing.T, db *dburl.DB) func() {
	t.Helper()
	var (
		drv migrate.Driver
		err error
	)
	name := migrations.LockName
	switch db.Dialect {
	case "postgres":
		drv, err = atlaspg.Open(db.SQL)
	case "mysql":
		drv, err = atlasmysql.Open(db.SQL)
	default:
		drv, err = atlassqlite.Open(db.SQL)
	}
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := drv.Lock(ctx, name, 5*time.Second)
	if err != nil {
		t.Fatalf("taking the lock: %v", err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			if err := unlock(); err != nil {
				t.Errorf("releasing the lock: %v", err)
			}
		})
	}
	t.Cleanup(release)
	return release
}

// Two appliers at once: one applies, the other waits or reports the lock;
// each file of the directory is applied exactly once.
func TestMigrationsConcurrent(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			if d == testutil.SQLite {
				// The SQLite lock is a file in the temp directory, one for
				// the host: keep other test processes out of this test's.
				t.Setenv("TMPDIR", t.TempDir())
			}
			db := fresh(t, d)
			// A held lock is reported after the timeout, and nothing runs.
			release := holdLock(t, db)
			start := time.Now()
			_, err := migrations.Apply(ctx, db.SQL, db.Dialect, refDir(t, d), on(db, migrations.Options{LockTimeout: 300 * time.Millisecond}))
			if !errors.Is(err, migrations.ErrLocked) {
				t.Fatalf("Apply while locked: %v, want ErrLocked", err)
			}
			if !strings.Contains(err.Error(), migrations.LockName) {
				t.Errorf("lock error %q does not name the lock", err)
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("Apply waited %v for a 300ms timeout", time.Since(start))
			}
			if got := tables(t, db); len(got) != 0 {
				t.Fatalf("tables %v after a locked-out apply", got)
			}
			// An applier waits for the lock and goes on when it is released.
			done := make(chan error, 1)
			go func() {
				_, err := migrations.Apply(ctx, db.SQL, db.Dialect, refDir(t, d), on(db, migrations.Options{}))
				done <- err
			}()
			time.Sleep(300 * time.Millisecond)
			select {
			case err := <-done:
				t.Fatalf("Apply did not wait for the lock: %v", err)
			default:
			}
			release()
			if err := <-done; err != nil {
				t.Fatalf("Apply after the lock was released: %v", err)
			}

			// Two at once on a clean database, each with its own pool.
			db2, rawURL := freshURL(t, d)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			results := make([]*migrations.Result, 2)
			for i := range 2 {
				other, err := dburl.Open(rawURL)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { other.Close() })
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], errs[i] = migrations.Apply(ctx, other.SQL, other.Dialect, refDir(t, d), on(other, migrations.Options{}))
				}()
			}
			wg.Wait()
			names := fileNames(t, refDir(t, d))
			times := map[string]int{}
			for i := range 2 {
				switch {
				case errs[i] == nil:
					for _, n := range results[i].Applied {
						times[n]++
					}
				case errors.Is(errs[i], migrations.ErrLocked):
				default:
					t.Fatalf("applier %d: %v", i, errs[i])
				}
			}
			for _, n := range names {
				if times[n] != 1 {
					t.Errorf("%s was applied %d times", n, times[n])
				}
			}
			if len(times) != len(names) {
				t.Errorf("applied %v, want each of %v once", times, names)
			}
			if got, want := revVersions(readRevisions(t, db2.SQL, migrations.RevisionTable)), versions(t, names); !slices.Equal(got, want) {
				t.Fatalf("revision rows %v, want %v", got, want)
			}
			assertNoDrift(t, db2, refmigrate.Tables)
		})
	}
}

// A failing file: nothing of it stays where DDL is transactional (Postgres,
// SQLite), and no revision row; on MariaDB the revision row records the
// error like the CLI's. Fixing the file lets the next apply succeed.
func TestMigrationsFailingFile(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			db := fresh(t, d)
			path := copyDir(t, d)
			ref := fileNames(t, localDir(t, path))
			refVersions := versions(t, ref)
			// The broken file comes after the reference files.
			brokenVersion := dayAfter(t, refVersions[len(refVersions)-1])
			brokenFile := brokenVersion + "_broken.sql"
			const (
				first  = "CREATE TABLE broken_a (id integer NOT NULL)"
				failed = "INSERT INTO missing_table (id) VALUES (1)"
				fixed  = "CREATE TABLE broken_b (id integer NOT NULL)"
			)
			writeFile(t, path, brokenFile, first+";\n"+failed+";\n")
			rehash(t, path)

			res, err := migrations.Apply(ctx, db.SQL, db.Dialect, localDir(t, path), on(db, migrations.Options{}))
			if err == nil {
				t.Fatal("a failing file applied without error")
			}
			for _, s := range []string{brokenFile, failed, "statement 2 of 2"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if !slices.Equal(res.Applied, ref) {
				t.Errorf("applied %v before the failure, want %v", res.Applied, ref)
			}
			revs := readRevisions(t, db.SQL, migrations.RevisionTable)
			if d == testutil.MySQL {
				// MariaDB committed the first statement by itself; the row
				// records how far the file got, as the CLI's does.
				if !hasTable(t, db, "broken_a") {
					t.Fatal("broken_a missing on MariaDB")
				}
				if !slices.Equal(revVersions(revs), append(slices.Clone(refVersions), brokenVersion)) {
					t.Fatalf("revisions %+v", revs)
				}
				r := revs[len(revs)-1]
				var partial []string
				if err := json.Unmarshal([]byte(r.PartialHashes.String), &partial); err != nil {
					t.Fatalf("partial_hashes %q: %v", r.PartialHashes.String, err)
				}
				if r.Version != brokenVersion || r.Applied != 1 || r.Total != 2 || strings.TrimSuffix(r.ErrorStmt.String, ";") != failed ||
					!strings.Contains(r.Error.String, "missing_table") || len(partial) != 1 || !strings.HasPrefix(partial[0], "h1:") {
					t.Fatalf("revision of the failed file: %+v", r)
				}
				st, err := migrations.ReadStatus(ctx, db.SQL, db.Dialect, localDir(t, path), on(db, migrations.Options{}))
				if err != nil {
					t.Fatal(err)
				}
				if st.OK() || strings.TrimSuffix(st.ErrorStmt, ";") != failed || len(st.Pending) != 1 || st.Pending[0].Version() != brokenVersion {
					t.Fatalf("status after the failure: %+v", st)
				}
			} else {
				if hasTable(t, db, "broken_a") {
					t.Fatal("the failed file's first statement stayed applied")
				}
				if !slices.Equal(revVersions(revs), refVersions) {
					t.Fatalf("revisions after the failure: %+v, want %v", revs, refVersions)
				}
			}

			// Fix the failing statement; the next apply succeeds.
			writeFile(t, path, brokenFile, first+";\n"+fixed+";\n")
			rehash(t, path)
			res = apply(t, db, localDir(t, path), migrations.Options{})
			if !slices.Equal(res.Applied, []string{brokenFile}) {
				t.Fatalf("applied %v after the fix", res.Applied)
			}
			if !hasTable(t, db, "broken_a") || !hasTable(t, db, "broken_b") {
				t.Fatalf("tables after the fix: %v", tables(t, db))
			}
			revs = readRevisions(t, db.SQL, migrations.RevisionTable)
			if r := revs[len(revs)-1]; !slices.Equal(revVersions(revs), append(slices.Clone(refVersions), brokenVersion)) || r.Applied != 2 || r.Total != 2 || r.Error.String != "" || r.PartialHashes.String != "null" {
				t.Fatalf("revisions after the fix: %+v", revs)
			}
		})
	}
}

// A database that already holds the app's tables needs AllowDirty.
func TestMigrationsDirtyDatabase(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			db := fresh(t, d)
			if _, err := db.SQL.Exec("CREATE TABLE orders (id integer NOT NULL PRIMARY KEY)"); err != nil {
				t.Fatal(err)
			}
			_, err := migrations.Apply(ctx, db.SQL, db.Dialect, refDir(t, d), on(db, migrations.Options{}))
			if !errors.Is(err, migrations.ErrNotClean) {
				t.Fatalf("Apply on a dirty database: %v, want ErrNotClean", err)
			}
			for _, s := range []string{"orders", "--allow-dirty"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if hasTable(t, db, "qsessions_session") {
				t.Fatal("a refused apply created tables")
			}
			res := apply(t, db, refDir(t, d), migrations.Options{AllowDirty: true})
			if !slices.Equal(res.Applied, fileNames(t, refDir(t, d))) || !hasTable(t, db, "qsessions_session") || !hasTable(t, db, "orders") {
				t.Fatalf("apply with AllowDirty: %+v, tables %v", res, tables(t, db))
			}
			// Once a revision exists the flag is no longer needed.
			apply(t, db, refDir(t, d), migrations.Options{})
		})
	}
}

// Bad arguments are errors, not panics.
func TestMigrationsBadInput(t *testing.T) {
	db := fresh(t, testutil.SQLite)
	if _, err := migrations.Apply(ctx, nil, "sqlite3", refDir(t, "sqlite"), migrations.Options{}); err == nil {
		t.Error("nil database accepted")
	}
	if _, err := migrations.Apply(ctx, db.SQL, db.Dialect, nil, on(db, migrations.Options{})); err == nil {
		t.Error("nil directory accepted")
	}
	if _, err := migrations.Apply(ctx, db.SQL, db.Dialect, refDir(t, "sqlite"), on(db, migrations.Options{TxMode: "sometimes"})); err == nil {
		t.Error("unknown tx mode accepted")
	}
	if _, err := migrations.Apply(ctx, db.SQL, db.Dialect, refDir(t, "sqlite"), on(db, migrations.Options{AllowDirty: true, Baseline: "1"})); err == nil {
		t.Error("AllowDirty with Baseline accepted")
	}
	if _, err := migrations.Apply(ctx, db.SQL, db.Dialect, refDir(t, "sqlite"), on(db, migrations.Options{RevisionsSchema: "other"})); err == nil {
		t.Error("a revisions schema other than main accepted on SQLite")
	}
	if _, err := migrations.Dir("oracle"); err == nil {
		t.Error("Dir(oracle) gave a directory")
	}
	bad := &dburl.DB{SQL: db.SQL, Dialect: "oracle"}
	if _, err := migrations.Apply(ctx, bad.SQL, bad.Dialect, refDir(t, "sqlite"), on(bad, migrations.Options{})); err == nil {
		t.Error("unknown dialect accepted")
	}
	if got := tables(t, db); len(got) != 0 {
		t.Fatalf("bad input created tables %v", got)
	}
}

// Baseline, Amount and the txmode directive behave like the CLI's flags.
func TestMigrationsOptions(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			path := copyDir(t, d)
			ref := fileNames(t, localDir(t, path))
			refVersions := versions(t, ref)
			// Two files of the test's own after the reference files.
			secondV := dayAfter(t, refVersions[len(refVersions)-1])
			thirdV := dayAfter(t, secondV)
			second, third := secondV+"_second.sql", thirdV+"_third.sql"
			writeFile(t, path, second, "CREATE TABLE second_t (id integer NOT NULL);\n")
			writeFile(t, path, third, "-- atlas:txmode none\n\nCREATE TABLE third_t (id integer NOT NULL);\n")
			rehash(t, path)

			// Amount: the reference files and the second, not the third.
			db := fresh(t, d)
			res := apply(t, db, localDir(t, path), migrations.Options{Amount: len(ref) + 1})
			if !slices.Equal(res.Applied, append(slices.Clone(ref), second)) || res.To != secondV || hasTable(t, db, "third_t") {
				t.Fatalf("Amount %d: %+v", len(ref)+1, res)
			}
			res = apply(t, db, localDir(t, path), migrations.Options{})
			if !slices.Equal(res.Applied, []string{third}) || !hasTable(t, db, "third_t") {
				t.Fatalf("txmode none file: %+v", res)
			}

			// A database that already has the reference schema (every
			// reference file) but no revisions: baseline it at the last
			// reference version.
			db2 := fresh(t, d)
			apply(t, db2, refDir(t, d), migrations.Options{})
			if _, err := db2.SQL.Exec("DROP TABLE " + migrations.RevisionTable); err != nil {
				t.Fatal(err)
			}
			baseline := refVersions[len(refVersions)-1]
			res = apply(t, db2, localDir(t, path), migrations.Options{Baseline: baseline, TxMode: migrations.TxModeAll, Amount: 1})
			if !slices.Equal(res.Applied, []string{second}) {
				t.Fatalf("after baseline: %+v", res)
			}
			revs := readRevisions(t, db2.SQL, migrations.RevisionTable)
			if len(revs) != 2 || revs[0].Type != int64(migrate.RevisionTypeBaseline) || revs[0].Version != baseline || revs[1].Version != secondV {
				t.Fatalf("revisions after baseline: %+v", revs)
			}
			// A file's txmode none conflicts with TxModeAll, as in the CLI.
			if _, err := migrations.Apply(ctx, db2.SQL, db2.Dialect, localDir(t, path), on(db2, migrations.Options{TxMode: migrations.TxModeAll})); err == nil || !strings.Contains(err.Error(), third) {
				t.Fatalf("txmode none under TxModeAll: %v", err)
			}
			if hasTable(t, db2, "third_t") {
				t.Fatal("third_t created despite the conflict")
			}
		})
	}
}

// The CLI's rules for where the revision table lives: the URL's schema,
// DefaultRevisionsSchema for a URL with none, RevisionsSchema when set, and
// an error when it is ambiguous. Run in a database of its own, because the
// rules look at other schemas.
func TestMigrationsRevisionsSchema(t *testing.T) {
	tdb := testutil.Open(t, testutil.Postgres)
	base := testutil.Env("QSESSIONS_TEST_POSTGRES", testutil.DefaultPostgres)
	name := fmt.Sprintf("qs_t_rev_%d", time.Now().UnixNano())
	if _, err := tdb.SQL.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = tdb.SQL.Exec("DROP DATABASE " + name + " WITH (FORCE)") })
	u, _ := url.Parse(base)
	u.Path = "/" + name
	q := u.Query()
	q.Del("search_path")
	u.RawQuery = q.Encode()
	realmURL := u.String()
	q.Set("search_path", "public")
	u.RawQuery = q.Encode()
	publicURL := u.String()
	open := func(s string) *dburl.DB {
		db, err := dburl.Open(s)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}

	// No schema in the URL: the table goes to atlas_schema_revisions.
	names := fileNames(t, refDir(t, "postgres"))
	last, _ := splitName(t, names[len(names)-1])
	realm := open(realmURL)
	apply(t, realm, refDir(t, "postgres"), migrations.Options{})
	if n := len(readRevisions(t, realm.SQL, `"atlas_schema_revisions"."atlas_schema_revisions"`)); n != len(names) {
		t.Fatalf("%d rows in atlas_schema_revisions.atlas_schema_revisions, want %d", n, len(names))
	}
	// A URL bound to public now finds no table there but one in the old
	// default schema: ambiguous, as with the CLI.
	public := open(publicURL)
	_, err := migrations.Apply(ctx, public.SQL, public.Dialect, refDir(t, "postgres"), on(public, migrations.Options{}))
	if err == nil || !strings.Contains(err.Error(), "ambiguous") || !strings.Contains(err.Error(), "--revisions-schema") {
		t.Fatalf("ambiguous revision table: %v", err)
	}
	// Naming the schema resolves it: nothing pending.
	res := apply(t, public, refDir(t, "postgres"), migrations.Options{RevisionsSchema: migrations.DefaultRevisionsSchema})
	if len(res.Applied) != 0 || res.From != last {
		t.Fatalf("with RevisionsSchema: %+v", res)
	}
	st, err := migrations.ReadStatus(ctx, public.SQL, public.Dialect, refDir(t, "postgres"), on(public, migrations.Options{RevisionsSchema: migrations.DefaultRevisionsSchema}))
	if err != nil || !st.OK() {
		t.Fatalf("status with RevisionsSchema: %+v, %v", st, err)
	}
	// An explicit schema is created on demand and holds the table; the
	// migrations go to the URL's schema.
	if _, err := public.SQL.Exec("CREATE SCHEMA app"); err != nil {
		t.Fatal(err)
	}
	q.Set("search_path", "app")
	u.RawQuery = q.Encode()
	app := open(u.String())
	res = apply(t, app, refDir(t, "postgres"), migrations.Options{RevisionsSchema: "qs_revs"})
	if !slices.Equal(res.Applied, names) {
		t.Fatalf("apply into schema app: %+v", res)
	}
	if !hasTable(t, app, "qsessions_session") || hasTable(t, app, migrations.RevisionTable) {
		t.Fatalf("tables of schema app: %v", tables(t, app))
	}
	if n := len(readRevisions(t, app.SQL, `"qs_revs"."atlas_schema_revisions"`)); n != len(names) {
		t.Fatalf("%d rows in qs_revs.atlas_schema_revisions, want %d", n, len(names))
	}
}

// The generator reproduces the committed directories byte for byte, file
// after file, each from the schema of its release, and writes nothing
// when run again. A new committed file needs its step here.
func TestMigrationsGenerateReproduces(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			fresh(t, d) // skips when the dev server is absent
			name, _ := migrations.DirName(d)
			for _, c := range []struct {
				committed string
				tables    []*entschema.Table
			}{
				{name, refmigrate.Tables},
				{filepath.Join("..", "examples", "uuidapp", "migrations", name), uuidmigrate.Tables},
			} {
				// Each committed file, with the schema it was generated
				// from and the -name it was generated with ("" for the
				// default, initial).
				steps := []struct {
					file, name string
					tables     []*entschema.Table
				}{
					{initialFile, "", initialTables(c.tables)},
					{eventsFile, "add_device_binding_and_events", c.tables},
				}
				var want []string
				for _, s := range steps {
					want = append(want, s.file)
				}
				if got := fileNames(t, localDir(t, c.committed)); !slices.Equal(got, want) {
					t.Fatalf("%s holds %v; this test reproduces %v: add the new file's step", c.committed, got, want)
				}
				tmp := t.TempDir()
				for _, s := range steps {
					wrote, err := gen.GenerateDialect(ctx, d, tmp, gen.Config{Tables: s.tables, Name: s.name})
					if err != nil {
						t.Fatal(err)
					}
					if wrote != s.file {
						t.Fatalf("wrote %q, want %s", wrote, s.file)
					}
					if got, want := must(os.ReadFile(filepath.Join(tmp, wrote))), must(os.ReadFile(filepath.Join(c.committed, wrote))); string(got) != string(want) {
						t.Fatalf("%s/%s differs from a fresh generation; run go generate ./migrations ./examples/uuidapp/migrations\ngot:\n%s\nwant:\n%s", c.committed, wrote, got, want)
					}
				}
				if got, want := must(os.ReadFile(filepath.Join(tmp, migrate.HashFileName))), must(os.ReadFile(filepath.Join(c.committed, migrate.HashFileName))); string(got) != string(want) {
					t.Fatalf("%s/%s differs from a fresh generation\ngot:\n%s\nwant:\n%s", c.committed, migrate.HashFileName, got, want)
				}
				if wrote, err := gen.GenerateDialect(ctx, d, tmp, gen.Config{Tables: c.tables}); err != nil || wrote != "" {
					t.Fatalf("second generation wrote %q, %v", wrote, err)
				}
			}
		})
	}
}
