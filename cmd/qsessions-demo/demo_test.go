package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/pages"
)

const (
	uaWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	uaIPhone  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
	uaAndroid = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Mobile Safari/537.36"
)

// testApp is the demo on a fresh database behind an httptest server.
type testApp struct {
	*app
	t   testing.TB
	srv *httptest.Server
	sql *sql.DB
}

func newTestApp(t testing.TB, db *testutil.DB, cfg config) *testApp {
	t.Helper()
	cfg.DB = db.URL
	a, err := newApp(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	ta := &testApp{app: a, t: t, sql: db.SQL}
	ta.srv = httptest.NewServer(a.Handler())
	t.Cleanup(ta.srv.Close)
	return ta
}

func (ta *testApp) password(name string) string {
	for _, u := range ta.users {
		if u.Name == name {
			return u.Password
		}
	}
	ta.t.Fatalf("no demo user %s", name)
	return ""
}

func (ta *testApp) rows() int {
	ta.t.Helper()
	var n int
	if err := ta.sql.QueryRow("SELECT count(*) FROM qsessions_session").Scan(&n); err != nil {
		ta.t.Fatal(err)
	}
	return n
}

// client is a cookie-keeping HTTP client of one "device" that does not
// follow redirects.
type client struct {
	t   testing.TB
	ta  *testApp
	c   *http.Client
	ua  string
	hdr map[string]string
}

func (ta *testApp) device(ua string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: ta.t, ta: ta, ua: ua, hdr: map[string]string{}, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type response struct {
	code int
	loc  string
	body string
	h    http.Header
}

func (c *client) do(method, path string, form url.Values, hdr map[string]string) response {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.ta.srv.URL+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", c.ua)
	for k, v := range c.hdr {
		req.Header.Set(k, v)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header.Get("Location"), string(b), res.Header}
}

func (c *client) get(path string) response { c.t.Helper(); return c.do("GET", path, nil, nil) }

func (c *client) login(name, pass string) response {
	c.t.Helper()
	return c.do("POST", "/login", url.Values{"username": {name}, "password": {pass}}, nil)
}

func TestStartupPrintsUsers(t *testing.T) {
	db := testutil.Open(t, testutil.SQLite)
	var mu sync.Mutex
	var out bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	started := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
	for round := range 2 { // the second start finds the migrations applied and resets the passwords
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- serve(ctx, config{Addr: "127.0.0.1:0", DB: db.URL}, w) }()
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(started(), "qsessions demo on http://") <= round && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("round %d: serve: %v", round, err)
		}
	}
	re := regexp.MustCompile(`(?m)^user: (\w+)  password: (\S+)$`)
	m := re.FindAllStringSubmatch(out.String(), -1)
	admins := regexp.MustCompile(`(?m)^admin: (\w+)$`).FindAllStringSubmatch(out.String(), -1)
	if len(m) != 4 || m[0][1] != "alice" || m[1][1] != "bob" || m[0][2] == m[2][2] || len(admins) != 2 || admins[0][1] != "alice" {
		t.Fatalf("start-up output:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "cached_db on the in-process cache") {
		t.Errorf("start-up output does not name the cache:\n%s", out.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestStartupErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := newApp(ctx, config{DB: "redis://localhost"}); err == nil || !strings.Contains(err.Error(), "unsupported URL scheme") {
		t.Errorf("bad scheme: %v", err)
	}
	db := testutil.Open(t, testutil.SQLite)
	if _, err := db.SQL.Exec("CREATE TABLE unrelated (id integer)"); err != nil {
		t.Fatal(err)
	}
	if _, err := newApp(ctx, config{DB: db.URL}); err == nil || !strings.Contains(err.Error(), "delete the SQLite file") {
		t.Errorf("dirty database: %v", err)
	}
	db2 := testutil.Open(t, testutil.SQLite)
	if _, err := newApp(ctx, config{DB: db2.URL, TrustedProxies: "10.0.0.1"}); err == nil || !strings.Contains(err.Error(), "--trusted-proxies") {
		t.Errorf("bad CIDR: %v", err)
	}
	if _, err := newApp(ctx, config{DB: db2.URL, GeoIPDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "--geoip-dir") {
		t.Errorf("empty GeoIP dir: %v", err)
	}
}

func TestLoginLogout(t *testing.T) {
	ta := newTestApp(t, testutil.Open(t, testutil.SQLite), config{})
	c := ta.device(uaWindows)

	r := c.get("/login")
	if r.code != http.StatusOK || !strings.Contains(r.body, `name="username"`) || r.h.Get("Set-Cookie") != "" {
		t.Fatalf("GET /login: %d", r.code)
	}
	for _, tc := range []struct {
		name, pass string
		code       int
		msg        string
	}{
		{"alice", "wrong", http.StatusUnauthorized, "Wrong username or password."},
		{"nobody", "wrong", http.StatusUnauthorized, "Wrong username or password."},
		{"alice", "", http.StatusBadRequest, "Enter your username and password."},
	} {
		r := c.login(tc.name, tc.pass)
		if r.code != tc.code || !strings.Contains(r.body, tc.msg) || r.h.Get("Set-Cookie") != "" {
			t.Errorf("login %s/%q: %d, want %d with %q", tc.name, tc.pass, r.code, tc.code, tc.msg)
		}
		if tc.name == "alice" && !strings.Contains(r.body, `value="alice"`) {
			t.Errorf("the form forgot the username")
		}
	}
	if n := ta.rows(); n != 0 {
		t.Fatalf("failed logins wrote %d rows", n)
	}
	// Cross-site login attempts are refused (login CSRF).
	if r := c.do("POST", "/login", url.Values{"username": {"alice"}, "password": {ta.password("alice")}}, map[string]string{"Sec-Fetch-Site": "cross-site"}); r.code != http.StatusForbidden {
		t.Fatalf("cross-site login: %d", r.code)
	}
	// next is honoured when it is a local path.
	r = c.do("POST", "/login", url.Values{"username": {"alice"}, "password": {ta.password("alice")}, "next": {"//evil.example/x"}}, nil)
	if r.code != http.StatusSeeOther || r.loc != "/" {
		t.Fatalf("login with a foreign next: %d to %q", r.code, r.loc)
	}
	if n := ta.rows(); n != 1 {
		t.Fatalf("%d rows after one login", n)
	}
	r = c.get("/")
	if r.code != http.StatusOK || !strings.Contains(r.body, "Hello, alice") || !strings.Contains(r.body, "as an administrator") ||
		!strings.Contains(r.body, "login_method") || !strings.Contains(r.body, "Chrome on Windows") {
		t.Fatalf("GET /: %d\n%s", r.code, r.body)
	}
	if r := c.get("/login"); r.code != http.StatusSeeOther || r.loc != "/" {
		t.Errorf("GET /login when signed in: %d %q", r.code, r.loc)
	}
	r = c.do("POST", "/logout", nil, nil)
	if r.code != http.StatusSeeOther || r.loc != "/login?done=out" || ta.rows() != 0 {
		t.Fatalf("logout: %d %q rows=%d", r.code, r.loc, ta.rows())
	}
	if r := c.get("/login?done=out"); !strings.Contains(r.body, "You are signed out.") {
		t.Error("no sign-out confirmation")
	}
	// After signing in from the login redirect, the user lands where they
	// were going.
	r = c.get("/sessions")
	if r.code != http.StatusSeeOther || r.loc != "/login?next=%2Fsessions" {
		t.Fatalf("anonymous /sessions: %d %q", r.code, r.loc)
	}
	r = c.do("POST", "/login", url.Values{"username": {"bob"}, "password": {ta.password("bob")}, "next": {"/sessions"}}, nil)
	if r.code != http.StatusSeeOther || r.loc != "/sessions" {
		t.Fatalf("login with next: %d %q", r.code, r.loc)
	}
}

func TestAnonymousWritesNothing(t *testing.T) {
	ta := newTestApp(t, testutil.Open(t, testutil.SQLite), config{})
	c := ta.device(uaWindows)
	for _, path := range []string{"/", "/login", "/sessions", "/api/sessions", "/admin/sessions", "/admin/sessions/0123456789abcdef", "/nope"} {
		r := c.get(path)
		if r.code >= 500 || r.h.Get("Set-Cookie") != "" {
			t.Errorf("GET %s: %d, cookie %q", path, r.code, r.h.Get("Set-Cookie"))
		}
		if path != "/login" && path != "/nope" && r.code != http.StatusSeeOther && r.code != http.StatusUnauthorized {
			t.Errorf("GET %s anonymously: %d, want a redirect to the login page (401 for the API)", path, r.code)
		}
	}
	for _, path := range []string{"/logout", "/sessions/revoke-others", "/sessions/0123456789abcdef/revoke", "/admin/sessions/0123456789abcdef/revoke"} {
		// Signing out deletes the (absent) cookie; nothing sets one.
		if r := c.do("POST", path, nil, nil); r.code >= 500 || (r.h.Get("Set-Cookie") != "" && !strings.Contains(r.h.Get("Set-Cookie"), "Max-Age=0")) {
			t.Errorf("POST %s: %d, cookie %q", path, r.code, r.h.Get("Set-Cookie"))
		}
	}
	if n := ta.rows(); n != 0 {
		t.Fatalf("anonymous visits wrote %d rows", n)
	}
}

func TestDemoPages(t *testing.T) {
	ta := newTestApp(t, testutil.Open(t, testutil.SQLite), config{})
	alice, alice2, bob := ta.device(uaWindows), ta.device(uaIPhone), ta.device(uaAndroid)
	for _, x := range []struct {
		c    *client
		name string
	}{{alice, "alice"}, {alice2, "alice"}, {bob, "bob"}} {
		if r := x.c.login(x.name, ta.password(x.name)); r.code != http.StatusSeeOther {
			t.Fatalf("login %s: %d", x.name, r.code)
		}
	}
	var api pages.APIResponse
	r := alice.get("/api/sessions")
	if err := json.Unmarshal([]byte(r.body), &api); err != nil || len(api.Sessions) != 2 {
		t.Fatalf("api: %v %s", err, r.body)
	}
	var bobAPI pages.APIResponse
	_ = json.Unmarshal([]byte(bob.get("/api/sessions").body), &bobAPI)
	bobID := bobAPI.Sessions[0].ID

	// A foreign id: 404 and nothing revoked.
	if r := alice.do("POST", "/sessions/"+bobID+"/revoke", nil, nil); r.code != http.StatusNotFound {
		t.Fatalf("revoking bob's session as alice: %d", r.code)
	}
	if r := bob.get("/sessions"); r.code != http.StatusOK {
		t.Fatalf("bob lost his session: %d", r.code)
	}
	// Admin pages: 403 for bob, 200 for alice, with both users' sessions.
	if r := bob.get("/admin/sessions"); r.code != http.StatusForbidden {
		t.Fatalf("bob on the admin page: %d", r.code)
	}
	r = alice.get("/admin/sessions")
	if r.code != http.StatusOK || !strings.Contains(r.body, "Showing 1–3 of 3 sessions") || !strings.Contains(r.body, "<td>bob</td>") {
		t.Fatalf("admin list: %d\n%s", r.code, r.body)
	}
	r = alice.get("/admin/sessions/" + bobID)
	if r.code != http.StatusOK || !strings.Contains(r.body, "login_method") || !strings.Contains(r.body, "K / Android 10 / Chrome Mobile 118.0.0.0") {
		t.Fatalf("admin detail: %d\n%s", r.code, r.body)
	}
	// Admin revoke ends bob's session; bob is sent to the login page.
	if r := alice.do("POST", "/admin/sessions/"+bobID+"/revoke", nil, nil); r.code != http.StatusSeeOther {
		t.Fatalf("admin revoke: %d", r.code)
	}
	if r := bob.get("/sessions"); r.code != http.StatusSeeOther || !strings.HasPrefix(r.loc, "/login") {
		t.Fatalf("bob after the admin revoke: %d %q", r.code, r.loc)
	}
	// Revoke others through the demo.
	r = alice.do("POST", "/sessions/revoke-others", nil, nil)
	if r.code != http.StatusSeeOther || r.loc != "/sessions?done=others&n=1" {
		t.Fatalf("revoke-others: %d %q", r.code, r.loc)
	}
	if r := alice2.get("/"); r.code != http.StatusSeeOther {
		t.Fatalf("alice's other device still signed in: %d", r.code)
	}
}

// TestLoginRefusesBadText: a form value with NUL or invalid UTF-8 (which
// PostgreSQL refuses with an error) is answered 400, never 500, on every
// database.
func TestLoginRefusesBadText(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		ta := newTestApp(t, db, config{})
		c := ta.device(uaWindows)
		for _, name := range []string{"a\x00b", "\xff", "alice\xc3"} {
			r := c.login(name, "x")
			if r.code != http.StatusBadRequest {
				t.Errorf("login as %q: %d, want 400", name, r.code)
			}
		}
		if r := c.do("POST", "/login", url.Values{"username": {"alice"}, "password": {"x\x00"}}, nil); r.code != http.StatusBadRequest {
			t.Errorf("a NUL in the password: %d, want 400", r.code)
		}
	})
}

// lockedLog is a log written by several goroutines (the demo's log,
// Chromium's output, DevTools events) and read by the test.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// Printf appends a line stamped with the time of day.
func (l *lockedLog) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.buf, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
