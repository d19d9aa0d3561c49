package gen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"
	"ariga.io/atlas/sql/mysql"
	"ariga.io/atlas/sql/postgres"
	"ariga.io/atlas/sql/schema"
	"ariga.io/atlas/sql/sqlite"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	entschema "entgo.io/ent/dialect/sql/schema"
	"entgo.io/ent/schema/field"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dburl"
	refmigrate "github.com/qsessions/qsessions/ent/migrate"
	qsschema "github.com/qsessions/qsessions/entschema"
	"github.com/qsessions/qsessions/migrations"
)

// Names of the two files an adoption writes.
const (
	BaselineName    = "baseline"
	AddSessionsName = "add_sessions"
)

// An app whose database was created by client.Schema.Create has no
// migration directory. A single file generated after adding entschema's
// mixins creates the app's tables and qsessions_session together; applied
// with --baseline (the database has the app's tables already) it would be
// marked applied without running, and qsessions_session never created.
// Adopting writes two files instead: a baseline of the app's tables as
// they are, and a later file that adds qsessions_session, so that
// `migrate apply --baseline <baseline version>` records the first and runs
// the second. AdoptTables writes them from the app's ent tables;
// AdoptDatabase from the live database.

// Adopt runs AdoptTables for each dialect of cfg (cfg.Dialects, default
// Dialects) into cfg.Root/<dialect>. Cost: as Generate's, twice.
func Adopt(ctx context.Context, cfg Config) ([]AdoptResult, error) {
	dialects := cfg.Dialects
	if dialects == nil {
		dialects = Dialects
	}
	var out []AdoptResult
	for _, d := range dialects {
		r, err := AdoptTables(ctx, d, filepath.Join(cfg.Root, d), cfg)
		if err != nil {
			return out, fmt.Errorf("gen %s: %w", d, err)
		}
		out = append(out, *r)
	}
	return out, nil
}

// AdoptResult reports the files an adoption wrote.
type AdoptResult struct {
	// Dialect is the directory's name (postgres, mysql, sqlite).
	Dialect string
	// Dir is the directory written.
	Dir string
	// Baseline is the baseline file's name; BaselineVersion its version,
	// the one to give `migrate apply --baseline`.
	Baseline, BaselineVersion string
	// AddSessions is the name of the file that creates qsessions_session;
	// "" when the database has the table already (AdoptDatabase only).
	AddSessions string
	// Tables are the baseline's tables, sorted.
	Tables []string
	// Schema is the schema (MySQL: database) that was read (AdoptDatabase).
	Schema string
	// UserTable and UserKey are the table and column user_id references.
	UserTable, UserKey string
	// Verified says how the directory was checked by replaying it, "" when
	// it was not (AdoptDatabase without a dev database).
	Verified string
}

