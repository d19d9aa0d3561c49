package migrations_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"ariga.io/atlas/sql/migrate"
	entsql "entgo.io/ent/dialect/sql"
	entschema "entgo.io/ent/dialect/sql/schema"
	"entgo.io/ent/schema/field"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dburl"
	refmigrate "github.com/qsessions/qsessions/ent/migrate"
	uuidmigrate "github.com/qsessions/qsessions/examples/uuidapp/ent/migrate"
	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/migrations"
	"github.com/qsessions/qsessions/migrations/gen"
)

// todoTables are the ent tables of the app of issue 12: int user IDs, a
// todos table with a foreign key to users, and, with sessions, the table
// SessionMixin declares (qsessions' generated one, referencing these
// users). Fresh objects on each call: ent's engine annotates tables.
func todoTables(sessions bool) []*entschema.Table {
	ucols := []*entschema.Column{
		{Name: "id", Type: field.TypeInt, Increment: true},
		{Name: "username", Type: field.TypeString, Unique: true},
		{Name: "password_hash", Type: field.TypeBytes, Nullable: true},
		{Name: "is_admin", Type: field.TypeBool, Default: false},
	}
	users := &entschema.Table{Name: "users", Columns: ucols, PrimaryKey: ucols[:1]}
	tcols := []*entschema.Column{
		{Name: "id", Type: field.TypeInt, Increment: true},
		{Name: "title", Type: field.TypeString},
		{Name: "done", Type: field.TypeBool, Default: false},
		{Name: "user_todos", Type: field.TypeInt, Nullable: true},
	}
	todos := &entschema.Table{Name: "todos", Columns: tcols, PrimaryKey: tcols[:1],
		ForeignKeys: []*entschema.ForeignKey{{Symbol: "todos_users_todos", Columns: tcols[3:], RefColumns: ucols[:1], RefTable: users, OnDelete: entschema.SetNull}}}
	if !sessions {
		return []*entschema.Table{todos, users}
	}
	ref := refmigrate.QsessionsSessionTable
	scols := make([]*entschema.Column, len(ref.Columns))
	for i, c := range ref.Columns {
		cp := *c
		scols[i] = &cp
	}
	col := func(name string) *entschema.Column {
		for _, c := range scols {
			if c.Name == name {
				return c
			}
		}
		panic(name)
	}
	sess := &entschema.Table{Name: ref.Name, Columns: scols, PrimaryKey: scols[:1], Annotation: ref.Annotation,
		ForeignKeys: []*entschema.ForeignKey{{Symbol: "qsessions_session_users_sessions", Columns: []*entschema.Column{col("user_id")},
			RefColumns: ucols[:1], RefTable: users, OnDelete: entschema.Cascade}},
		Indexes: []*entschema.Index{
			{Name: "qsessions_session_user_id_expire_date", Columns: []*entschema.Column{col("user_id"), col("expire_date")}},
			{Name: "qsessions_session_expire_date", Columns: []*entschema.Column{col("expire_date")}},
		}}
	return []*entschema.Table{sess, todos, users}
}

// app is an app that adopts qsessions: its tables with the mixins, and
// how to put one row into its user table and one into another table.
type app struct {
	name      string
	tables    func() []*entschema.Table
	userTable string
	seed      func(t *testing.T, db *dburl.DB)
}

// withoutSessions is the app's schema before it added entschema's
// mixins: UserMixin adds only an edge whose foreign key lives in
// qsessions_session, so it is the tables without that one.
func (a app) withoutSessions() []*entschema.Table {
	var out []*entschema.Table
	for _, t := range a.tables() {
		if t.Name != "qsessions_session" {
			out = append(out, t)
		}
	}
	return out
}

func ph(d string, n int) string {
	if d == "postgres" {
		return fmt.Sprintf("$%d", n)
	}
	return "?"
}

