package migrations_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docs/migrations.md quotes compiled code only: ExampleApply's body and
// uuidapp's generator program, verbatim, so its snippets stay true.
func TestMigrationsDocsQuoteCompiledCode(t *testing.T) {
	doc := read(t, "../docs/migrations.md")
	ex := read(t, "example_test.go")
	start := strings.Index(ex, "func ExampleApply() {\n")
	end := strings.Index(ex[start:], "\n}\n")
	if start < 0 || end < 0 {
		t.Fatal("ExampleApply not found in example_test.go")
	}
	var body []string
	for _, l := range strings.Split(ex[start+len("func ExampleApply() {\n"):start+end], "\n") {
		body = append(body, strings.TrimPrefix(l, "\t"))
	}
	if !strings.Contains(doc, strings.Join(body, "\n")) {
		t.Errorf("docs/migrations.md does not quote ExampleApply verbatim:\n%s", strings.Join(body, "\n"))
	}
	if gen := strings.TrimSpace(read(t, "../examples/uuidapp/migrations/gen.go")); !strings.Contains(doc, gen) {
		t.Errorf("docs/migrations.md does not quote examples/uuidapp/migrations/gen.go verbatim")
	}
	for _, s := range []string{"qsessions migrate adopt", "--baseline", "atlas migrate diff add_sessions", "--no-session-check", "SessionTableError", "## Adopting qsessions in an app that has a database", "## Upgrading qsessions"} {
		if !strings.Contains(doc, s) {
			t.Errorf("docs/migrations.md does not mention %q", s)
		}
	}
}

// The "Upgrading qsessions" section quotes files of the reference
// directories by name: each is in every directory, and one is a file after
// the initial one, the upgrade it describes.
func TestMigrationsDocsUpgradeFiles(t *testing.T) {
	doc := read(t, "../docs/migrations.md")
	_, section, ok := strings.Cut(doc, "\n## Upgrading qsessions\n")
	if !ok {
		t.Fatal(`docs/migrations.md has no section "Upgrading qsessions"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	quoted := regexp.MustCompile(`[0-9]{14}_[a-z0-9_]+\.sql`).FindAllString(section, -1)
	later := false
	for _, name := range quoted {
		for _, d := range []string{"postgres", "mysql", "sqlite"} {
			if !slices.Contains(fileNames(t, localDir(t, d)), name) {
				t.Errorf("the upgrade section quotes %s, which migrations/%s does not hold", name, d)
			}
		}
		later = later || name != initialFile
	}
	if !later {
		t.Errorf("the upgrade section quotes no file after %s: %v", initialFile, quoted)
	}
	for _, s := range []string{"go generate ./ent", "go generate ./migrations", "atlas migrate diff", "qsessions migrate apply"} {
		if !strings.Contains(section, s) {
			t.Errorf("the upgrade section does not mention %q", s)
		}
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
