package entschema_test

// The DDL the mixins give, rendered offline with ent's schema.DDL for every
// supported database and compared with golden files under testdata/ddl.
// `go test ./entschema -update` rewrites them; review the diff.

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql/schema"
	"entgo.io/ent/schema/field"

	refmigrate "github.com/qsessions/qsessions/ent/migrate"
	"github.com/qsessions/qsessions/entschema"
	uuidmigrate "github.com/qsessions/qsessions/examples/uuidapp/ent/migrate"
)

var update = flag.Bool("update", false, "rewrite the golden DDL files under testdata/ddl")

// target is a database version as schema.DDL takes it: ent tells MariaDB
// from MySQL by "MariaDB" in the version string (as SHOW VARIABLES LIKE
// 'version' gives it, e.g. "10.11.6-MariaDB-0+deb12u1").
type target struct{ name, dialect, version string }

var targets = []target{
	{"postgres15", dialect.Postgres, "15.0.0"},
	{"mysql8.0", dialect.MySQL, "8.0.36"},
	{"mariadb10.11", dialect.MySQL, "10.11.0-MariaDB"},
	{"sqlite", dialect.SQLite, ""},
}

type schemaUnderTest struct {
	name   string
	tables []*schema.Table
	users  string // the user table
	// userIDType is the user_id column type per target name.
	userIDType map[string]string
}

var schemas = []schemaUnderTest{
	{
		name: "reference", tables: refmigrate.Tables, users: "users",
		userIDType: map[string]string{"postgres15": "bigint", "mysql8.0": "bigint", "mariadb10.11": "bigint", "sqlite": "integer"},
	},
	{
		// MariaDB has a native uuid type, MySQL 8 does not.
		name: "uuidapp", tables: uuidmigrate.Tables, users: "accounts",
		userIDType: map[string]string{"postgres15": "uuid", "mysql8.0": "char(36)", "mariadb10.11": "uuid", "sqlite": "uuid"},
	},
}

func ddl(t *testing.T, tg target, tables []*schema.Table) string {
	t.Helper()
	s, err := schema.DDL(context.Background(), schema.DDLArgs{Dialect: tg.dialect, Version: tg.version, Tables: tables})
	if err != nil {
		t.Fatalf("schema.DDL: %v", err)
	}
	// Atlas ends some comment lines with a space; editors strip it.
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	return strings.Join(lines, "\n")
}

func TestDDLGolden(t *testing.T) {
	for _, sc := range schemas {
		for _, tg := range targets {
			t.Run(sc.name+"/"+tg.name, func(t *testing.T) {
				got := ddl(t, tg, sc.tables)
				path := filepath.Join("testdata", "ddl", sc.name+"."+tg.name+".sql")
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run `go test ./entschema -update` to create it)", err)
				}
				if got != string(want) {
					t.Errorf("DDL differs from %s (review, then `go test ./entschema -update`):\n%s", path, lineDiff(string(want), got))
				}
			})
		}
	}
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if !g[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// sessionDDL returns the statements about the session table: its CREATE
// TABLE (one line per column or clause) and its CREATE INDEX lines.
func sessionDDL(t *testing.T, s, q string) (table []string, indexes []string) {
	t.Helper()
	name := q + entschema.Table + q
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if l == "CREATE TABLE "+name+" (" {
			for i++; i < len(lines) && !strings.HasPrefix(lines[i], ")"); i++ {
				table = append(table, strings.TrimSuffix(strings.TrimSpace(lines[i]), ","))
			}
		}
		if strings.HasPrefix(l, "CREATE INDEX ") && strings.Contains(l, " ON "+name+" ") {
			indexes = append(indexes, l)
		}
	}
	if table == nil {
		t.Fatalf("no CREATE TABLE %s in\n%s", name, s)
	}
	return table, indexes
}

func column(t *testing.T, table []string, q, name string) string {
	t.Helper()
	for _, l := range table {
		if strings.HasPrefix(l, q+name+q+" ") {
			return strings.TrimPrefix(l, q+name+q+" ")
		}
	}
	t.Fatalf("no column %s in %q", name, table)
	return ""
}