func exec1(t *testing.T, db *dburl.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.SQL.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

var apps = []app{
	{
		name: "todoapp", tables: func() []*entschema.Table { return todoTables(true) }, userTable: "users",
		seed: func(t *testing.T, db *dburl.DB) {
			exec1(t, db, "INSERT INTO users (username, is_admin) VALUES ('ann', true)")
			exec1(t, db, "INSERT INTO todos (title, done, user_todos) VALUES ('adopt qsessions', false, 1)")
		},
	},
	{
		// UUID keys, a user table named accounts, and a table of its own
		// named sessions.
		name: "uuidapp", tables: cloneTables(uuidmigrate.Tables), userTable: "accounts",
		seed: func(t *testing.T, db *dburl.DB) {
			d := db.Dialect
			exec1(t, db, "INSERT INTO accounts (id, email, joined_at) VALUES ("+ph(d, 1)+", 'ann@example.com', "+ph(d, 2)+")",
				"0b6f3a4e-6d1c-4c1e-9d53-2f0f6b7d8e90", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			exec1(t, db, "INSERT INTO sessions (title, minutes) VALUES ('yoga', 45)")
		},
	},
}

// cloneTables returns a function giving deep enough copies of tables
// (columns, indexes, foreign keys) for ent's engine to annotate freely.
func cloneTables(src []*entschema.Table) func() []*entschema.Table {
	return func() []*entschema.Table {
		tabs := map[*entschema.Table]*entschema.Table{}
		cols := map[*entschema.Column]*entschema.Column{}
		for _, t := range src {
			cp := *t
			cp.Columns = nil
			for _, c := range t.Columns {
				cc := *c
				cols[c] = &cc
				cp.Columns = append(cp.Columns, &cc)
			}
			tabs[t] = &cp
		}
		pick := func(in []*entschema.Column) []*entschema.Column {
			out := make([]*entschema.Column, len(in))
			for i, c := range in {
				out[i] = cols[c]
			}
			return out
		}
		var out []*entschema.Table
		for _, t := range src {
			cp := tabs[t]
			cp.PrimaryKey = pick(t.PrimaryKey)
			cp.Indexes, cp.ForeignKeys = nil, nil
			for _, ix := range t.Indexes {
				ic := *ix
				ic.Columns = pick(ix.Columns)
				cp.Indexes = append(cp.Indexes, &ic)
			}
			for _, fk := range t.ForeignKeys {
				fc := *fk
				fc.Columns, fc.RefColumns, fc.RefTable = pick(fk.Columns), pick(fk.RefColumns), tabs[fk.RefTable]
				cp.ForeignKeys = append(cp.ForeignKeys, &fc)
			}
			out = append(out, cp)
		}
		return out
	}
}

// schemaCreate creates tables the way client.Schema.Create does.
func schemaCreate(t *testing.T, db *dburl.DB, tables []*entschema.Table) {
	t.Helper()
	m, err := entschema.NewMigrate(entsql.OpenDB(db.Dialect, db.SQL))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Create(ctx, tables...); err != nil {
		t.Fatalf("Schema.Create: %v", err)
	}
}

// devURL is a clean dev database for d ("" for SQLite, which needs none).
func devURL(t *testing.T, d string) string {
	if d == testutil.SQLite {
		return ""
	}
	_, u := freshURL(t, d)
	return u
}

func count(t *testing.T, db *dburl.DB, table string) int {
	t.Helper()
	var n int
	if err := db.SQL.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A database created by Schema.Create without the mixins is adopted from
// the live database: a baseline of its tables and a file that adds
// qsessions_session; apply --baseline creates the table, the result has
// zero drift against the schema with the mixins, and ent's generator
// continues the directory without a change.
func TestMigrationsAdoptDatabase(t *testing.T) {
	for _, d := range testutil.AllDialects {
		for _, a := range apps {
			t.Run(d+"/"+a.name, func(t *testing.T) {
				db := fresh(t, d)
				schemaCreate(t, db, a.withoutSessions())
				a.seed(t, db)
				before := tables(t, db)
				path := filepath.Join(t.TempDir(), "migrations")
				r, err := gen.AdoptDatabase(ctx, db, path, gen.AdoptOptions{UserTable: a.userTable, DevURL: devURL(t, d), Version: "20261201000000"})
				if err != nil {
					t.Fatalf("AdoptDatabase: %v", err)
				}
				if r.Baseline != "20261201000000_baseline.sql" || r.AddSessions != "20261201000001_add_sessions.sql" || r.BaselineVersion != "20261201000000" {
					t.Fatalf("result %+v", r)
				}
				if r.Dialect != d || r.Verified == "" || r.UserTable != a.userTable || r.UserKey != "id" || !slices.Equal(r.Tables, before) {
					t.Fatalf("result %+v (tables before %v)", r, before)
				}
				if got := tables(t, db); !slices.Equal(got, before) {
					t.Fatalf("adopting changed the database: tables %v, were %v", got, before)
				}
				dir := localDir(t, path)
				if err := migrate.Validate(dir); err != nil {
					t.Fatalf("the written directory does not validate: %v", err)
				}
				fs := files(t, dir)
				if len(fs) != 2 || strings.Contains(string(fs[0].Bytes()), "qsessions_session") || !strings.Contains(string(fs[1].Bytes()), "qsessions_session") {
					t.Fatalf("files %v:\n%s\n%s", fs, fs[0].Bytes(), fs[len(fs)-1].Bytes())
				}

				var log strings.Builder
				res := apply(t, db, dir, migrations.Options{Baseline: r.BaselineVersion, Log: &log})
				if !slices.Equal(res.Applied, []string{r.AddSessions}) {
					t.Fatalf("applied %v, want only %s\n%s", res.Applied, r.AddSessions, log.String())
				}
				if !hasTable(t, db, "qsessions_session") {
					t.Fatal("qsessions_session missing after apply --baseline")
				}
				assertNoDrift(t, db, a.tables())
				if count(t, db, a.userTable) != 1 {
					t.Fatal("the user row is gone")
				}
				revs := readRevisions(t, db.SQL, migrations.RevisionTable)
				if len(revs) != 2 || revs[0].Type != int64(migrate.RevisionTypeBaseline) || revs[1].Version != "20261201000001" {
					t.Fatalf("revisions %+v", revs)
				}
				st, err := migrations.ReadStatus(ctx, db.SQL, db.Dialect, dir, on(db, migrations.Options{}))
				if err != nil || !st.OK() || st.SessionTable != migrations.SessionOK {
					t.Fatalf("status: %+v, %v", st, err)
				}
				// ent's generator (like `atlas migrate diff`) replays the
				// directory and finds nothing to add.
				if name, err := gen.GenerateDialect(ctx, d, path, gen.Config{Tables: a.tables()}); err != nil || name != "" {
					t.Fatalf("generating after adoption wrote %q, %v", name, err)
				}

				// Refusals: a directory with files, a database that records
				// migrations, an unknown user table.
				if _, err := gen.AdoptDatabase(ctx, db, path, gen.AdoptOptions{UserTable: a.userTable}); err == nil || !strings.Contains(err.Error(), "already holds") {
					t.Errorf("adopting into a directory with files: %v", err)
				}
				if _, err := gen.AdoptDatabase(ctx, db, t.TempDir(), gen.AdoptOptions{UserTable: a.userTable}); err == nil || !strings.Contains(err.Error(), "managed by a migration directory") {
					t.Errorf("adopting a database with revisions: %v", err)
				}
			})
		}
	}
}

// Adoption refuses what it cannot do, naming the fix, and writes nothing.
func TestMigrationsAdoptRefusals(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			db := fresh(t, d)
			path := t.TempDir()
			if _, err := gen.AdoptDatabase(ctx, db, path, gen.AdoptOptions{}); err == nil || !strings.Contains(err.Error(), "no tables") {
				t.Errorf("adopting an empty database: %v", err)
			}
			schemaCreate(t, db, apps[1].withoutSessions())
			_, err := gen.AdoptDatabase(ctx, db, path, gen.AdoptOptions{})
			if err == nil || !strings.Contains(err.Error(), `no table "users"`) || !strings.Contains(err.Error(), "--users") || !strings.Contains(err.Error(), "accounts") {
				t.Errorf("adopting with a wrong user table: %v", err)
			}
			if fs, _ := os.ReadDir(path); len(fs) != 0 {
				t.Errorf("a refused adoption wrote %v", fs)
			}
			if d != testutil.SQLite {
				dirty := devURL(t, d)
				other, err := dburl.Open(dirty)
				if err != nil {
					t.Fatal(err)
				}
				defer other.Close()
				exec1(t, other, "CREATE TABLE leftover (id integer NOT NULL PRIMARY KEY)")
				_, err = gen.AdoptDatabase(ctx, db, t.TempDir(), gen.AdoptOptions{UserTable: "accounts", DevURL: dirty})
				if err == nil || !strings.Contains(err.Error(), "not clean") {
					t.Errorf("a dev database with tables: %v", err)
				}
			}
		})
	}
}

