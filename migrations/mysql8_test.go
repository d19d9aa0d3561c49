package migrations_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"ariga.io/atlas/sql/migrate"
	entschema "entgo.io/ent/dialect/sql/schema"

	refmigrate "github.com/qsessions/qsessions/ent/migrate"
	uuidmigrate "github.com/qsessions/qsessions/examples/uuidapp/ent/migrate"
	uuidmigrations "github.com/qsessions/qsessions/examples/uuidapp/migrations"
)

// createTable is a CREATE TABLE statement taken apart for comparison,
// with the columns later ALTER TABLE ... ADD COLUMN statements append.
type createTable struct {
	columns []string // "`name` definition", normalised, in order
	keys    []string // primary key, indexes and constraints, normalised, sorted
	options string   // table options after the closing parenthesis
	added   []string // names of the columns added by ALTER TABLE, in order
}

var (
	spaces   = regexp.MustCompile(`\s+`)
	onUpdate = regexp.MustCompile(` on update [a-z ]+?( on delete|$)`)
)

// normalise makes equivalent MySQL spellings equal: booleans as 0/1, a
// foreign key's unspecified ON UPDATE/ON DELETE as InnoDB's RESTRICT (NO
// ACTION is the same there).
func normalise(s string) string {
	s = strings.ToLower(spaces.ReplaceAllString(strings.TrimSpace(s), " "))
	s = strings.ReplaceAll(s, "default false", "default 0")
	s = strings.ReplaceAll(s, "default true", "default 1")
	s = strings.ReplaceAll(s, "no action", "restrict")
	if strings.Contains(s, "foreign key") {
		if !strings.Contains(s, "on update") {
			s += " on update restrict"
		}
		if !strings.Contains(s, "on delete") {
			s += " on delete restrict"
		}
		// Order the actions.
		upd := onUpdate.FindString(s)
		s = strings.Replace(s, strings.TrimSuffix(upd, " on delete"), "", 1) + strings.TrimSuffix(upd, " on delete")
	}
	return s
}

// splitTop splits s at the commas outside parentheses.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// parseCreateTables parses the CREATE TABLE statements of a MySQL script
// and replays its ALTER TABLE ... ADD COLUMN statements on them (a column
// added without FIRST/AFTER goes last, as on the server). It fails on any
// other statement, or another ALTER, so those get a test of their own.
func parseCreateTables(t *testing.T, stmts []string) map[string]createTable {
	t.Helper()
	out := map[string]createTable{}
	for _, s := range stmts {
		s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), ";"))
		if rest, ok := strings.CutPrefix(s, "ALTER TABLE `"); ok {
			name, rest, _ := strings.Cut(rest, "`")
			ct, ok := out[name]
			if !ok {
				t.Fatalf("ALTER TABLE of table %s before its CREATE TABLE: %s", name, s)
			}
			for _, clause := range splitTop(rest) {
				col, ok := strings.CutPrefix(strings.TrimSpace(clause), "ADD COLUMN `")
				if !ok || strings.Contains(strings.ToLower(col), " after `") || strings.HasSuffix(strings.ToLower(col), " first") {
					t.Fatalf("unexpected ALTER TABLE clause in a MySQL script: %q of %s", clause, s)
				}
				colName, _, _ := strings.Cut(col, "`")
				ct.columns = append(ct.columns, normalise("`"+col))
				ct.added = append(ct.added, colName)
			}
			out[name] = ct
			continue
		}
		if !strings.HasPrefix(s, "CREATE TABLE `") {
			t.Fatalf("unexpected statement in a MySQL script: %s", s)
		}
		rest := strings.TrimPrefix(s, "CREATE TABLE `")
		name, rest, _ := strings.Cut(rest, "`")
		rest = strings.TrimSpace(rest)
		if !strings.HasPrefix(rest, "(") {
			t.Fatalf("cannot parse %s", s)
		}
		depth, end := 0, -1
		var items []string
		start := 1
		for i, r := range rest {
			switch r {
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 {
					end = i
				}
			case ',':
				if depth == 1 {
					items = append(items, rest[start:i])
					start = i + 1
				}
			}
			if end >= 0 {
				items = append(items, rest[start:end])
				break
			}
		}
		ct := createTable{options: normalise(rest[end+1:])}
		for _, it := range items {
			it = normalise(it)
			if strings.HasPrefix(it, "`") {
				ct.columns = append(ct.columns, it)
			} else {
				ct.keys = append(ct.keys, it)
			}
		}
		slices.Sort(ct.keys)
		out[name] = ct
	}
	return out
}

