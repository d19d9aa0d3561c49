package gen

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ariga.io/atlas/sql/migrate"
	entschema "entgo.io/ent/dialect/sql/schema"
	"entgo.io/ent/schema/field"

	"github.com/qsessions/qsessions/dburl"
)

func TestMigrationsGenNextVersion(t *testing.T) {
	for in, want := range map[string]string{
		"20261125000000": "20261126000000",
		"20261125173000": "20261126000000",
		"20261231000000": "20270101000000",
		"7":              "8",
	} {
		got, err := NextVersion(in)
		if err != nil || got != want {
			t.Errorf("NextVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := NextVersion("v1"); err == nil {
		t.Error("NextVersion(v1) succeeded")
	}
}

func TestMigrationsGenEntDialect(t *testing.T) {
	for in, want := range map[string]string{"postgres": "postgres", "maria": "mysql", "mysql": "mysql", "sqlite": "sqlite3", "sqlite3": "sqlite3"} {
		if got, err := EntDialect(in); err != nil || got != want {
			t.Errorf("EntDialect(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := EntDialect("oracle"); err == nil {
		t.Error("EntDialect(oracle) succeeded")
	}
}

func table() *entschema.Table {
	cols := []*entschema.Column{{Name: "id", Type: field.TypeInt, Increment: true}}
	return &entschema.Table{Name: "t", Columns: cols, PrimaryKey: cols}
}

// SQLite needs no server: the whole cycle runs here.
func TestMigrationsGenSQLite(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	cfg := Config{Root: root, Tables: []*entschema.Table{table()}, Dialects: []string{"sqlite"}}
	res, err := Generate(ctx, cfg)
	if err != nil || len(res) != 1 || res[0].File != "20261125000000_initial.sql" {
		t.Fatalf("Generate: %+v, %v", res, err)
	}
	first, err := os.ReadFile(filepath.Join(root, "sqlite", res[0].File))
	if err != nil {
		t.Fatal(err)
	}
	if want := "-- Create \"t\" table\nCREATE TABLE `t` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT);\n"; string(first) != want {
		t.Fatalf("file:\n%s\nwant:\n%s", first, want)
	}
	if res, err = Generate(ctx, cfg); err != nil || res[0].File != "" {
		t.Fatalf("second Generate wrote %+v, %v", res, err)
	}
	cfg.Tables[0].Columns = append(cfg.Tables[0].Columns, &entschema.Column{Name: "note", Type: field.TypeString, Nullable: true})
	cfg.Name = "add_note"
	if res, err = Generate(ctx, cfg); err != nil || res[0].File != "20261126000000_add_note.sql" {
		t.Fatalf("Generate after a change: %+v, %v", res, err)
	}
	cfg.Version = "20261126000000"
	cfg.Tables[0].Columns = append(cfg.Tables[0].Columns, &entschema.Column{Name: "more", Type: field.TypeString, Nullable: true})
	if _, err = Generate(ctx, cfg); err == nil {
		t.Fatal("a version not after the latest was accepted")
	}
	// An edited file is refused before anything is generated.
	if err := os.WriteFile(filepath.Join(root, "sqlite", "20261125000000_initial.sql"), []byte("-- edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Version = ""
	if _, err = Generate(ctx, cfg); err == nil {
		t.Fatal("an edited directory was accepted")
	}
}

func TestMigrationsGenBadInput(t *testing.T) {
	ctx := context.Background()
	if _, err := Generate(ctx, Config{Root: t.TempDir()}); err == nil {
		t.Error("no tables accepted")
	}
	if _, err := Generate(ctx, Config{Root: t.TempDir(), Tables: []*entschema.Table{table()}, Dialects: []string{"oracle"}}); err == nil {
		t.Error("unknown dialect accepted")
	}
	if _, err := Generate(ctx, Config{Root: t.TempDir(), Tables: []*entschema.Table{table()}, Dialects: []string{"postgres"}, PostgresURL: "mysql://root@127.0.0.1:1/x"}); err == nil {
		t.Error("a mysql URL for the postgres dev server accepted")
	}
}

func TestMigrationsGenNextVersionSecond(t *testing.T) {
	for in, want := range map[string]string{
		"20261201000000": "20261201000001",
		"20261231235959": "20270101000000",
		"7":              "8",
	} {
		got, err := nextVersionSecond(in)
		if err != nil || got != want {
			t.Errorf("nextVersionSecond(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := nextVersionSecond("v1"); err == nil {
		t.Error("nextVersionSecond(v1) succeeded")
	}
}

// The verification of an adoption fails when the replayed baseline is not
// the live schema, and names the statements that would make them equal.
func TestMigrationsGenVerifyAdoption(t *testing.T) {
	ctx := context.Background()
	live, err := dburl.Open("sqlite://" + filepath.Join(t.TempDir(), "live.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	for _, q := range []string{
		"CREATE TABLE users (id integer NOT NULL PRIMARY KEY AUTOINCREMENT, name text NOT NULL)",
		"CREATE TABLE notes (id integer NOT NULL PRIMARY KEY AUTOINCREMENT, body text NOT NULL)",
	} {
		if _, err := live.SQL.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	path := t.TempDir()
	r, err := AdoptDatabase(ctx, live, path, AdoptOptions{Version: "1"})
	if err != nil || r.Verified == "" || r.AddSessions != "2_add_sessions.sql" {
		t.Fatalf("AdoptDatabase: %+v, %v", r, err)
	}
	// A baseline that forgets a table is caught.
	drv, err := atlasDriver(live.Dialect, live.SQL)
	if err != nil {
		t.Fatal(err)
	}
	want, err := drv.InspectSchema(ctx, "main", nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir())
	if err := os.WriteFile(filepath.Join(bad, "1_baseline.sql"), []byte("CREATE TABLE `users` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `name` text NOT NULL);\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := migrate.NewLocalDir(bad)
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
	_, err = verifyAdoption(ctx, live.Dialect, "", dir, want)
	if err == nil || !strings.Contains(err.Error(), "differs from the live database") || !strings.Contains(err.Error(), "CREATE TABLE `notes`") {
		t.Fatalf("verifying a baseline without a table: %v", err)
	}
	// A dev database of another dialect is refused.
	if _, err := verifyAdoption(ctx, live.Dialect, "postgres://root@127.0.0.1:1/x", dir, want); err == nil {
		t.Fatal("a Postgres dev database for SQLite was accepted")
	}
}