// A database that has qsessions_session already (Schema.Create ran with
// the mixins) gets a baseline alone, and applying it records it.
func TestMigrationsAdoptWithSessions(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			db := fresh(t, d)
			schemaCreate(t, db, todoTables(true))
			path := t.TempDir()
			r, err := gen.AdoptDatabase(ctx, db, path, gen.AdoptOptions{DevURL: devURL(t, d), Version: "7"})
			if err != nil {
				t.Fatal(err)
			}
			if r.AddSessions != "" || r.Baseline != "7_baseline.sql" || len(files(t, localDir(t, path))) != 1 {
				t.Fatalf("result %+v", r)
			}
			res := apply(t, db, localDir(t, path), migrations.Options{Baseline: "7"})
			if len(res.Applied) != 0 || res.To != "7" {
				t.Fatalf("apply: %+v", res)
			}
		})
	}
}

// The generator's adoption from ent tables (the app's schema without the
// mixins as the baseline): the same outcome as from the live database.
func TestMigrationsAdoptTables(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			db := fresh(t, d)
			a := apps[0]
			schemaCreate(t, db, a.withoutSessions())
			a.seed(t, db)
			path := t.TempDir()
			r, err := gen.AdoptTables(ctx, d, path, gen.Config{Tables: a.tables()})
			if err != nil {
				t.Fatal(err)
			}
			if r.Baseline != "20261125000000_baseline.sql" || r.AddSessions != "20261126000000_add_sessions.sql" || r.UserTable != "users" {
				t.Fatalf("result %+v", r)
			}
			res := apply(t, db, localDir(t, path), migrations.Options{Baseline: r.BaselineVersion})
			if !slices.Equal(res.Applied, []string{r.AddSessions}) || !hasTable(t, db, "qsessions_session") {
				t.Fatalf("apply: %+v", res)
			}
			assertNoDrift(t, db, a.tables())
			if name, err := gen.GenerateDialect(ctx, d, path, gen.Config{Tables: a.tables()}); err != nil || name != "" {
				t.Fatalf("generating after adoption wrote %q, %v", name, err)
			}
			if _, err := gen.AdoptTables(ctx, d, path, gen.Config{Tables: a.tables()}); err == nil {
				t.Fatal("adopting into a directory with files succeeded")
			}
			if _, err := gen.AdoptTables(ctx, d, t.TempDir(), gen.Config{Tables: a.withoutSessions()}); err == nil || !strings.Contains(err.Error(), "no qsessions_session") {
				t.Fatalf("adopting tables without the session table: %v", err)
			}
		})
	}
}

