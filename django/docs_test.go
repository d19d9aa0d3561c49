package django

import (
	"os"
	"strings"
	"testing"
)

// TestDjangoDocsQuoteCompiledCode: every Go snippet of docs/django.md is
// the body of an example in example_test.go, quoted verbatim (at the left
// margin or indented as a list item's block), so the snippets compile; and
// the page keeps its settings map and what it promises to explain.
func TestDjangoDocsQuoteCompiledCode(t *testing.T) {
	doc := readFile(t, "../docs/django.md")
	ex := readFile(t, "example_test.go")
	quoted := 0
	for _, name := range []string{"ExampleImport", "ExampleTokens", "Example_settings"} {
		head := "func " + name + "() {\n"
		start := strings.Index(ex, head)
		if start < 0 {
			t.Fatalf("%s not found in example_test.go", name)
		}
		end := strings.Index(ex[start:], "\n}\n")
		lines := strings.Split(ex[start+len(head):start+end], "\n")
		flush, indented := make([]string, len(lines)), make([]string, len(lines))
		for i, l := range lines {
			flush[i] = strings.TrimPrefix(l, "\t")
			if flush[i] != "" {
				indented[i] = "   " + flush[i] // a numbered list item's block
			}
		}
		if !strings.Contains(doc, strings.Join(flush, "\n")) && !strings.Contains(doc, strings.Join(indented, "\n")) {
			t.Errorf("docs/django.md does not quote %s verbatim:\n%s", name, strings.Join(flush, "\n"))
		}
		quoted++
	}
	// Every Go block of the page is one of those quotes.
	if n := strings.Count(doc, "```go"); n != quoted {
		t.Errorf("docs/django.md has %d Go blocks, %d of them quoted from examples", n, quoted)
	}
	for _, s := range []string{
		// The settings map.
		"`SESSION_COOKIE_AGE` | `Manager.Lifetime`", "`SESSION_COOKIE_NAME` | `middleware.Cookie.Name`",
		"`SESSION_ENGINE = \"django.contrib.sessions.backends.db\"`", "`backend.NewDB(store)`", "`backend.NewCachedDB(store, cache, opts)`",
		"`manage.py clearsessions` | `qsessions clear-expired", "`manage.py download_geoip_db` | `qsessions geoip download",
		"the admin (django-qsessions' session admin) | package `pages`", "`SESSION_COOKIE_SECURE`", "`SESSION_COOKIE_HTTPONLY`",
		"`SESSION_COOKIE_SAMESITE` | `middleware.Cookie.SameSite`", "`SESSION_COOKIE_DOMAIN`",
		"`SESSION_EXPIRE_AT_BROWSER_CLOSE` | `middleware.Cookie.BrowserSession`", "`SESSION_SAVE_EVERY_REQUEST` | ", "`Manager.ActivityInterval`",
		// What the keys become, the recipe, the ledger, the limits, the rate.
		"`_auth_user_id` becomes", "`_auth_user_hash` is dropped", "`_auth_user_backend`", "## The cut-over, step by step",
		"**Turn the fallback off**", LedgerTable, "### The ledger", "**No `_auth_user_hash` check.**", "`signed_cookies`",
		"## Import rate", "qsessions import django --from",
	} {
		if !strings.Contains(doc, s) {
			t.Errorf("docs/django.md does not mention %q", s)
		}
	}
	l, _ := NewLedger("postgres")
	m, _ := NewLedger("mysql")
	s, _ := NewLedger("sqlite3")
	for _, ddl := range []string{l.DDL(), m.DDL(), s.DDL()} {
		if !strings.Contains(doc, ddl) {
			t.Errorf("docs/django.md does not give the ledger's DDL %q", ddl)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
