package django

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/qsessions/qsessions/internal/testutil"
)

// Real Django: Debian's /usr/bin/python3 with python3-django (3.2),
// python3-psycopg2 and python3-mysqldb. Tests that need it skip with a
// reason, or fail when QSESSIONS_TEST_REQUIRE names "django".
const (
	python       = "/usr/bin/python3"
	requireName  = "django"
	secretKey    = "new-secret-key-for-tests"
	oldSecretKey = "old-secret-key-now-a-fallback"
)

var (
	probeOnce sync.Once
	probeErr  error
	version   string
)

// requireDjango skips (or, when required, fails) t unless Debian's Python
// can import django and the database drivers.
func requireDjango(t testing.TB) {
	t.Helper()
	probeOnce.Do(func() {
		out, err := exec.Command(python, "-c", "import django, psycopg2, MySQLdb; print(django.get_version())").CombinedOutput()
		if err != nil {
			probeErr = fmt.Errorf("%s cannot import django, psycopg2, MySQLdb (apt-get install python3-django python3-psycopg2 python3-mysqldb): %v: %s",
				python, err, bytes.TrimSpace(out))
			return
		}
		version = strings.TrimSpace(string(out))
	})
	if probeErr != nil {
		testutil.Unavailable(t, requireName, probeErr.Error())
	}
}

// djangoConfig is what the script needs to reach db.
func djangoConfig(t testing.TB, db *testutil.DB) map[string]any {
	t.Helper()
	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	c := map[string]any{}
	switch db.Dialect {
	case "sqlite3":
		c["vendor"], c["name"] = "sqlite", u.Host+u.Path
	case "postgres":
		c["vendor"] = "postgresql"
		c["name"] = strings.TrimPrefix(u.Path, "/")
		c["search_path"] = u.Query().Get("search_path")
	case "mysql":
		c["vendor"] = "mysql"
		c["name"] = strings.TrimPrefix(u.Path, "/")
	}
	if db.Dialect != "sqlite3" {
		c["host"], c["port"], c["user"], c["password"] = u.Hostname(), u.Port(), u.User.Username(), pw
	}
	return map[string]any{"db": c, "secret": secretKey, "old_secret": oldSecretKey}
}

// runDjango runs the script in mode with cfg and returns its stdout.
func runDjango(t testing.TB, mode string, cfg map[string]any) []byte {
	t.Helper()
	js, _ := json.Marshal(cfg)
	cmd := exec.Command(python, filepath.Join("testdata", "djangosessions.py"), mode, string(js))
	if tz, ok := cfg["time_zone"].(string); ok {
		// Django with USE_TZ = False uses the process's local time.
		cmd.Env = append(os.Environ(), "TZ="+tz)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("django script %s: %v\n%s", mode, err, stderr.String())
	}
	return out
}

// djangoCase is one session the script made, with what Django decodes
// from it.
type djangoCase struct {
	Name        string          `json:"name"`
	Table       string          `json:"table"`
	Key         string          `json:"key"`
	SessionData string          `json:"session_data"`
	ExpireDate  string          `json:"expire_date"`
	Live        bool            `json:"live"`
	Error       *string         `json:"error"`
	Fallback    bool            `json:"fallback"`
	Values      json.RawMessage `json:"values"`
	User        string          `json:"user"`
	Format      string          `json:"format"`
	Alg         string          `json:"alg"`
	Compressed  *bool           `json:"compressed"`
	UserID      *string         `json:"user_id"`
	IP          *string         `json:"ip"`
	UserAgent   *string         `json:"user_agent"`
	CreatedAt   *string         `json:"created_at"`
	UpdatedAt   *string         `json:"updated_at"`
}

// tagged is the script's typed rendering of a Python value.
type tagged struct {
	T string          `json:"t"`
	V json.RawMessage `json:"v"`
}

// fromTagged turns the script's typed rendering into the Go value Decode
// must give: Python int → int64 (float64 beyond int64), float → float64.
func fromTagged(t testing.TB, raw json.RawMessage) any {
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
			out[i] = fromTagged(t, it)
		}
		return out
	case "dict":
		var items map[string]json.RawMessage
		if err := json.Unmarshal(tv.V, &items); err != nil {
			t.Fatal(err)
		}
		out := make(map[string]any, len(items))
		for k, it := range items {
			out[k] = fromTagged(t, it)
		}
		return out
	}
	t.Fatalf("unknown tag %q", tv.T)
	return nil
}

// sameValue is reflect.DeepEqual with NaN equal to NaN and -0 distinct
// from 0, and int kinds compared by type.
func sameValue(a, b any) bool {
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
			if !sameValue(a[i], b[i]) {
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
			if !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// diffValues names the first key whose value differs, for messages.
func diffValues(got, want map[string]any) string {
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			return fmt.Sprintf("missing key %q (want %#v)", k, w)
		}
		if !sameValue(g, w) {
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
