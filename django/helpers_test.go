package django

import (
	"encoding/json"
	"testing"

	"github.com/qsessions/qsessions/django/djangotest"
	"github.com/qsessions/qsessions/internal/testutil"
)

// Real Django: Debian's /usr/bin/python3 with python3-django (3.2),
// python3-psycopg2 and python3-mysqldb, through package djangotest. Tests
// that need it skip with a reason, or fail when QSESSIONS_TEST_REQUIRE
// names "django".
const (
	secretKey    = djangotest.SecretKey
	oldSecretKey = djangotest.OldSecretKey
)

// djangoCase is one session the script made, with what Django decodes
// from it.
type djangoCase = djangotest.Case

// requireDjango skips (or, when required, fails) t unless Debian's Python
// can import django and the database drivers.
func requireDjango(t testing.TB) {
	t.Helper()
	djangotest.Require(t)
}

// djangoConfig is what the script needs to reach db.
func djangoConfig(t testing.TB, db *testutil.DB) djangotest.Config {
	t.Helper()
	return djangotest.ConfigFor(t, db.Dialect, db.URL)
}

// runDjango runs the script in mode with cfg and returns its stdout.
func runDjango(t testing.TB, mode string, cfg djangotest.Config) []byte {
	t.Helper()
	return djangotest.Run(t, mode, cfg)
}

// fromTagged turns the script's typed rendering into the Go value Decode
// must give.
func fromTagged(t testing.TB, raw json.RawMessage) any {
	t.Helper()
	return djangotest.Value(t, raw)
}

// diffValues names the first key whose value differs, for messages.
func diffValues(got, want map[string]any) string { return djangotest.Diff(got, want) }

// withItems returns cfg plus the script's "items" for cases.
func withItems(cfg djangotest.Config, cases []djangoCase) djangotest.Config {
	return cfg.WithItems(cases)
}