// TestDDLFacts states what the golden files must show, so a regenerated
// golden file cannot quietly lose it.
func TestDDLFacts(t *testing.T) {
	timeCols := []string{entschema.ColumnExpireDate, entschema.ColumnCreatedAt, entschema.ColumnUpdatedAt, entschema.ColumnLastActivity}
	for _, sc := range schemas {
		// Every time column of the session table is one of these four.
		for _, tb := range sc.tables {
			if tb.Name != entschema.Table {
				continue
			}
			var got []string
			for _, c := range tb.Columns {
				if c.Type == field.TypeTime {
					got = append(got, c.Name)
				}
			}
			if strings.Join(got, ",") != strings.Join(timeCols, ",") {
				t.Errorf("%s: time columns %v, want %v", sc.name, got, timeCols)
			}
		}
		for _, tg := range targets {
			t.Run(sc.name+"/"+tg.name, func(t *testing.T) {
				s := ddl(t, tg, sc.tables)
				q := "`"
				if tg.dialect == dialect.Postgres {
					q = `"`
				}
				table, indexes := sessionDDL(t, s, q)
				want := func(col, re string) {
					t.Helper()
					if got := column(t, table, q, col); !regexp.MustCompile(`^` + re + `$`).MatchString(got) {
						t.Errorf("column %s is %q, want %s", col, got, re)
					}
				}
				mysql := tg.dialect == dialect.MySQL
				switch tg.dialect {
				case dialect.Postgres:
					want(entschema.ColumnKey, `character varying\(64\) NOT NULL`)
					want(entschema.ColumnData, `bytea NOT NULL`)
					want(entschema.ColumnUserAgent, `character varying\(300\) NULL`)
					want(entschema.ColumnIP, `character varying\(45\) NULL`)
					for _, c := range timeCols {
						want(c, `timestamptz NOT NULL`)
					}
				case dialect.MySQL:
					want(entschema.ColumnKey, `varchar\(64\) NOT NULL`)
					want(entschema.ColumnData, `mediumblob NOT NULL`)
					want(entschema.ColumnUserAgent, `varchar\(300\) NULL`)
					want(entschema.ColumnIP, `varchar\(45\) NULL`)
					for _, c := range timeCols {
						want(c, `datetime\(6\) NOT NULL`)
					}
					for _, l := range table {
						if strings.Contains(strings.ToLower(l), "timestamp") {
							t.Errorf("a TIMESTAMP on MySQL: %q", l)
						}
					}
				case dialect.SQLite:
					// SQLite has no lengths: text is what ent declares.
					want(entschema.ColumnKey, `text NOT NULL`)
					want(entschema.ColumnData, `blob NOT NULL`)
					for _, c := range timeCols {
						want(c, `datetime NOT NULL`)
					}
				}
				want(entschema.ColumnUserID, regexp.QuoteMeta(sc.userIDType[tg.name])+` NULL`)

				if !contains(table, "PRIMARY KEY ("+q+entschema.ColumnKey+q+")") {
					t.Errorf("session_key is not the primary key: %q", table)
				}
				fk := "FOREIGN KEY (" + q + "user_id" + q + ") REFERENCES " + q + sc.users + q + " (" + q + "id" + q + ") ON DELETE CASCADE"
				if !containsPart(table, fk) {
					t.Errorf("no %s in %q", fk, table)
				}
				// Both named indexes, columns in this order.
				for _, ix := range []struct{ name, cols string }{
					{entschema.IndexUserExpire, q + "user_id" + q + ", " + q + "expire_date" + q},
					{entschema.IndexExpire, q + "expire_date" + q},
				} {
					var found bool
					if mysql {
						found = contains(table, "INDEX "+q+ix.name+q+" ("+ix.cols+")")
					} else {
						found = containsPart(indexes, "CREATE INDEX "+q+ix.name+q+" ON "+q+entschema.Table+q+" ("+ix.cols+");")
					}
					if !found {
						t.Errorf("no index %s (%s) in %q %q", ix.name, ix.cols, table, indexes)
					}
				}
				if n := len(indexes) + count(table, "INDEX "); n != 2 {
					t.Errorf("%d indexes on the session table, want 2", n)
				}
			})
		}
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

func containsPart(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func count(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}