// AdoptTables writes the adoption files for dialect name into path, which
// must hold no migration files yet, from cfg.Tables: the app's ent tables
// with entschema's mixins (its generated ent/migrate.Tables). The baseline
// is cfg.Tables without qsessions_session, the app's schema before it
// added the mixins (UserMixin adds nothing to the user table: the foreign
// key lives in qsessions_session); the next file creates qsessions_session
// with its foreign key and indexes. cfg.Version sets the baseline's
// version (default FirstVersion); the second file gets NextVersion of it.
// Both are generated as Generate does, by replaying into a dev database,
// so running Generate afterwards writes nothing. Cost: two Generate runs.
func AdoptTables(ctx context.Context, name, path string, cfg Config) (*AdoptResult, error) {
	if err := checkTables(cfg.Tables); err != nil {
		return nil, err
	}
	var before []*entschema.Table
	var sess *entschema.Table
	for _, t := range cfg.Tables {
		if t.Name == qsschema.Table {
			sess = t
			continue
		}
		before = append(before, t)
	}
	switch {
	case sess == nil:
		return nil, fmt.Errorf("the tables hold no %s: add entschema's SessionMixin and UserMixin to the app's ent schema, run go generate for ent, then adopt", qsschema.Table)
	case len(before) == 0:
		return nil, fmt.Errorf("the tables hold nothing but %s: there is nothing to baseline; generate the directory with Generate and apply it without --baseline", qsschema.Table)
	}
	for _, t := range before {
		for _, fk := range t.ForeignKeys {
			if fk.RefTable != nil && fk.RefTable.Name == qsschema.Table {
				return nil, fmt.Errorf("table %s has a foreign key to %s: the baseline cannot leave %s out", t.Name, qsschema.Table, qsschema.Table)
			}
		}
	}
	if err := requireEmptyDir(path); err != nil {
		return nil, err
	}
	version := cfg.Version
	if version == "" {
		version = FirstVersion
	}
	bcfg := cfg
	bcfg.Tables, bcfg.Name, bcfg.Version = before, BaselineName, version
	base, err := GenerateDialect(ctx, name, path, bcfg)
	if err != nil {
		return nil, fmt.Errorf("writing the baseline: %w", err)
	}
	scfg := cfg
	scfg.Name, scfg.Version = AddSessionsName, ""
	add, err := GenerateDialect(ctx, name, path, scfg)
	switch {
	case err != nil:
		return nil, fmt.Errorf("writing the file that adds %s: %w", qsschema.Table, err)
	case add == "":
		return nil, fmt.Errorf("the tables with %s gave no change after the baseline; is SessionMixin's table named otherwise?", qsschema.Table)
	}
	r := &AdoptResult{Dialect: name, Dir: path, Baseline: base, BaselineVersion: version, AddSessions: add}
	for _, t := range before {
		r.Tables = append(r.Tables, t.Name)
	}
	slices.Sort(r.Tables)
	for _, fk := range sess.ForeignKeys {
		if len(fk.Columns) == 1 && fk.Columns[0].Name == qsschema.ColumnUserID && fk.RefTable != nil && len(fk.RefColumns) == 1 {
			r.UserTable, r.UserKey = fk.RefTable.Name, fk.RefColumns[0].Name
		}
	}
	return r, nil
}

// requireEmptyDir refuses a path that holds migration files or an
// atlas.sum; a missing path is fine.
func requireEmptyDir(path string) error {
	entries, err := os.ReadDir(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") || e.Name() == migrate.HashFileName {
			return fmt.Errorf("directory %s already holds %s: adopting writes a new directory. "+
				"An app that has a migration directory adds qsessions_session with a new file in it instead "+
				"(`atlas migrate diff add_sessions --env ENV`, or Generate with Name add_sessions): see docs/migrations.md", path, e.Name())
		}
	}
	return nil
}

// AdoptOptions tune AdoptDatabase.
type AdoptOptions struct {
	// UserTable is the table of the app's user type, which user_id
	// references; "" means "users", ent's table for a type named User.
	UserTable string
	// Version is the baseline's version; "" means the current UTC time,
	// as `atlas migrate diff` names files. The next file gets the next
	// second (the next number for a plain number).
	Version string
	// DevURL is a clean dev database (an Atlas URL, like the atlas CLI's
	// --dev-url: an empty Postgres schema or MySQL database) into which the
	// written directory is replayed and compared with the live one; the
	// tables it creates there are dropped again. SQLite is verified in a
	// throwaway in-memory database without it; for Postgres and MySQL ""
	// means not verified.
	DevURL string
	// Now replaces time.Now for the default version.
	Now func() time.Time
}

