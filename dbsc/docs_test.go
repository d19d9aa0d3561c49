package dbsc_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fence matches a fenced code block of docs/dbsc.md: its language and body.
var fence = regexp.MustCompile("(?ms)^ *```(\\w+)\\n(.*?)^ *```$")

// exampleBody returns the body of func name in src, one tab of
// indentation removed.
func exampleBody(t *testing.T, src, name string) string {
	t.Helper()
	start := strings.Index(src, "func "+name+"() {\n")
	if start < 0 {
		t.Fatalf("%s not found in example_test.go", name)
	}
	start += len("func " + name + "() {\n")
	end := strings.Index(src[start:], "\n}\n")
	var lines []string
	for _, l := range strings.Split(src[start:start+end], "\n") {
		lines = append(lines, strings.TrimPrefix(l, "\t"))
	}
	return strings.Join(lines, "\n")
}

// TestDocsQuoteCompiledCode: docs/dbsc.md's Go is compiled code, quoted
// verbatim (Example and ExampleNewCacheReplayGuard), and its SQL is
// quoted from the shipped migration files, so the page stays true.
func TestDocsQuoteCompiledCode(t *testing.T) {
	doc := readFile(t, "../docs/dbsc.md")
	ex := readFile(t, "example_test.go")
	bodies := []string{exampleBody(t, ex, "Example"), exampleBody(t, ex, "ExampleNewCacheReplayGuard")}
	for _, b := range bodies {
		if !strings.Contains(doc, b) {
			t.Errorf("docs/dbsc.md does not quote this example verbatim:\n%s", b)
		}
	}
	var migrations []string
	for _, pattern := range []string{"../migrations/*/*.sql", "../examples/uuidapp/migrations/*/*.sql"} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			migrations = append(migrations, readFile(t, f))
		}
	}
	if len(migrations) == 0 {
		t.Fatal("no migration files found")
	}
	blocks := fence.FindAllStringSubmatch(doc, -1)
	var goBlocks, sqlBlocks int
	for _, b := range blocks {
		lang, body := b[1], dedent(b[2])
		switch lang {
		case "go":
			goBlocks++
			found := false
			for _, ex := range bodies {
				found = found || strings.Contains(ex, strings.TrimSuffix(body, "\n"))
			}
			if !found {
				t.Errorf("a Go block of docs/dbsc.md is not quoted from example_test.go:\n%s", body)
			}
		case "sql":
			sqlBlocks++
			found := false
			for _, m := range migrations {
				found = found || strings.Contains(m, body)
			}
			if !found {
				t.Errorf("an SQL block of docs/dbsc.md is not in the migration files:\n%s", body)
			}
		}
	}
	if goBlocks != 2 || sqlBlocks != 2 {
		t.Errorf("%d Go and %d SQL blocks found; the fence pattern is off", goBlocks, sqlBlocks)
	}
	for _, s := range []string{"20261126000000_add_device_binding_and_events", "NewManagerStore", "BoundCookie",
		"--ignore-certificate-errors-spki-list", "continue\": false", "ServerRequested", "## Rolling it out", "## What it costs"} {
		if !strings.Contains(doc, s) {
			t.Errorf("docs/dbsc.md does not mention %q", s)
		}
	}
}

// dedent removes the indentation of a fenced block's first line from all
// of its lines (blocks inside list items are indented).
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	ind := lines[0][:len(lines[0])-len(strings.TrimLeft(lines[0], " "))]
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, ind)
	}
	return strings.Join(lines, "\n")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
