package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/django"
	"github.com/qsessions/qsessions/django/djangotest"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/middleware"
	"github.com/qsessions/qsessions/migrations"
	"github.com/qsessions/qsessions/sqlstore"
)

// The environment variables the tests pass the Django keys in (not the
// defaults, which a developer's shell may hold).
const (
	testSecretEnv   = "QSESSIONS_TEST_DJANGO_SECRET_KEY"
	testFallbackEnv = "QSESSIONS_TEST_DJANGO_FALLBACK_KEYS"
)

var setKeysOnce sync.Once

// djangoKeysInEnv puts the test project's keys in the environment (the
// same values for every test, so parallel tests may share them).
func djangoKeysInEnv() {
	setKeysOnce.Do(func() {
		os.Setenv(testSecretEnv, djangotest.SecretKey)
		os.Setenv(testFallbackEnv, "unused-key,"+djangotest.OldSecretKey)
	})
}

// importCLI runs `qsessions import django` with the test keys and args.
func importCLI(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	djangoKeysInEnv()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"import", "django", "--secret-key-env", testSecretEnv, "--fallback-keys-env", testFallbackEnv}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// migratedGoDB returns a fresh database of dialect with qsessions'
// reference migrations applied (users and qsessions_session), as an app
// that adopted qsessions has it.
func migratedGoDB(t testing.TB, dialect string) *testutil.DB {
	t.Helper()
	db := testutil.Open(t, dialect)
	u, err := dburl.Open(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.Close()
	dir, err := migrations.Dir(db.Dialect)
	if err != nil {
		t.Fatal(err)
	}
	opts := migrations.Options{Schema: u.Schema, RevisionsSchema: u.Schema, URL: u.URL, LockTimeout: 2 * time.Minute}
	if _, err := migrations.Apply(context.Background(), db.SQL, db.Dialect, dir, opts); err != nil {
		t.Fatalf("migrating: %v", err)
	}
	return db
}

// addGoUser adds a user with the Django user's id to the users table.
func addGoUser(t *testing.T, db *testutil.DB, id, name string) {
	t.Helper()
	q := "INSERT INTO users (id, username, is_admin) VALUES (?, ?, false)"
	if db.Dialect == testutil.Postgres {
		q = "INSERT INTO users (id, username, is_admin) VALUES ($1, $2, false)"
	}
	n, _ := strconv.Atoi(id)
	if _, err := db.SQL.Exec(q, n, name); err != nil {
		t.Fatal(err)
	}
}

// figure returns the number pattern's (\d+) matches in out (each pattern
// matches one line of the report).
func figure(t testing.TB, out, pattern string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)` + pattern).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no line matches %q in the output:\n%s", pattern, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// The report's lines, as figure patterns.
const (
	figImported = `^imported (\d+) sessions?`
	figWould    = `^dry run, nothing written: would import (\d+) sessions?`
	figAlready  = `^already imported before, left as they are: (\d+)$`
	figExpired  = `^read \d+ live sessions? from \w+; left (\d+) expired rows?`
	figBad      = `^  bad signature +(\d+)  `
	figPickle   = `^  pickle +(\d+)  `
	figMissing  = `^  missing user +(\d+)  `
)

// TestImportDjangoCLI: on each database, Django 3.2 makes sessions of
// every kind in both of its tables; `qsessions import django` imports them
// into a Go database migrated with qsessions' migrations, skipping with
// reasons the tampered, pickled and missing-user ones (exit 1) and
// counting the expired ones; a dry run writes nothing, a re-run imports
// nothing; then the middleware, over sqlstore and over the reference ent
// store, opens each imported session with its Django cookie, values in
// their Go types.
func TestImportDjangoCLI(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			djangotest.Require(t)
			djangoDB := testutil.Open(t, d)
			made := djangotest.Create(t, djangotest.ConfigFor(t, djangoDB.Dialect, djangoDB.URL))
			goDB := migratedGoDB(t, d)
			alice, bob := made.Users["alice"], made.Users["bob"]
			addGoUser(t, goDB, alice, "alice")

			// Expected per table, with alice alone and then with bob.
			type want struct{ imported, missing, bad, pickle, expired int }
			count := func(table string, users ...string) (w want) {
				for _, c := range made.Cases {
					switch {
					case c.Table != table:
					case !c.Live:
						w.expired++
					case c.Error != nil && *c.Error == "pickle":
						w.pickle++
					case c.Error != nil:
						w.bad++
					case c.User != "" && !slices.Contains(users, c.User):
						w.missing++
					default:
						w.imported++
					}
				}
				return w
			}
			noKeys := func(out string) {
				t.Helper()
				for _, c := range made.Cases {
					if strings.Contains(out, c.Key) {
						t.Fatalf("the output holds the Django session_key of %s:\n%s", c.Name, out)
					}
				}
			}

			args := []string{"--from", djangoDB.URL, "--db", goDB.URL, "--batch", "5"}
			w := count(django.DjangoSession, alice)
			code, out, errOut := importCLI(t, append(args, "--dry-run")...)
			if code != 1 || figure(t, out, figWould) != w.imported {
				t.Fatalf("dry run: exit %d, want 1 and %d to import:\n%s%s", code, w.imported, out, errOut)
			}
			if n := sessCount(t, goDB, "1=1"); n != 0 {
				t.Fatalf("the dry run wrote %d sessions", n)
			}

			code, out, errOut = importCLI(t, append(args, "--verbose")...)
			if code != 1 || !strings.Contains(errOut, fmt.Sprintf("%d live Django sessions were not imported", w.bad+w.pickle+w.missing)) {
				t.Fatalf("first run: exit %d, want 1 naming the sessions not imported:\n%s%s", code, out, errOut)
			}
			noKeys(out + errOut)
			if figure(t, out, figImported) != w.imported || figure(t, out, figExpired) != w.expired ||
				figure(t, out, figBad) != w.bad || figure(t, out, figPickle) != w.pickle || figure(t, out, figMissing) != w.missing {
				t.Fatalf("first run counts, want %+v:\n%s", w, out)
			}
			// --verbose names each skipped session by its public id.
			for _, c := range made.Cases {
				id := backend.PublicID(backend.KeyOf(c.Key))
				skipped := c.Table == django.DjangoSession && c.Live && (c.Error != nil || c.User == bob)
				if strings.Contains(out, "skipped "+id+": ") != skipped {
					t.Fatalf("%s (%s): skipped line %v, want %v:\n%s", c.Name, id, !skipped, skipped, out)
				}
			}

			addGoUser(t, goDB, bob, "bob")
			code, out, _ = importCLI(t, args...)
			if code != 1 || figure(t, out, figImported) != w.missing || figure(t, out, figAlready) != w.imported ||
				strings.Contains(out, "missing user") || !strings.Contains(out, "(--verbose names each)") {
				t.Fatalf("second run (bob added): exit %d, want %d imported:\n%s", code, w.missing, out)
			}
			code, out, _ = importCLI(t, args...)
			if code != 1 || figure(t, out, figImported) != 0 || figure(t, out, figAlready) != w.imported+w.missing {
				t.Fatalf("third run: exit %d, want nothing imported:\n%s", code, out)
			}
			wq := count(django.QSessionsSession, alice, bob)
			code, out, _ = importCLI(t, append(args, "--table", django.QSessionsSession)...)
			if code != 1 || figure(t, out, figImported) != wq.imported || figure(t, out, figBad) != wq.bad {
				t.Fatalf("qsessions_session: exit %d, want %d imported, %d bad:\n%s", code, wq.imported, wq.bad, out)
			}

			// The Django cookies open the imported sessions through the
			// middleware, over sqlstore and over the reference ent store.
			ctx := context.Background()
			st, err := sqlstore.New(ctx, goDB.SQL, goDB.Dialect)
			if err != nil {
				t.Fatal(err)
			}
			client := ent.NewClient(ent.Driver(entsql.OpenDB(goDB.Dialect, goDB.SQL)))
			signer, _ := django.NewSigner(djangotest.SecretKey, djangotest.OldSecretKey)
			for name, b := range map[string]backend.Backend{"sqlstore": backend.NewDB(st), "ent": backend.NewDB(ent.NewSessionStore(client))} {
				m := qsessions.New(b)
				m.Legacy = &django.Tokens{}
				for _, c := range made.Cases {
					got := openWithCookie(t, m, c.Key)
					if !c.Live || c.Error != nil {
						if got.user != nil || len(got.values) != 0 {
							t.Fatalf("%s/%s: a session that was not imported opened: %v %v", name, c.Name, got.user, got.values)
						}
						continue
					}
					var wantUser any
					if c.User != "" {
						wantUser = c.User
						if name == "ent" {
							wantUser, _ = strconv.Atoi(c.User)
						}
					}
					if got.user != wantUser {
						t.Fatalf("%s/%s: user %#v, want %#v", name, c.Name, got.user, wantUser)
					}
					s, err := signer.Convert(django.Row{SessionKey: c.Key, SessionData: c.SessionData}, django.ConvertOptions{})
					if err != nil {
						t.Fatal(err)
					}
					if d := djangotest.Diff(got.values, s.Values); d != "" {
						t.Fatalf("%s/%s: values: %s", name, c.Name, d)
					}
					if c.Name == "login_sha256" && (got.int64 != 42 || got.str != "h\u00e9llo w\u00f6rld \u2713 \U0001F600" || !got.nested) {
						t.Fatalf("%s/%s: GetAs: %+v", name, c.Name, got)
					}
				}
			}
		})
	}
}

// opened is what a request with a cookie saw.
type opened struct {
	user   any
	values map[string]any
	int64  int64
	str    string
	nested bool
}

// openWithCookie serves one request with the session cookie token
// through the middleware over m.
func openWithCookie(t *testing.T, m *qsessions.Manager, token string) opened {
	t.Helper()
	var o opened
	h := middleware.New(m, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := qsessions.FromContext(r.Context())
		uid, err := s.User()
		if err != nil {
			t.Errorf("loading the session: %v", err)
		}
		o.user, o.values = uid, s.Values()
		o.int64, _ = qsessions.GetAs[int64](s, "int")
		o.str = s.GetString("str")
		nested, _ := qsessions.GetAs[map[string]any](s, "nested")
		_, o.nested = nested["a"].(map[string]any)
	}))
	req := httptest.NewRequest("GET", "https://app.example/", nil)
	req.AddCookie(&http.Cookie{Name: "sessionid", Value: token})
	h.ServeHTTP(httptest.NewRecorder(), req)
	return o
}

// TestImportDjangoCLIErrors: the flags and keys the command refuses, each
// with a message that says what to do.
func TestImportDjangoCLIErrors(t *testing.T) {
	djangoKeysInEnv()
	goDB := migratedGoDB(t, testutil.SQLite)
	other := testutil.Open(t, testutil.SQLite)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "django", "--db", goDB.URL}, "--from is required"},
		{[]string{"import", "django", "--from", other.URL}, "--db is required"},
		{[]string{"import", "django", "--from", other.URL, "--db", goDB.URL, "--table", "sessions"}, `--table "sessions"`},
		{[]string{"import", "django", "--from", other.URL, "--db", goDB.URL, "--batch", "0"}, "--batch 0"},
		{[]string{"import", "django", "--from", other.URL, "--db", goDB.URL, "--secret-key-env", "QSESSIONS_TEST_UNSET_VARIABLE"}, "QSESSIONS_TEST_UNSET_VARIABLE is empty or unset"},
		{[]string{"import", "django", "--from", goDB.URL, "--db", goDB.URL, "--table", "qsessions_session", "--secret-key-env", testSecretEnv}, "the same database"},
		{[]string{"import", "django", "--from", other.URL, "--db", other.URL, "--secret-key-env", testSecretEnv}, "qsessions_session"},
		{[]string{"import", "django", "--from", other.URL, "--db", goDB.URL, "--secret-key-env", testSecretEnv, "--django-time-zone", "Mars/Olympus"}, "--django-time-zone"},
		{[]string{"import", "django", "--from", other.URL, "--db", goDB.URL, "--secret-key-env", testSecretEnv}, "django_session"},
		{[]string{"import"}, "missing subcommand: django"},
	} {
		code, out, errOut := sessCLI(t, c.args...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want an error containing %q (stdout %q)", c.args, code, errOut, c.want, out)
		}
	}
}

// benchRows is how many live Django sessions BenchmarkImportDjango makes.
var benchRows = flag.Int("django.rows", 20000, "live Django sessions BenchmarkImportDjango imports (docs/django.md measures 1000000 on PostgreSQL)")

// BenchmarkImportDjango measures `qsessions import django` on each
// database: Django 3.2 signs -django.rows sessions of 10,000 users (every
// tenth anonymous) into a fresh django_session (COPY on PostgreSQL), the
// Go database is migrated with qsessions' migrations and holds the users;
// each iteration imports them all into an emptied qsessions_session and
// ledger, and reports rows/s. The setup is not timed.
func BenchmarkImportDjango(b *testing.B) {
	const users = 10000
	for _, d := range testutil.AllDialects {
		b.Run(d, func(b *testing.B) {
			djangotest.Require(b)
			djangoDB := testutil.Open(b, d)
			cfg := djangotest.ConfigFor(b, djangoDB.Dialect, djangoDB.URL).With("n", *benchRows).With("users", users).With("expired", *benchRows/100)
			djangotest.Run(b, "generate", cfg)
			goDB := migratedGoDB(b, d)
			for lo := 1; lo <= users; lo += 1000 {
				var q strings.Builder
				q.WriteString("INSERT INTO users (id, username, is_admin) VALUES ")
				for id := lo; id < lo+1000; id++ {
					if id > lo {
						q.WriteByte(',')
					}
					fmt.Fprintf(&q, "(%d, 'user%d', false)", id, id)
				}
				if _, err := goDB.SQL.Exec(q.String()); err != nil {
					b.Fatal(err)
				}
			}
			args := []string{"--from", djangoDB.URL, "--db", goDB.URL, "--quiet"}
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				for _, tbl := range []string{"qsessions_session", django.LedgerTable} {
					if _, err := goDB.SQL.Exec("DELETE FROM " + tbl); err != nil && tbl == "qsessions_session" {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				code, out, errOut := importCLI(b, args...)
				if code != 0 || figure(b, out, figImported) != *benchRows {
					b.Fatalf("exit %d:\n%s%s", code, out, errOut)
				}
			}
			b.ReportMetric(float64(*benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
