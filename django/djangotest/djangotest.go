// Package djangotest runs real Django to make sessions for tests: the
// tests of package django, of `qsessions import django` and of the demo's
// Django cookies, and an app's tests of its own move from Django.
//
// It runs the script djangosessions.py (embedded; see its docstring for
// the modes) with Debian's /usr/bin/python3 and its python3-django (3.2),
// python3-psycopg2 and python3-mysqldb. Tests that need them skip with a
// reason when they are missing, or fail when QSESSIONS_TEST_REQUIRE names
// "django", as CI sets it.
package djangotest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/qsessions/qsessions/internal/testutil"
)

// Script is djangosessions.py, the Django side of the tests.
//
//go:embed djangosessions.py
var Script string

// Python is the interpreter that has Debian's python3-django.
const Python = "/usr/bin/python3"

// RequireName is the name of Django in QSESSIONS_TEST_REQUIRE.
const RequireName = "django"

// The Django project's keys in the tests: SecretKey is SECRET_KEY,
// OldSecretKey a former one (the fallback_key cases are signed with it).
const (
	SecretKey    = "new-secret-key-for-tests"
	OldSecretKey = "old-secret-key-now-a-fallback"
)

var (
	probeOnce sync.Once
	probeErr  error
	version   string
)

// Require skips t (or, when QSESSIONS_TEST_REQUIRE names "django", fails
// it) unless Python can import django and the database drivers, and
// returns Django's version. The probe runs once per process.
func Require(t testing.TB) string {
	t.Helper()
	probeOnce.Do(func() {
		out, err := exec.Command(Python, "-c", "import django, psycopg2, MySQLdb; print(django.get_version())").CombinedOutput()
		if err != nil {
			probeErr = fmt.Errorf("%s cannot import django, psycopg2, MySQLdb (apt-get install python3-django python3-psycopg2 python3-mysqldb): %v: %s",
				Python, err, bytes.TrimSpace(out))
			return
		}
		version = strings.TrimSpace(string(out))
	})
	if probeErr != nil {
		testutil.Unavailable(t, RequireName, probeErr.Error())
	}
	return version
}

// Config is the script's configuration: the database, the keys, and what
// a mode needs besides ("items", "n", ...).
type Config map[string]any

// ConfigFor returns the Config of a Django project on the database at
// rawURL (an Atlas URL as internal/testutil gives them: sqlite://PATH,
// postgres://...?search_path=NS, mysql://.../DB) of dialect ("sqlite3",
// "postgres" or "mysql"), with SecretKey and OldSecretKey.
func ConfigFor(t testing.TB, dialect, rawURL string) Config {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	c := map[string]any{}
	switch dialect {
	case "sqlite3", "sqlite":
		c["vendor"], c["name"] = "sqlite", u.Host+u.Path
	case "postgres":
		c["vendor"] = "postgresql"
		c["name"] = strings.TrimPrefix(u.Path, "/")
		c["search_path"] = u.Query().Get("search_path")
	case "mysql":
		c["vendor"] = "mysql"
		c["name"] = strings.TrimPrefix(u.Path, "/")
	default:
		t.Fatalf("djangotest: unknown dialect %q", dialect)
	}
	if c["vendor"] != "sqlite" {
		c["host"], c["port"], c["user"], c["password"] = u.Hostname(), u.Port(), u.User.Username(), pw
	}
	return Config{"db": c, "secret": SecretKey, "old_secret": OldSecretKey}
}

// With returns a copy of c with key set to v.
func (c Config) With(key string, v any) Config {
	out := make(Config, len(c)+1)
	for k, x := range c {
		out[k] = x
	}
	out[key] = v
	return out
}

// WithItems returns a copy of c with the "items" of the load and touch
// modes: the table and key of each case.
func (c Config) WithItems(cases []Case) Config {
	var items []map[string]string
	for _, dc := range cases {
		items = append(items, map[string]string{"table": dc.Table, "key": dc.Key})
	}
	return c.With("items", items)
}

// Command returns the command that runs the script in mode with cfg, for
// a test that talks to it (stale-save reads a line on stdin). The
// environment has TZ set to cfg's "time_zone", if any: Django with
// USE_TZ = False uses the process's local time.
func Command(t testing.TB, mode string, cfg Config) *exec.Cmd {
	t.Helper()
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Python, "-c", Script, mode, string(js))
	if tz, ok := cfg["time_zone"].(string); ok {
		cmd.Env = append(os.Environ(), "TZ="+tz)
	}
	return cmd
}

// Run runs the script in mode with cfg and returns its standard output;
// a failure fails t with the script's standard error.
func Run(t testing.TB, mode string, cfg Config) []byte {
	t.Helper()
	cmd := Command(t, mode, cfg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("django script %s: %v\n%s", mode, err, stderr.String())
	}
	return out
}