// The trap of issue 12: one initial file with the app's tables and
// qsessions_session, applied with --baseline to a database that has the
// app's tables, used to record the baseline and never create the table.
// Now it is refused before anything is written; a baseline recorded
// earlier (by the atlas CLI, or with the check off) fails the check after
// every apply and the status, naming the fix, which works.
func TestMigrationsBaselineTrap(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			a := apps[0]
			db := fresh(t, d)
			schemaCreate(t, db, a.withoutSessions())
			a.seed(t, db)
			path := t.TempDir()
			initial, err := gen.GenerateDialect(ctx, d, path, gen.Config{Tables: a.tables()})
			if err != nil {
				t.Fatal(err)
			}
			version := strings.SplitN(initial, "_", 2)[0]
			_, err = migrations.Apply(ctx, db.SQL, db.Dialect, localDir(t, path), on(db, migrations.Options{Baseline: version}))
			var se *migrations.SessionTableError
			if !errors.As(err, &se) || !errors.Is(err, backend.ErrNoTable) {
				t.Fatalf("apply --baseline of the single initial file: %v", err)
			}
			for _, s := range []string{"refusing --baseline " + version, "no table qsessions_session", initial, "without running it",
				"qsessions migrate adopt --db '" + db.URL + "' --dir NEWDIR", "docs/migrations.md"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q:\n%v", s, err)
				}
			}
			if se.Baseline != version || se.Creator == nil || se.Creator.Name() != initial {
				t.Errorf("error fields %+v", se)
			}
			if hasTable(t, db, migrations.RevisionTable) {
				t.Fatal("the refused apply created the revision table")
			}

			// The same with qsessions' own directory on a database that
			// has its users table only (the external check's case): a
			// baseline at the initial file, or at any later file, covers
			// the file that creates qsessions_session, so each is refused
			// and nothing is written (no later file runs either).
			db2 := fresh(t, d)
			schemaCreate(t, db2, cloneTables([]*entschema.Table{refmigrate.UsersTable})())
			for _, v := range versions(t, fileNames(t, refDir(t, d))) {
				_, err = migrations.Apply(ctx, db2.SQL, db2.Dialect, refDir(t, d), on(db2, migrations.Options{Baseline: v}))
				if !errors.As(err, &se) || !errors.Is(err, backend.ErrNoTable) || !strings.Contains(err.Error(), "refusing --baseline "+v) ||
					se.Baseline != v || se.Creator == nil || se.Creator.Name() != initialFile {
					t.Fatalf("apply --baseline %s of the reference directory: %v", v, err)
				}
				if got := tables(t, db2); !slices.Equal(got, []string{"users"}) {
					t.Fatalf("the refused apply --baseline %s left tables %v", v, got)
				}
			}

			// A baseline recorded with the check off: every later apply
			// and the status report it, with the fix.
			res := apply(t, db, localDir(t, path), migrations.Options{Baseline: version, SessionCheck: migrations.CheckNever})
			if len(res.Applied) != 0 || res.To != version {
				t.Fatalf("apply with the check off: %+v", res)
			}
			_, err = migrations.Apply(ctx, db.SQL, db.Dialect, localDir(t, path), on(db, migrations.Options{}))
			if !errors.As(err, &se) || se.Baseline != "" {
				t.Fatalf("apply after a recorded baseline: %v", err)
			}
			for _, s := range []string{"no table qsessions_session", "the baseline " + version + " recorded in atlas_schema_revisions", "DELETE FROM", "qsessions migrate adopt"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q:\n%v", s, err)
				}
			}
			st, err := migrations.ReadStatus(ctx, db.SQL, db.Dialect, localDir(t, path), on(db, migrations.Options{}))
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			if err := st.Write(&out); err != nil {
				t.Fatal(err)
			}
			if st.OK() || st.SessionTable != migrations.SessionMissing || !strings.Contains(out.String(), "Migration Status: SESSION TABLE MISSING") ||
				!strings.Contains(out.String(), "-- Session Table:   MISSING") || !strings.Contains(out.String(), "DELETE FROM") {
				t.Fatalf("status %+v:\n%s", st, out.String())
			}

			// The fix the message gives: remove the baseline row, adopt,
			// apply with the printed baseline.
			exec1(t, db, "DELETE FROM atlas_schema_revisions WHERE version = '"+version+"'")
			fixed := filepath.Join(t.TempDir(), "adopted")
			r, err := gen.AdoptDatabase(ctx, db, fixed, gen.AdoptOptions{DevURL: devURL(t, d)})
			if err != nil {
				t.Fatal(err)
			}
			res = apply(t, db, localDir(t, fixed), migrations.Options{Baseline: r.BaselineVersion})
			if !slices.Equal(res.Applied, []string{r.AddSessions}) {
				t.Fatalf("apply of the adopted directory: %+v", res)
			}
			assertNoDrift(t, db, a.tables())
		})
	}
}