// AdoptDatabase writes the adoption files for the live database db into
// path, which must hold no migration files yet. It only reads db: Atlas
// inspects the connected schema (Postgres: the URL's search_path, else
// current_schema(); MySQL: the URL's database; SQLite: main). The baseline
// creates every table of that schema as it is (the revision table aside);
// the next file creates qsessions_session as entschema's SessionMixin
// declares it, with user_id of the type of the user table's primary key
// and its foreign key to it (ON DELETE CASCADE), named as ent names it.
// When the database has qsessions_session already, only the baseline is
// written. It refuses a database that records applied migrations (a
// non-empty atlas_schema_revisions): that one has a directory already.
//
// Cost: one inspection of the schema and the catalog reads of ent's
// planner on db; with a dev database, a replay of both files into it, two
// inspections and the drops.
func AdoptDatabase(ctx context.Context, db *dburl.DB, path string, opts AdoptOptions) (*AdoptResult, error) {
	if db == nil || db.SQL == nil {
		return nil, errors.New("no database given")
	}
	if opts.UserTable == "" {
		opts.UserTable = "users"
	}
	if err := requireEmptyDir(path); err != nil {
		return nil, err
	}
	drv, err := atlasDriver(db.Dialect, db.SQL)
	if err != nil {
		return nil, err
	}
	name, err := connectedSchema(ctx, db)
	if err != nil {
		return nil, err
	}
	live, err := drv.InspectSchema(ctx, name, nil)
	if err != nil {
		return nil, fmt.Errorf("reading schema %q of %s: %w", name, db.URL, err)
	}
	if err := refuseManaged(ctx, db, drv, live); err != nil {
		return nil, err
	}
	base := *live
	base.Tables = nil
	for _, t := range live.Tables {
		if t.Name != migrations.RevisionTable {
			base.Tables = append(base.Tables, t)
		}
	}
	if len(base.Tables) == 0 {
		return nil, fmt.Errorf("schema %q of %s has no tables: there is nothing to baseline; apply the app's directory to it without --baseline", name, db.URL)
	}
	dirName, err := migrations.DirName(db.Dialect)
	if err != nil {
		return nil, err
	}
	r := &AdoptResult{Dialect: dirName, Dir: path, Schema: name, UserTable: opts.UserTable}
	for _, t := range base.Tables {
		r.Tables = append(r.Tables, t.Name)
	}
	slices.Sort(r.Tables)
	_, hasSessions := live.Table(qsschema.Table)
	var key *schema.Column
	if !hasSessions {
		users, ok := live.Table(opts.UserTable)
		if !ok {
			return nil, fmt.Errorf("schema %q of %s has no table %q (it has %s): name the table of the app's user type (--users, AdoptOptions.UserTable)",
				name, db.URL, opts.UserTable, strings.Join(r.Tables, ", "))
		}
		if users.PrimaryKey == nil || len(users.PrimaryKey.Parts) != 1 || users.PrimaryKey.Parts[0].C == nil {
			return nil, fmt.Errorf("table %q has no single-column primary key for %s.%s to reference", opts.UserTable, qsschema.Table, qsschema.ColumnUserID)
		}
		key = users.PrimaryKey.Parts[0].C
		r.UserKey = key.Name
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, err
	}
	dir, err := migrate.NewLocalDir(path)
	if err != nil {
		return nil, err
	}
	v1 := opts.Version
	if v1 == "" {
		now := time.Now
		if opts.Now != nil {
			now = opts.Now
		}
		v1 = now().UTC().Format(versionLayout)
	}
	r.BaselineVersion = v1
	// The baseline: the schema from nothing, as `atlas migrate checkpoint`
	// plans it.
	changes, err := drv.SchemaDiff(schema.New(live.Name).AddAttrs(live.Attrs...), &base)
	if err != nil {
		return nil, fmt.Errorf("planning the baseline: %w", err)
	}
	plan, err := drv.PlanChanges(ctx, BaselineName, changes, noQualifier)
	if err != nil {
		return nil, fmt.Errorf("planning the baseline: %w", err)
	}
	if err := migrate.NewPlanner(nil, dir, migrate.PlanFormat(fixedVersion(v1))).WritePlan(plan); err != nil {
		return nil, fmt.Errorf("writing the baseline: %w", err)
	}
	r.Baseline = fileName(v1, BaselineName)
	if !hasSessions {
		v2, err := nextVersionSecond(v1)
		if err != nil {
			return nil, err
		}
		if err := planSessions(ctx, db, name, dir, v2, opts.UserTable, key); err != nil {
			return nil, fmt.Errorf("writing the file that adds %s: %w", qsschema.Table, err)
		}
		r.AddSessions = fileName(v2, AddSessionsName)
	}
	if r.Verified, err = verifyAdoption(ctx, db.Dialect, opts.DevURL, dir, &base); err != nil {
		return r, err
	}
	return r, nil
}

func fileName(version, name string) string { return version + "_" + name + ".sql" }