// Case is one session the script's create mode made, with what Django
// itself decodes from it.
type Case struct {
	Name        string          `json:"name"`
	Table       string          `json:"table"`
	Key         string          `json:"key"`
	SessionData string          `json:"session_data"`
	ExpireDate  string          `json:"expire_date"`
	Live        bool            `json:"live"`
	Error       *string         `json:"error"` // "bad_signature" or "pickle"
	Fallback    bool            `json:"fallback"`
	Values      json.RawMessage `json:"values"` // Python values with their types: see Value
	User        string          `json:"user"`   // the signed-in user's pk, "" when anonymous
	Format      string          `json:"format"`
	Alg         string          `json:"alg"`
	Compressed  *bool           `json:"compressed"`
	UserID      *string         `json:"user_id"`
	IP          *string         `json:"ip"`
	UserAgent   *string         `json:"user_agent"`
	CreatedAt   *string         `json:"created_at"`
	UpdatedAt   *string         `json:"updated_at"`
}

// Made is what the create mode made.
type Made struct {
	Cases  []Case `json:"cases"`
	Django string `json:"django"`
	// Users maps the Django users' names to their primary keys.
	Users map[string]string `json:"users"`
}

// Create runs the create mode with cfg: Django makes its tables and
// sessions of every kind (see the script) and says what it made.
func Create(t testing.TB, cfg Config) Made {
	t.Helper()
	var m Made
	if err := json.Unmarshal(Run(t, "create", cfg), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// Case returns the case named name.
func (m Made) Case(t testing.TB, name string) Case {
	t.Helper()
	for _, c := range m.Cases {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no case %q", name)
	return Case{}
}

// WantValues returns the values Django decoded from the case, as package
// django must give them (see Value).
func (c Case) WantValues(t testing.TB) map[string]any {
	t.Helper()
	return Value(t, c.Values).(map[string]any)
}

// tagged is the script's typed rendering of a Python value.
type tagged struct {
	T string          `json:"t"`
	V json.RawMessage `json:"v"`
}

// Value turns the script's typed rendering of a Python value into the Go
// value package django decodes it to: None → nil, bool, str → string,
// int → int64 (float64 beyond int64), float → float64 (NaN and the
// infinities included), list → []any, dict → map[string]any.
func Value(t testing.TB, raw json.RawMessage) any {
	t.Helper()
	var tv tagged
	if err := json.Unmarshal(raw, &tv); err != nil {
		t.Fatalf("tagged value %s: %v", raw, err)
	}
	str := func() string {
		var s string
		if err := json.Unmarshal(tv.V, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	switch tv.T {
	case "null":
		return nil
	case "bool":
		return string(tv.V) == "true"
	case "str":
		return str()
	case "int":
		s := str()
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
		f, _ := strconv.ParseFloat(s, 64)
		return f
	case "float":
		switch s := str(); s {
		case "nan":
			return math.NaN()
		case "inf":
			return math.Inf(1)
		case "-inf":
			return math.Inf(-1)
		default:
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	case "list":
		var items []json.RawMessage
		if err := json.Unmarshal(tv.V, &items); err != nil {
			t.Fatal(err)
		}
		out := make([]any, len(items))
		for i, it := range items {
			out[i] = Value(t, it)
		}
		return out
	case "dict":
		var items map[string]json.RawMessage
		if err := json.Unmarshal(tv.V, &items); err != nil {
			t.Fatal(err)
		}
		out := make(map[string]any, len(items))
		for k, it := range items {
			out[k] = Value(t, it)
		}
		return out
	}
	t.Fatalf("unknown tag %q", tv.T)
	return nil
}

// Same is reflect.DeepEqual with NaN equal to NaN, -0 distinct from 0,
// and numbers compared with their Go types.
func Same(a, b any) bool {
	switch a := a.(type) {
	case float64:
		b, ok := b.(float64)
		if !ok {
			return false
		}
		if math.IsNaN(a) {
			return math.IsNaN(b)
		}
		return math.Float64bits(a) == math.Float64bits(b)
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !Same(a[i], b[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			w, ok := b[k]
			if !ok || !Same(v, w) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// Diff names the first key whose value differs (by Same), or returns ""
// when got and want hold the same values.
func Diff(got, want map[string]any) string {
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			return fmt.Sprintf("missing key %q (want %#v)", k, w)
		}
		if !Same(g, w) {
			return fmt.Sprintf("key %q: got %#v (%T), want %#v (%T)", k, g, g, w, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			return fmt.Sprintf("extra key %q = %#v", k, g)
		}
	}
	return ""
}