// The check's modes and findings: directories not about sessions, files
// applied in steps, a dropped table, a missing column.
func TestMigrationsSessionCheck(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			// A directory that never mentions the table: not checked by
			// default, a failure with CheckAlways.
			other := t.TempDir()
			writeFile(t, other, "20261101000000_orders.sql", "CREATE TABLE orders (id integer NOT NULL PRIMARY KEY);\n")
			rehash(t, other)
			db := fresh(t, d)
			apply(t, db, localDir(t, other), migrations.Options{})
			st, err := migrations.ReadStatus(ctx, db.SQL, db.Dialect, localDir(t, other), on(db, migrations.Options{}))
			if err != nil || st.SessionTable != migrations.SessionNotChecked || !st.OK() {
				t.Fatalf("status of a directory without sessions: %+v, %v", st, err)
			}
			_, err = migrations.Apply(ctx, db.SQL, db.Dialect, localDir(t, other), on(db, migrations.Options{SessionCheck: migrations.CheckAlways}))
			if !errors.Is(err, backend.ErrNoTable) || !strings.Contains(err.Error(), "no file of") || !strings.Contains(err.Error(), "--no-session-check") {
				t.Fatalf("CheckAlways on a directory without sessions: %v", err)
			}
			if _, err := migrations.Apply(ctx, db.SQL, db.Dialect, localDir(t, other), on(db, migrations.Options{SessionCheck: 7})); err == nil {
				t.Fatal("an unknown SessionCheck was accepted")
			}

			// Files applied in steps: the table's file still pending is no
			// fault, and the status says it is coming.
			steps := copyDir(t, d)
			writeFile(t, steps, "20261101000000_orders.sql", "CREATE TABLE orders (id integer NOT NULL PRIMARY KEY);\n")
			rehash(t, steps)
			db = fresh(t, d)
			apply(t, db, localDir(t, steps), migrations.Options{Amount: 1})
			st, err = migrations.ReadStatus(ctx, db.SQL, db.Dialect, localDir(t, steps), on(db, migrations.Options{}))
			if err != nil || st.SessionTable != migrations.SessionPending {
				t.Fatalf("status with the table's file pending: %+v, %v", st, err)
			}
			var out strings.Builder
			_ = st.Write(&out)
			if !strings.Contains(out.String(), "-- Session Table:   missing; pending file 20261125000000_initial.sql creates it") {
				t.Errorf("status output:\n%s", out.String())
			}
			apply(t, db, localDir(t, steps), migrations.Options{})
			st, _ = migrations.ReadStatus(ctx, db.SQL, db.Dialect, localDir(t, steps), on(db, migrations.Options{}))
			out.Reset()
			_ = st.Write(&out)
			if st.SessionTable != migrations.SessionOK || !strings.Contains(out.String(), "-- Session Table:   present (qsessions_session)") {
				t.Errorf("status after all files: %+v\n%s", st, out.String())
			}

			// A column dropped by hand, then the table.
			exec1(t, db, "ALTER TABLE qsessions_session DROP COLUMN last_activity")
			_, err = migrations.Apply(ctx, db.SQL, db.Dialect, localDir(t, steps), on(db, migrations.Options{}))
			if !errors.Is(err, backend.ErrNoTable) || !strings.Contains(err.Error(), "lacks column last_activity") {
				t.Fatalf("apply with a column missing: %v", err)
			}
			exec1(t, db, "DROP TABLE qsessions_session")
			_, err = migrations.Apply(ctx, db.SQL, db.Dialect, localDir(t, steps), on(db, migrations.Options{}))
			if !errors.Is(err, backend.ErrNoTable) || !strings.Contains(err.Error(), "20261125000000_initial.sql, which creates it, was applied on") {
				t.Fatalf("apply with the table dropped: %v", err)
			}
			if _, err := migrations.Apply(ctx, db.SQL, db.Dialect, localDir(t, steps), on(db, migrations.Options{SessionCheck: migrations.CheckNever})); err != nil {
				t.Fatalf("CheckNever: %v", err)
			}
		})
	}
}