// noQualifier plans unqualified statements, so the directory applies to
// whichever schema a URL names.
func noQualifier(o *migrate.PlanOptions) {
	q := ""
	o.SchemaQualifier = &q
}

// nextVersionSecond is the version a second after a timestamp version
// (the next number for a plain number).
func nextVersionSecond(v string) (string, error) {
	if t, err := time.Parse(versionLayout, v); err == nil && len(v) == len(versionLayout) {
		return t.Add(time.Second).Format(versionLayout), nil
	}
	if n, err := strconv.ParseUint(v, 10, 63); err == nil {
		return strconv.FormatUint(n+1, 10), nil
	}
	return "", fmt.Errorf("version %q is neither a timestamp (%s) nor a number", v, versionLayout)
}

func atlasDriver(d string, q schema.ExecQuerier) (migrate.Driver, error) {
	switch d {
	case dialect.Postgres:
		return postgres.Open(q)
	case dialect.MySQL:
		return mysql.Open(q)
	case dialect.SQLite:
		return sqlite.Open(q)
	}
	return nil, fmt.Errorf("unsupported dialect %q", d)
}

// connectedSchema is the schema a connection works in: the URL's, else
// the server's current one.
func connectedSchema(ctx context.Context, db *dburl.DB) (string, error) {
	if db.Schema != "" {
		return db.Schema, nil
	}
	var q string
	switch db.Dialect {
	case dialect.Postgres:
		q = "SELECT current_schema()"
	case dialect.MySQL:
		q = "SELECT DATABASE()"
	default:
		return "main", nil
	}
	var s *string
	if err := db.SQL.QueryRowContext(ctx, q).Scan(&s); err != nil {
		return "", fmt.Errorf("finding the schema of %s: %w", db.URL, err)
	}
	if s == nil || *s == "" {
		return "", fmt.Errorf("%s names no schema (database) and the connection has none: name it in the URL", db.URL)
	}
	return *s, nil
}

// refuseManaged refuses a database whose revision table (in the connected
// schema, or the CLI's default one) records applied migrations.
func refuseManaged(ctx context.Context, db *dburl.DB, drv migrate.Driver, live *schema.Schema) error {
	where := []string{live.Name}
	if db.Dialect != dialect.SQLite && live.Name != migrations.DefaultRevisionsSchema {
		s, err := drv.InspectSchema(ctx, migrations.DefaultRevisionsSchema, &schema.InspectOptions{Tables: []string{migrations.RevisionTable}, Mode: schema.InspectTables})
		switch {
		case schema.IsNotExistError(err):
		case err != nil:
			return fmt.Errorf("inspecting schema %q: %w", migrations.DefaultRevisionsSchema, err)
		default:
			if _, ok := s.Table(migrations.RevisionTable); ok {
				where = append(where, migrations.DefaultRevisionsSchema)
			}
		}
	}
	for i, s := range where {
		if i == 0 {
			if _, ok := live.Table(migrations.RevisionTable); !ok {
				continue
			}
		}
		table := quote(db.Dialect, migrations.RevisionTable)
		if db.Dialect != dialect.SQLite {
			table = quote(db.Dialect, s) + "." + table
		}
		var n int
		if err := db.SQL.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
			return fmt.Errorf("reading %s: %w", table, err)
		}
		if n > 0 {
			return fmt.Errorf("%s records %d applied migration(s) in %s: this database is managed by a migration directory already. "+
				"Add qsessions_session with a new file in that directory (`atlas migrate diff add_sessions --env ENV`, "+
				"or gen.Generate with Name add_sessions) and apply it: see docs/migrations.md", db.URL, n, table)
		}
	}
	return nil
}

func quote(d, id string) string {
	if d == dialect.MySQL {
		return "`" + strings.ReplaceAll(id, "`", "``") + "`"
	}
	return `"` + strings.ReplaceAll(id, `"`, `""`) + `"`
}