func mysqlDirTables(t *testing.T, dir migrate.Dir) map[string]createTable {
	t.Helper()
	var all []string
	for _, f := range files(t, dir) {
		all = append(all, stmts(t, f)...)
	}
	return parseCreateTables(t, all)
}

func mysql8Tables(t *testing.T, tables []*entschema.Table) map[string]createTable {
	t.Helper()
	ddl, err := entschema.DDL(ctx, entschema.DDLArgs{Dialect: "mysql", Version: "8.0", Tables: tables})
	if err != nil {
		t.Fatal(err)
	}
	s, err := migrate.NewLocalFile("mysql8.sql", []byte(ddl)).StmtDecls()
	if err != nil {
		t.Fatal(err)
	}
	texts := make([]string, len(s))
	for i := range s {
		texts[i] = s[i].Text
	}
	return parseCreateTables(t, texts)
}

// addedLast reorders want's columns (ent's order, a table created at once)
// the way got's table was built: the columns got's ALTER TABLE statements
// added move to the end, in the order they were added. Nothing else moves,
// so every other column keeps its place in the comparison.
func addedLast(got, want createTable) createTable {
	if len(got.added) == 0 {
		return want
	}
	name := func(col string) string { n, _, _ := strings.Cut(strings.TrimPrefix(col, "`"), "`"); return n }
	var kept []string
	byName := map[string]string{}
	for _, c := range want.columns {
		if slices.Contains(got.added, name(c)) {
			byName[name(c)] = c
			continue
		}
		kept = append(kept, c)
	}
	for _, n := range got.added {
		c, ok := byName[n]
		if !ok {
			c = "(no column " + n + " in the MySQL 8 DDL)"
		}
		kept = append(kept, c)
	}
	want.columns = kept
	return want
}

// The mysql directory, generated against MariaDB 10.11, also holds for
// MySQL 8: the tables its files build (CREATE TABLE statements and the
// columns later files add) match ent's DDL for MySQL 8.0 column by column,
// index by index. Offline: no server needed.
func TestMigrationsMySQL8(t *testing.T) {
	got := mysqlDirTables(t, refDir(t, "mysql"))
	want := mysql8Tables(t, refmigrate.Tables)
	if len(got) != len(want) {
		t.Fatalf("tables %d, MySQL 8 DDL has %d", len(got), len(want))
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("table %s missing from the mysql directory", name)
			continue
		}
		w = addedLast(g, w)
		if !slices.Equal(g.columns, w.columns) {
			t.Errorf("table %s columns:\n dir:     %q\n MySQL 8: %q", name, g.columns, w.columns)
		}
		if !slices.Equal(g.keys, w.keys) {
			t.Errorf("table %s keys:\n dir:     %q\n MySQL 8: %q", name, g.keys, w.keys)
		}
		if g.options != w.options {
			t.Errorf("table %s options: dir %q, MySQL 8 %q", name, g.options, w.options)
		}
	}
}

// What the README says about UUID user IDs: the same comparison for the
// uuidapp example differs exactly in the UUID columns, which are MariaDB's
// native uuid in its (MariaDB-generated) directory and char(36) on MySQL 8.
func TestMigrationsMySQL8UUIDDiffers(t *testing.T) {
	dir, err := uuidmigrations.Dir("mysql")
	if err != nil {
		t.Fatal(err)
	}
	got := mysqlDirTables(t, dir)
	want := mysql8Tables(t, uuidmigrate.Tables)
	var diffs []string
	if len(got) != len(want) {
		t.Fatalf("tables %d, MySQL 8 DDL has %d", len(got), len(want))
	}
	for name, w := range want {
		g := got[name]
		w = addedLast(g, w)
		if len(g.columns) != len(w.columns) || !slices.Equal(g.keys, w.keys) {
			t.Fatalf("table %s: structure differs:\n dir:     %q %q\n MySQL 8: %q %q", name, g.columns, g.keys, w.columns, w.keys)
		}
		for i := range w.columns {
			if g.columns[i] != w.columns[i] {
				diffs = append(diffs, name+": "+g.columns[i]+" | "+w.columns[i])
			}
		}
	}
	slices.Sort(diffs)
	wantDiffs := []string{
		"accounts: `id` uuid not null | `id` char(36) not null",
		"qsessions_event: `user_id` uuid not null | `user_id` char(36) not null",
		"qsessions_session: `user_id` uuid null | `user_id` char(36) null",
	}
	if !slices.Equal(diffs, wantDiffs) {
		t.Fatalf("MariaDB directory vs MySQL 8 DDL differ in\n %q\nwant\n %q", diffs, wantDiffs)
	}
}
