package migrations_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ariga.io/atlas/schemahcl"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"

	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/migrations"
)

// hclProject is the part of the CLI's project file this repository uses.
type hclProject struct {
	Envs []*struct {
		Name      string `spec:"name,name"`
		URL       string `spec:"url"`
		Migration *struct {
			Dir string `spec:"dir"`
		} `spec:"migration"`
	} `spec:"env"`
}

// getenv is the CLI's getenv() for project files.
var getenv = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "key", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.StringVal(os.Getenv(args[0].AsString())), nil
	},
})

// atlas.hcl evaluates (with Atlas' own HCL engine) to one env per dialect,
// each with the right directory and a URL from the environment;
// Postgres gets search_path=public unless the URL names a schema.
func TestMigrationsAtlasHCL(t *testing.T) {
	for _, c := range []struct{ env, want string }{
		{"postgres://u:p@db:5432/app?sslmode=disable", "postgres://u:p@db:5432/app?sslmode=disable&search_path=public"},
		{"postgres://u@db/app", "postgres://u@db/app?search_path=public"},
		{"postgres://u@db/app?search_path=tenant1", "postgres://u@db/app?search_path=tenant1"},
	} {
		t.Setenv("QSESSIONS_POSTGRES_URL", c.env)
		t.Setenv("QSESSIONS_MYSQL_URL", "maria://root:pass@db:3306/app")
		t.Setenv("QSESSIONS_SQLITE_URL", "sqlite://app.db?_fk=1")
		var p hclProject
		if err := schemahcl.New(schemahcl.WithFunctions(map[string]function.Function{"getenv": getenv})).
			EvalFiles([]string{filepath.Join("..", "atlas.hcl")}, &p, nil); err != nil {
			t.Fatalf("evaluating atlas.hcl: %v", err)
		}
		got := map[string]string{}
		for _, e := range p.Envs {
			if e.Migration == nil {
				t.Fatalf("env %s has no migration block", e.Name)
			}
			db, err := dburl.Open(e.URL)
			if err != nil {
				t.Fatalf("env %s: url %q: %v", e.Name, e.URL, err)
			}
			db.Close()
			name, err := migrations.DirName(db.Dialect)
			if err != nil {
				t.Fatal(err)
			}
			if name != e.Name || e.Migration.Dir != "file://migrations/"+name {
				t.Errorf("env %s: dialect %s, dir %s", e.Name, db.Dialect, e.Migration.Dir)
			}
			if _, err := os.Stat(filepath.Join("..", strings.TrimPrefix(e.Migration.Dir, "file://"), "atlas.sum")); err != nil {
				t.Errorf("env %s: %v", e.Name, err)
			}
			if e.Name == "postgres" && db.Schema == "" {
				t.Errorf("env postgres: URL %q binds no schema", e.URL)
			}
			got[e.Name] = e.URL
		}
		if len(got) != 3 || got["postgres"] != c.want || got["mysql"] != "maria://root:pass@db:3306/app" || got["sqlite"] != "sqlite://app.db?_fk=1" {
			t.Fatalf("envs %v, want postgres %q", got, c.want)
		}
	}
}