// planSessions writes the file that creates qsessions_session: ent plans
// it from SessionMixin's table (qsessions' generated reference table) on
// the live database in inspect mode, which only reads it; user_id takes
// the type of the user table's key.
func planSessions(ctx context.Context, db *dburl.DB, schemaName string, dir migrate.Dir, version, userTable string, key *schema.Column) error {
	sess, stub := sessionTable(userTable, key.Name)
	opts := []entschema.MigrateOption{
		entschema.WithDir(dir),
		entschema.WithFormatter(fixedVersion(version)),
		entschema.WithMigrationMode(entschema.ModeInspect),
		entschema.WithDiffHook(onlySessionTable(key.Type)),
	}
	if db.Dialect != dialect.SQLite {
		opts = append(opts, entschema.WithSchemaName(schemaName))
	}
	m, err := entschema.NewMigrate(entsql.OpenDB(db.Dialect, db.SQL), opts...)
	if err != nil {
		return err
	}
	return m.NamedDiff(ctx, AddSessionsName, stub, sess)
}

// sessionTable returns a copy of SessionMixin's table whose user_id
// references userTable(key), and a stub of the user table for ent.
func sessionTable(userTable, key string) (sess, users *entschema.Table) {
	ref := refmigrate.QsessionsSessionTable
	cols := make([]*entschema.Column, len(ref.Columns))
	byName := map[string]*entschema.Column{}
	for i, c := range ref.Columns {
		cp := *c
		cols[i] = &cp
		byName[c.Name] = &cp
	}
	pick := func(in []*entschema.Column) []*entschema.Column {
		out := make([]*entschema.Column, len(in))
		for i, c := range in {
			out[i] = byName[c.Name]
		}
		return out
	}
	idCol := &entschema.Column{Name: key, Type: field.TypeInt}
	users = &entschema.Table{Name: userTable, Columns: []*entschema.Column{idCol}, PrimaryKey: []*entschema.Column{idCol}}
	sess = &entschema.Table{Name: ref.Name, Columns: cols, PrimaryKey: pick(ref.PrimaryKey), Annotation: ref.Annotation}
	for _, ix := range ref.Indexes {
		cp := *ix
		cp.Columns = pick(ix.Columns)
		sess.Indexes = append(sess.Indexes, &cp)
	}
	sess.ForeignKeys = []*entschema.ForeignKey{{
		// ent's name for the edge's constraint: <table>_<ref table>_<edge>.
		Symbol:     fmt.Sprintf("%s_%s_%s", qsschema.Table, userTable, qsschema.EdgeSessions),
		Columns:    []*entschema.Column{byName[qsschema.ColumnUserID]},
		RefTable:   users,
		RefColumns: []*entschema.Column{idCol},
		OnDelete:   entschema.Cascade,
	}}
	return sess, users
}

// onlySessionTable keeps ent's plan to creating qsessions_session, with
// user_id of the user key's type.
func onlySessionTable(keyType *schema.ColumnType) entschema.DiffHook {
	return func(next entschema.Differ) entschema.Differ {
		return entschema.DiffFunc(func(current, desired *schema.Schema) ([]schema.Change, error) {
			changes, err := next.Diff(current, desired)
			if err != nil {
				return nil, err
			}
			for _, c := range changes {
				add, ok := c.(*schema.AddTable)
				if !ok || add.T.Name != qsschema.Table {
					continue
				}
				col, ok := add.T.Column(qsschema.ColumnUserID)
				if !ok {
					return nil, fmt.Errorf("ent's %s has no column %s", qsschema.Table, qsschema.ColumnUserID)
				}
				t := keyType.Type
				if s, ok := t.(*postgres.SerialType); ok {
					t = s.IntegerType()
				}
				col.Type.Type, col.Type.Raw = t, keyType.Raw
				return []schema.Change{add}, nil
			}
			return nil, fmt.Errorf("ent planned no %s table", qsschema.Table)
		})
	}
}