// Apply takes any *sql.DB: package migrations links no database driver
// (a Postgres app that applies migrations does not link SQLite), only
// Atlas' drivers, which are pure Go inspectors and planners.
func TestMigrationsLinksNoDriver(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/qsessions/qsessions/migrations").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	for _, bad := range []string{"github.com/mattn/go-sqlite3", "github.com/go-sql-driver/mysql", "github.com/jackc/pgx", "github.com/lib/pq",
		"modernc.org/sqlite", "github.com/qsessions/qsessions/dburl", "github.com/qsessions/qsessions/migrations/gen"} {
		for _, p := range deps {
			if p == bad || strings.HasPrefix(p, bad+"/") {
				t.Errorf("package migrations links %s", p)
			}
		}
	}
	for _, want := range []string{"ariga.io/atlas/sql/postgres", "ariga.io/atlas/sql/mysql", "ariga.io/atlas/sql/sqlite", "github.com/qsessions/qsessions/backend"} {
		if !slices.Contains(deps, want) {
			t.Errorf("package migrations no longer links %s; is the test still right?", want)
		}
	}
	// No cgo at all: go-sqlite3 was the only cgo package it linked.
	out, err = exec.Command(goTool, "list", "-deps", "-f", "{{if .CgoFiles}}{{.ImportPath}}{{end}}", "github.com/qsessions/qsessions/migrations").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if !strings.HasPrefix(p, "runtime/cgo") && !strings.HasPrefix(p, "net") && !strings.HasPrefix(p, "os/user") {
			t.Errorf("package migrations links the cgo package %s", p)
		}
	}
}
