package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dbsc"
	"github.com/qsessions/qsessions/dbsc/dbsctest"
	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/middleware"
	"github.com/qsessions/qsessions/pages"
)

// fakeClock is a settable clock shared by the demo (Manager and handlers)
// and the protocol client. It starts at the real time: the middleware
// computes cookie lifetimes against time.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().UTC()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// The tests' fake clock reaches the Manager through a test-only feature
// put first, so it is set before any feature's setup starts a goroutine
// that reads the Manager's clock (the alerts' cleaner does).
func init() {
	features = append([]feature{{name: "test clock", setup: func(_ context.Context, a *app, _ *middleware.Options, _ *pages.Config) error {
		if a.cfg.DBSC.Now != nil {
			a.m.Now = a.cfg.DBSC.Now
		}
		return nil
	}}}, features...)
}

// dbscApp is the demo with --dbsc behind an httptest TLS server (standing
// in for the HTTPS listener), on a fake clock.
type dbscApp struct {
	*app
	t     *testing.T
	clock *fakeClock
	srv   *httptest.Server
	db    *testutil.DB
}

// newDBSCApp starts the demo with --dbsc on db; memcache "" uses the
// in-process cache; plainDB swaps the cached_db backend for db (the
// database only) before any request.
func newDBSCApp(t *testing.T, db *testutil.DB, memcache string, plainDB bool) *dbscApp {
	t.Helper()
	clock := newFakeClock()
	a, err := newApp(context.Background(), config{DB: db.URL, Memcache: memcache, DBSC: dbscConfig{On: true, Now: clock.Now}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if plainDB {
		a.m.Backend = backend.NewDB(a.m.Backend.(*backend.CachedDB).SessionStore())
	}
	da := &dbscApp{app: a, t: t, clock: clock, db: db}
	da.srv = httptest.NewTLSServer(a.Handler())
	t.Cleanup(da.srv.Close)
	return da
}

func (da *dbscApp) password(name string) string {
	for _, u := range da.users {
		if u.Name == name {
			return u.Password
		}
	}
	da.t.Fatalf("no demo user %s", name)
	return ""
}

// browser is a DBSC-capable client of the demo (registers unless noDBSC).
func (da *dbscApp) browser(noDBSC bool) *dbsctest.Client {
	da.t.Helper()
	c, err := dbsctest.NewClient(da.srv.URL, da.srv.Client())
	if err != nil {
		da.t.Fatal(err)
	}
	c.Now = da.clock.Now
	c.NoAutoRegister = noDBSC
	return c
}

// send sends a request of c and returns status, Location and body.
func (da *dbscApp) send(c *dbsctest.Client, method, path string, form url.Values) (int, string, string) {
	da.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, da.srv.URL+path, body)
	if err != nil {
		da.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", uaWindows)
	resp, err := c.Do(req)
	if err != nil {
		da.t.Fatalf("%s %s: %v", method, path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

func (da *dbscApp) login(c *dbsctest.Client, name string) {
	da.t.Helper()
	code, loc, body := da.send(c, "POST", "/login", url.Values{"username": {name}, "password": {da.password(name)}})
	if code != http.StatusSeeOther || loc != "/" {
		da.t.Fatalf("login %s: %d %q\n%s", name, code, loc, body)
	}
}

// signedIn reports whether GET / shows c's home page (else it redirects to
// the login page).
func (da *dbscApp) signedIn(c *dbsctest.Client) bool {
	da.t.Helper()
	code, loc, body := da.send(c, "GET", "/", nil)
	switch {
	case code == http.StatusOK && strings.Contains(body, "Hello, "):
		return true
	case code == http.StatusSeeOther && loc == "/login":
		return false
	}
	da.t.Fatalf("GET /: %d %q\n%s", code, loc, body)
	return false
}

// sessions returns c's sessions from the JSON API.
func (da *dbscApp) sessions(c *dbsctest.Client) []pages.APISession {
	da.t.Helper()
	code, _, body := da.send(c, "GET", "/api/sessions", nil)
	var api pages.APIResponse
	if err := json.Unmarshal([]byte(body), &api); code != 200 || err != nil {
		da.t.Fatalf("GET /api/sessions: %d %v\n%s", code, err, body)
	}
	return api.Sessions
}

// row returns the dbsc_key of the session of c's cookie ("" when NULL)
// and whether the row exists.
func (da *dbscApp) row(c *dbsctest.Client) (string, bool) {
	da.t.Helper()
	tok, ok := c.Cookie("sessionid")
	if !ok {
		da.t.Fatal("no session cookie")
	}
	q := "SELECT dbsc_key FROM qsessions_session WHERE session_key = ?"
	if da.db.Dialect == testutil.Postgres {
		q = strings.Replace(q, "?", "$1", 1)
	}
	var k *string
	err := da.db.SQL.QueryRow(q, backend.KeyOf(tok)).Scan(&k)
	if err != nil {
		return "", false
	}
	if k == nil {
		return "", true
	}
	return *k, true
}

// eachDBSCEnv runs f on SQLite, PostgreSQL and MariaDB/MySQL, each with
// the db backend and with cached_db on memcached.
func eachDBSCEnv(t *testing.T, f func(t *testing.T, da *dbscApp)) {
	for _, d := range testutil.AllDialects {
		for _, b := range []string{"db", "cached_db"} {
			t.Run(d+"/"+b, func(t *testing.T) {
				db := testutil.Open(t, d)
				mc := ""
				if b == "cached_db" {
					mc = testutil.Memcached(t)
				}
				f(t, newDBSCApp(t, db, mc, b == "db"))
			})
		}
	}
}

// TestDBSCProtocol drives the demo's real wiring with the protocol client:
// register at sign-in, bound requests, expiry and refresh, theft of the
// cookies, a sign-in that rotates the bound session, revocation from
// another device, and a refresh of a revoked session.
func TestDBSCProtocol(t *testing.T) {
	eachDBSCEnv(t, func(t *testing.T, da *dbscApp) {
		ctx := context.Background()
		c := da.browser(false)
		da.login(c, "alice")
		bs := c.Session()
		if bs == nil || c.RegistrationPOSTs.Load() != 1 {
			t.Fatalf("no registration at sign-in (%d POSTs)", c.RegistrationPOSTs.Load())
		}
		if bs.CookieName != "__Host-qsessions_dbsc" || !strings.Contains(bs.Attributes, "Secure") || bs.RefreshURL != da.srv.URL+"/dbsc/refresh" {
			t.Fatalf("session configuration: %+v", bs)
		}
		jwk, ok := da.row(c)
		if dk, err := dbsc.ParseDeviceKey([]byte(jwk)); !ok || err != nil || dk.Thumbprint() != bs.ID {
			t.Fatalf("stored key %q (%v), the client's session %s", jwk, err, bs.ID)
		}
		if !da.signedIn(c) {
			t.Fatal("a bound request with its bound cookie is not signed in")
		}
		if s := da.sessions(c); len(s) != 1 || !s[0].DeviceBound {
			t.Fatalf("JSON: %+v", s)
		}
		if _, _, body := da.send(c, "GET", "/sessions", nil); !strings.Contains(body, `<span class="badge bound"`) {
			t.Fatal("the sessions page shows no device-bound mark")
		}

		// Cookies copied to another machine: the session cookie alone is
		// nothing; both are worth until the bound one expires.
		thief := da.browser(true)
		tok, _ := c.Cookie("sessionid")
		thief.SetCookie("sessionid", tok)
		if da.signedIn(thief) {
			t.Fatal("the long-lived cookie alone signed in")
		}
		for n, v := range c.Cookies() {
			thief.SetCookie(n, v)
		}
		if !da.signedIn(thief) {
			t.Fatal("both fresh cookies should sign in")
		}

		// The bound cookie expires: the browser refreshes before its next
		// request (a 403 challenge, then a signed proof); the thief cannot.
		da.clock.Advance(dbsc.DefaultCredentialTTL + 6*time.Second)
		if da.signedIn(thief) {
			t.Fatal("stolen cookies still sign in after the bound cookie expired")
		}
		before := c.RefreshPOSTs.Load()
		if !da.signedIn(c) {
			t.Fatal("signed out after the refresh")
		}
		if n := c.RefreshPOSTs.Load() - before; n != 2 || c.Challenged.Load() != 1 {
			t.Fatalf("one refresh took %d POSTs, %d challenges; want 2 and 1", n, c.Challenged.Load())
		}

		// Signing in again from the bound browser rotates the token; the
		// binding goes with the row, so the bound cookie stays valid (this
		// client ignores the new registration header).
		c.NoAutoRegister = true
		refreshes := c.RefreshPOSTs.Load()
		da.login(c, "alice")
		if tok2, _ := c.Cookie("sessionid"); tok2 == tok {
			t.Fatal("the sign-in did not rotate the token")
		}
		if k, _ := da.row(c); k != jwk {
			t.Fatalf("the rotated row's key %q, want %q", k, jwk)
		}
		if !da.signedIn(c) || c.RefreshPOSTs.Load() != refreshes {
			t.Fatal("the bound cookie did not survive the rotation")
		}
		if c.LastRegistration() == "" {
			t.Fatal("no registration header at the second sign-in")
		}
		c.NoAutoRegister = false

		// Revoked from another device: signed out at once, although its
		// bound cookie is still valid; the next refresh ends the browser's
		// device-bound session.
		other := da.browser(true)
		da.login(other, "alice")
		var id string
		for _, s := range da.sessions(other) {
			if s.DeviceBound {
				id = s.ID
			}
		}
		if code, _, _ := da.send(other, "POST", "/sessions/"+id+"/revoke", url.Values{}); code != http.StatusSeeOther {
			t.Fatalf("revoke: %d", code)
		}
		if _, ok := c.Cookie(bs.CookieName); !ok {
			t.Fatal("the bound cookie should still be live")
		}
		if da.signedIn(c) {
			t.Fatal("a revoked bound session is still signed in")
		}
		if err := c.Refresh(ctx); !errors.Is(err, dbsctest.ErrEnded) || c.Session() != nil || c.Ended.Load() != 1 {
			t.Fatalf("refresh of a revoked session: %v (ended %d)", err, c.Ended.Load())
		}
		// cached_db served the bound rows from memcached (the checks of
		// the bound cookie above ran on cached entries), without failures.
		if cdb, ok := da.m.Backend.(*backend.CachedDB); ok {
			if st := cdb.Stats(); st.Hits == 0 || st.Errors != 0 || st.BadEntries != 0 {
				t.Errorf("cache stats %+v", st)
			}
		}
	})
}

// TestDBSCExpiredAndUnregistered: a refresh of an expired session ends the
// device-bound session; a browser that never registers keeps working as
// without DBSC (no bound cookie needed, no bound row, no mark).
func TestDBSCExpiredAndUnregistered(t *testing.T) {
	eachDBSCEnv(t, func(t *testing.T, da *dbscApp) {
		c := da.browser(false)
		da.login(c, "bob")
		plain := da.browser(true)
		da.login(plain, "bob")
		if plain.LastRegistration() == "" || plain.Session() != nil {
			t.Fatal("the plain browser should see the header and ignore it")
		}
		da.clock.Advance(time.Hour)
		if !da.signedIn(plain) || !da.signedIn(c) {
			t.Fatal("signed out after an hour of bound-cookie expiries")
		}
		if k, ok := da.row(plain); !ok || k != "" {
			t.Fatalf("the unregistered browser's row: %q %v", k, ok)
		}
		if _, ok := plain.Cookie("__Host-qsessions_dbsc"); ok {
			t.Fatal("the unregistered browser got a bound cookie")
		}
		for _, s := range da.sessions(plain) {
			if s.DeviceBound != !s.Current {
				t.Errorf("JSON: %+v", s)
			}
		}
		da.clock.Advance(qsessions.DefaultLifetime)
		if da.signedIn(c) || da.signedIn(plain) {
			t.Fatal("signed in past the session's lifetime")
		}
		if c.Session() != nil || c.Ended.Load() != 1 {
			t.Fatalf("the refresh of an expired session did not end it: %+v", c.Session())
		}
	})
}

// TestDBSCConcurrentRefreshes: two tabs of one browser refresh at once,
// round after round; both succeed or one retries with a new challenge, and
// the user is never signed out.
func TestDBSCConcurrentRefreshes(t *testing.T) {
	eachDBSCEnv(t, func(t *testing.T, da *dbscApp) {
		c := da.browser(false)
		da.login(c, "alice")
		for round := range 4 {
			da.clock.Advance(dbsc.DefaultCredentialTTL + 6*time.Second)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = c.Refresh(context.Background())
				}()
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if !da.signedIn(c) || c.Ended.Load() != 0 {
				t.Fatalf("round %d: signed out", round)
			}
		}
	})
}

// TestDBSCRefreshCost measures what a bound session costs in refreshes: a
// browser active every 30 s for an hour, with the default 5-minute bound
// cookie, makes one refresh (two POSTs) per cookie lifetime, and nothing
// else; a browser without DBSC makes none.
func TestDBSCRefreshCost(t *testing.T) {
	da := newDBSCApp(t, testutil.Open(t, testutil.SQLite), "", false)
	c := da.browser(false)
	da.login(c, "alice")
	plain := da.browser(true)
	da.login(plain, "bob")
	const step, total = 30 * time.Second, time.Hour
	for elapsed := time.Duration(0); elapsed < total; elapsed += step {
		da.clock.Advance(step)
		if !da.signedIn(c) || !da.signedIn(plain) {
			t.Fatalf("signed out after %v", elapsed)
		}
	}
	// The client refreshes when the cookie is gone (Chromium from 2
	// minutes before); either way one refresh per lifetime.
	lifetimes := int64(total / dbsc.DefaultCredentialTTL)
	if got := c.RefreshPOSTs.Load(); got < 2*(lifetimes-1) || got > 2*lifetimes {
		t.Errorf("%d refresh POSTs in %v, want 2 per %v (%d)", got, total, dbsc.DefaultCredentialTTL, 2*lifetimes)
	}
	t.Logf("an hour of activity every %v: %d refresh POSTs (%d challenges) for the bound session, %d for the unbound one",
		step, c.RefreshPOSTs.Load(), c.Challenged.Load(), plain.RefreshPOSTs.Load())
	if plain.RefreshPOSTs.Load() != 0 {
		t.Error("the unbound browser refreshed")
	}
}

// served is the demo started with serve, as its binary runs.
type served struct {
	out  string
	base string // the HTTPS listener's URL, without a trailing slash
	spki string
}

var (
	noteURLRE = regexp.MustCompile(`device-bound sessions \(DBSC\) on (https://\S+?)/? \(.*SPKI (\S+);`)
	userRE    = regexp.MustCompile(`(?m)^user: (\w+)  password: (\S+)$`)
)

// startServe runs serve(cfg) with a fixed free --addr until the test ends,
// and returns what it printed once it listens. A failed test logs all the
// demo printed.
func startServe(t *testing.T, cfg config) *served {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = ln.Addr().String()
	ln.Close()
	var mu sync.Mutex
	var out bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, w) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			mu.Lock()
			t.Logf("the demo printed:\n%s", out.String())
			mu.Unlock()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		s := out.String()
		mu.Unlock()
		if strings.Contains(s, "qsessions demo on http://") {
			sv := &served{out: s}
			if m := noteURLRE.FindStringSubmatch(s); m != nil {
				sv.base, sv.spki = strings.TrimSuffix(m[1], "/"), m[2]
			}
			return sv
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v\n%s", err, s)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not start:\n%s", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (sv *served) password(t *testing.T, name string) string {
	for _, m := range userRE.FindAllStringSubmatch(sv.out, -1) {
		if m[1] == name {
			return m[2]
		}
	}
	t.Fatalf("no password for %s in:\n%s", name, sv.out)
	return ""
}

// tlsConfig trusts exactly the certificate whose SPKI the demo printed.
func (sv *served) tlsConfig() *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, // replaced by the SPKI pin below
		VerifyConnection: func(cs tls.ConnectionState) error {
			sum := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			if base64.StdEncoding.EncodeToString(sum[:]) != sv.spki {
				return errors.New("the certificate is not the one whose SPKI the demo printed")
			}
			if err := cs.PeerCertificates[0].VerifyHostname("localhost"); err != nil {
				return err
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool(cs.PeerCertificates[0])})
			return err
		},
	}
}

func pool(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

// httpsClient is a cookie-keeping client of the HTTPS listener that does
// not follow redirects.
type httpsClient struct {
	sv *served
	c  *http.Client
}

func (sv *served) client(t *testing.T) *httpsClient {
	jar, _ := cookiejar.New(nil)
	return &httpsClient{sv: sv, c: &http.Client{
		Jar:           jar,
		Transport:     &http.Transport{TLSClientConfig: sv.tlsConfig()},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (h *httpsClient) do(t *testing.T, method, path string, form url.Values) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, h.sv.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := h.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func (h *httpsClient) login(t *testing.T, name, pass string) int {
	return h.do(t, "POST", "/login", url.Values{"username": {name}, "password": {pass}}).StatusCode
}

func (h *httpsClient) post(t *testing.T, path string) int {
	return h.do(t, "POST", path, url.Values{}).StatusCode
}

// TestDBSCServe: the binary's path with --dbsc: the HTTPS listener with its
// self-signed certificate (the SPKI printed is the one served), forwarding
// to --addr; the protocol client registers and refreshes through it, and
// the pages show the browser's address, not the forwarder's.
func TestDBSCServe(t *testing.T) {
	clock := newFakeClock()
	sv := startServe(t, config{DB: testutil.Open(t, testutil.SQLite).URL, DBSC: dbscConfig{On: true, Addr: "127.0.0.1:0", Now: clock.Now}})
	if sv.base == "" || !strings.HasPrefix(sv.base, "https://localhost:") || !strings.Contains(sv.out, "try it with: chromium") {
		t.Fatalf("no HTTPS note:\n%s", sv.out)
	}
	hc := sv.client(t)
	c, err := dbsctest.NewClient(sv.base, hc.c)
	if err != nil {
		t.Fatal(err)
	}
	c.Now = clock.Now
	req, _ := http.NewRequest("POST", sv.base+"/login", strings.NewReader(url.Values{"username": {"alice"}, "password": {sv.password(t, "alice")}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != http.StatusSeeOther || c.Session() == nil {
		t.Fatalf("login and registration through HTTPS: %v %v", resp, err)
	}
	clock.Advance(dbsc.DefaultCredentialTTL + 6*time.Second)
	code, body, err := c.Get(context.Background(), "/api/sessions")
	if err != nil || code != 200 || c.RefreshPOSTs.Load() != 2 {
		t.Fatalf("after a refresh through HTTPS: %d %v (%d refresh POSTs)\n%s", code, err, c.RefreshPOSTs.Load(), body)
	}
	var api pages.APIResponse
	if err := json.Unmarshal([]byte(body), &api); err != nil || len(api.Sessions) != 1 || !api.Sessions[0].DeviceBound || api.Sessions[0].IP != "127.0.0.1" {
		t.Fatalf("sessions: %v %s", err, body)
	}
	// The session cookie is Secure over HTTPS, like the bound one.
	if !strings.Contains(resp.Header.Values("Set-Cookie")[0], "Secure") {
		t.Errorf("session cookie %q is not Secure", resp.Header.Values("Set-Cookie")[0])
	}
	// A wrong certificate is refused by the pin (the test's own check).
	bad := &served{base: sv.base, spki: "AAAA"}
	if _, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: bad.tlsConfig()}}).Get(sv.base + "/login"); err == nil {
		t.Error("the SPKI pin accepted another certificate")
	}
}

// TestDBSCSetupErrors: --dbsc needs a fixed --addr to forward to, and both
// or neither of --tls-cert and --tls-key.
func TestDBSCSetupErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		cfg  config
		want string
	}{
		{config{Addr: "127.0.0.1:0", DBSC: dbscConfig{On: true, Addr: "127.0.0.1:0"}}, "fixed port"},
		{config{Addr: "127.0.0.1:8080", DBSC: dbscConfig{On: true, Addr: "127.0.0.1:0", TLSCert: "x.pem"}}, "go together"},
		{config{Addr: "127.0.0.1:8080", DBSC: dbscConfig{On: true, Addr: "127.0.0.1:0", TLSCert: "/nonexistent.pem", TLSKey: "/nonexistent.key"}}, "--tls-cert/--tls-key"},
		{config{DBSC: dbscConfig{On: true, CredentialTTL: time.Second}}, "CredentialTTL"},
	} {
		tc.cfg.DB = testutil.Open(t, testutil.SQLite).URL
		a, err := newApp(ctx, tc.cfg)
		if err == nil {
			a.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "dbsc: ") {
			t.Errorf("%+v: %v, want an error about %s", tc.cfg.DBSC, err, tc.want)
		}
	}
	t.Setenv(DBSCKeysEnv, "not hex")
	if _, err := newApp(ctx, config{DB: testutil.Open(t, testutil.SQLite).URL, DBSC: dbscConfig{On: true}}); err == nil || !strings.Contains(err.Error(), DBSCKeysEnv) {
		t.Errorf("bad %s: %v", DBSCKeysEnv, err)
	}
}

// TestWithoutDBSC: without --dbsc, sign-in sends no registration header,
// there are no DBSC routes, and the session cookie stays as before.
func TestWithoutDBSC(t *testing.T) {
	ta := newTestApp(t, testutil.Open(t, testutil.SQLite), config{})
	c := ta.device(uaWindows)
	r := c.login("alice", ta.password("alice"))
	if r.code != http.StatusSeeOther || r.h.Get(dbsc.HeaderRegistration) != "" || strings.Contains(r.h.Get("Set-Cookie"), "Secure") {
		t.Fatalf("login without --dbsc: %d, headers %v", r.code, r.h)
	}
	if r := c.do("POST", "/dbsc/refresh", url.Values{}, nil); r.code != http.StatusNotFound && r.code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /dbsc/refresh without --dbsc: %d", r.code)
	}
}

// TestDBSCDocs: docs/dbsc.md gives the Chromium flags the demo prints and
// names the demo's flags.
func TestDBSCDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/dbsc.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, s := range []string{"--enable-features=" + chromiumDBSCEnable, "--disable-features=" + chromiumDBSCDisable,
		"--dbsc", "--dbsc-addr", "--tls-cert", "--tls-key", "--dbsc-ttl", "127.0.0.1:8443"} {
		if !strings.Contains(doc, s) {
			t.Errorf("docs/dbsc.md does not say %q", s)
		}
	}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var cfg config
	dbscFlags(fs, &cfg)
	if cfg.DBSC.Addr != "127.0.0.1:8443" || cfg.DBSC.CredentialTTL != dbsc.DefaultCredentialTTL || cfg.DBSC.On {
		t.Errorf("flag defaults %+v", cfg.DBSC)
	}
}
