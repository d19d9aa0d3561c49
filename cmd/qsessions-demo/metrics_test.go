package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/internal/testutil"
)

// fetch GETs a URL outside the demo's handler (the metrics server).
func fetch(t *testing.T, u string) (int, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// sessionToken is the session cookie a response set.
func sessionToken(t *testing.T, r response) string {
	t.Helper()
	for _, c := range (&http.Response{Header: r.h}).Cookies() {
		if c.Value != "" {
			return c.Value
		}
	}
	t.Fatalf("no cookie set: %v", r.h)
	return ""
}

// TestMetricsAddr is the check the issue names: --metrics-addr, a
// sign-in, the sessions page, then qsessions_ samples on /metrics; and
// /healthz on both listeners, 503 once the session table is gone.
func TestMetricsAddr(t *testing.T) {
	ta := newTestApp(t, testutil.Open(t, testutil.SQLite), config{Metrics: metricsConfig{Addr: "127.0.0.1:0"}})
	maddr := ta.cfg.Metrics.addr
	if maddr == "" {
		t.Fatal("no metrics server")
	}
	c := ta.device(uaWindows)
	r := c.login("alice", ta.password("alice"))
	if r.code != http.StatusSeeOther {
		t.Fatalf("login: %d", r.code)
	}
	token := sessionToken(t, r)
	if r := c.get("/sessions"); r.code != http.StatusOK {
		t.Fatalf("GET /sessions: %d", r.code)
	}
	code, body := fetch(t, "http://"+maddr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	var samples []string
	for line := range strings.Lines(body) {
		if strings.HasPrefix(line, "qsessions_") {
			samples = append(samples, line)
		}
	}
	if len(samples) < 5 {
		t.Fatalf("%d qsessions_ samples:\n%s", len(samples), body)
	}
	for _, want := range []string{
		`qsessions_logins_total{`,
		`qsessions_loads_total{`,
		`qsessions_cache_result="hit",qsessions_load_result="found"`,
		`qsessions_backend_operation_duration_seconds_bucket{`,
		`qsessions_operation="create"`,
		`qsessions_cache_purge_pending{`,
		`db_system_name="sqlite"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%.3000s", want, body)
		}
	}
	if strings.Contains(body, token) || strings.Contains(body, backend.KeyOf(token)) {
		t.Errorf("/metrics holds the session token or key")
	}

	for _, u := range []string{ta.srv.URL + "/healthz", "http://" + maddr + "/healthz"} {
		code, body := fetch(t, u)
		var h health
		if err := json.Unmarshal([]byte(body), &h); err != nil || code != http.StatusOK || !h.Ready || h.Database != "ok" || h.Cache != "healthy" {
			t.Errorf("%s: %d %s", u, code, body)
		}
	}
	if _, err := ta.sql.Exec("DROP TABLE qsessions_session"); err != nil {
		t.Fatal(err)
	}
	code, body = fetch(t, ta.srv.URL+"/healthz")
	var h health
	if err := json.Unmarshal([]byte(body), &h); err != nil || code != http.StatusServiceUnavailable || h.Ready || h.Database != "error" || h.Error == "" {
		t.Errorf("/healthz without the session table: %d %s", code, body)
	}
}

// TestHealthzMemcachedDown: with memcached dead the demo is still ready,
// its cache degraded with the server's breaker open, and the metrics say
// so.
func TestHealthzMemcachedDown(t *testing.T) {
	proc := testutil.StartMemcached(t)
	ta := newTestApp(t, testutil.Open(t, testutil.SQLite), config{Memcache: proc.Addr, Metrics: metricsConfig{Addr: "127.0.0.1:0"}})
	c := ta.device(uaWindows)
	if r := c.login("alice", ta.password("alice")); r.code != http.StatusSeeOther {
		t.Fatalf("login: %d", r.code)
	}
	proc.Kill()
	for range 10 {
		if r := c.get("/sessions"); r.code != http.StatusOK {
			t.Fatalf("GET /sessions with memcached down: %d", r.code)
		}
	}
	code, body := fetch(t, ta.srv.URL+"/healthz")
	var h health
	if err := json.Unmarshal([]byte(body), &h); err != nil || code != http.StatusOK || !h.Ready || h.Cache != "degraded" ||
		len(h.OpenBreakers) != 1 || h.OpenBreakers[0] != proc.Addr {
		t.Errorf("/healthz with memcached down: %d %s", code, body)
	}
	_, body = fetch(t, "http://"+ta.cfg.Metrics.addr+"/metrics")
	host, port, _ := strings.Cut(proc.Addr, ":")
	for _, want := range []string{
		`qsessions_cache_breaker_open{db_system_name="sqlite",otel_scope_name="github.com/qsessions/qsessions/otel"`,
		`server_address="` + host + `",server_port="` + port + `"} 1`,
		`qsessions_cache_result="error",qsessions_load_result="found"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%.3000s", want, body)
		}
	}
	for _, name := range []string{"qsessions_cache_errors_total{", "qsessions_cache_fallbacks_total{"} {
		if i := strings.Index(body, name); i < 0 || strings.HasSuffix(strings.SplitN(body[i:], "\n", 2)[0], "} 0") {
			t.Errorf("%s is not counting:\n%s", name, body)
		}
	}
}

// TestTraceStdout: --trace stdout prints a span per backend operation,
// without tokens or keys.
func TestTraceStdout(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	ta := newTestApp(t, testutil.Open(t, testutil.SQLite), config{Metrics: metricsConfig{Trace: "stdout", traceOut: w}})
	c := ta.device(uaWindows)
	r := c.login("alice", ta.password("alice"))
	token := sessionToken(t, r)
	c.get("/sessions")
	mu.Lock()
	got := out.String()
	mu.Unlock()
	for _, want := range []string{`"Name": "qsessions.create"`, `"Name": "qsessions.load"`, `"Name": "qsessions.list"`,
		`"Key": "qsessions.cache.result"`, `"Key": "qsessions.session.id"`, `"service.name"`} {
		if !strings.Contains(got, want) {
			t.Errorf("trace output lacks %s:\n%.2000s", want, got)
		}
	}
	for _, secret := range []string{token, url.QueryEscape(token), backend.KeyOf(token)} {
		if strings.Contains(got, secret) {
			t.Errorf("trace output holds the token or the stored key")
		}
	}
	if _, err := newApp(context.Background(), config{DB: testutil.Open(t, testutil.SQLite).URL, Metrics: metricsConfig{Trace: "jaeger"}}); err == nil ||
		!strings.Contains(err.Error(), "--trace") {
		t.Errorf("--trace jaeger: %v", err)
	}
}