// verifyAdoption replays dir into a clean dev database: after the
// baseline its schema must equal want, after the next file the session
// check must pass. It returns how it verified, "" when there is no dev
// database.
func verifyAdoption(ctx context.Context, d, devURL string, dir migrate.Dir, want *schema.Schema) (string, error) {
	var (
		dev *dburl.DB
		err error
		how string
	)
	switch {
	case devURL != "":
		if dev, err = dburl.Open(devURL); err != nil {
			return "", fmt.Errorf("the dev database: %w", err)
		}
		if dev.Dialect != d {
			dev.Close()
			return "", fmt.Errorf("the dev database %s is not a %s database", dev.URL, d)
		}
		how = "replayed into the dev database " + dev.URL
	case d == dialect.SQLite:
		var b [6]byte
		_, _ = rand.Read(b[:])
		if dev, err = dburl.Open("sqlite://qsessions_adopt_" + hex.EncodeToString(b[:]) + "?mode=memory"); err != nil {
			return "", err
		}
		how = "replayed into an in-memory SQLite database"
	default:
		return "", nil
	}
	defer dev.Close()
	drv, err := atlasDriver(d, dev.SQL)
	if err != nil {
		return "", err
	}
	name, err := connectedSchema(ctx, dev)
	if err != nil {
		return "", err
	}
	inspect := func() (*schema.Schema, error) {
		s, err := drv.InspectSchema(ctx, name, nil)
		if schema.IsNotExistError(err) {
			return schema.New(name), nil
		}
		return s, err
	}
	s, err := inspect()
	if err != nil {
		return "", fmt.Errorf("inspecting the dev database: %w", err)
	}
	if len(s.Tables) > 0 {
		return "", fmt.Errorf("the dev database %s is not clean (it has table %q): give an empty schema or database", dev.URL, s.Tables[0].Name)
	}
	defer func() {
		// Drop what the replay created, as Atlas does with a dev database.
		if s, err := inspect(); err == nil && len(s.Tables) > 0 {
			drops := make([]schema.Change, len(s.Tables))
			for i, t := range s.Tables {
				drops[i] = &schema.DropTable{T: t, Extra: []schema.Clause{&schema.IfExists{}}}
			}
			_ = drv.ApplyChanges(context.WithoutCancel(ctx), drops)
		}
	}()
	files, err := dir.Files()
	if err != nil {
		return "", err
	}
	ex, err := migrate.NewExecutor(drv, dir, migrate.NopRevisionReadWriter{})
	if err != nil {
		return "", err
	}
	for i, f := range files {
		if err := ex.Execute(ctx, f); err != nil {
			return "", fmt.Errorf("verifying: replaying %s into the dev database: %w", f.Name(), err)
		}
		if i > 0 {
			continue
		}
		got, err := inspect()
		if err != nil {
			return "", fmt.Errorf("verifying: inspecting the dev database: %w", err)
		}
		if diff, err := tableDiff(ctx, drv, got, want); err != nil || diff != "" {
			if err != nil {
				return "", fmt.Errorf("verifying: comparing the replayed baseline: %w", err)
			}
			return "", fmt.Errorf("verifying: the replayed baseline %s differs from the live database; to make them equal it would take:\n%s", f.Name(), diff)
		}
	}
	query := func(ctx context.Context, q string, args ...any) (backend.Rows, error) {
		return dev.SQL.QueryContext(ctx, q, args...)
	}
	if err := backend.CheckTable(ctx, query, d, qsschema.Table, migrations.SessionColumns...); err != nil {
		return "", fmt.Errorf("verifying: after replaying the directory: %w", err)
	}
	return how, nil
}

// tableDiff returns the statements that would turn got's tables into
// want's, "" when there are none.
func tableDiff(ctx context.Context, drv migrate.Driver, got, want *schema.Schema) (string, error) {
	g, w := *got, *want
	g.Name, g.Attrs = w.Name, w.Attrs
	changes, err := drv.SchemaDiff(&g, &w)
	if err != nil {
		return "", err
	}
	var tc []schema.Change
	for _, c := range changes {
		switch c.(type) {
		case *schema.AddTable, *schema.DropTable, *schema.ModifyTable, *schema.RenameTable:
			tc = append(tc, c)
		}
	}
	if len(tc) == 0 {
		return "", nil
	}
	plan, err := drv.PlanChanges(ctx, "diff", tc, noQualifier)
	if err != nil {
		return fmt.Sprintf("%d change(s)", len(tc)), nil
	}
	var b strings.Builder
	for _, c := range plan.Changes {
		b.WriteString("  " + c.Cmd + ";\n")
	}
	return b.String(), nil
}
