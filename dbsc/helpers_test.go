package dbsc_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qsessions/qsessions/dbsc"
	"github.com/qsessions/qsessions/dbsc/dbsctest"
)

// fakeClock is a settable clock shared by server and client.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)} }

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

// env is a dbsc.Server inside the dbsctest app on a TLS test server.
type env struct {
	t     *testing.T
	clock *fakeClock
	store *dbsctest.MemStore
	srv   *dbsc.Server
	ts    *httptest.Server
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t *testing.T, mod func(*dbsc.Config)) *env {
	t.Helper()
	e := &env{t: t, clock: newClock(), store: dbsctest.NewMemStore()}
	cfg := dbsc.Config{Store: e.store, Now: e.clock.Now, Logger: quietLogger()}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := dbsc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.ts = httptest.NewTLSServer(dbsctest.NewApp(srv, e.store))
	t.Cleanup(e.ts.Close)
	return e
}

func (e *env) client(mod func(*dbsctest.Client)) *dbsctest.Client {
	e.t.Helper()
	c, err := dbsctest.NewClient(e.ts.URL, e.ts.Client())
	if err != nil {
		e.t.Fatal(err)
	}
	c.Now = e.clock.Now
	if mod != nil {
		mod(c)
	}
	return c
}

// login signs c in (registering if c does DBSC) and returns the session
// key.
func (e *env) login(c *dbsctest.Client) string {
	e.t.Helper()
	if code, body, err := c.Get(context.Background(), "/login"); err != nil || code != 200 {
		e.t.Fatalf("login: %d %q %v", code, body, err)
	}
	sid, ok := c.Cookie("sessionid")
	if !ok {
		e.t.Fatal("no session cookie after login")
	}
	return dbsctest.KeyOf(sid)
}

// whoami returns the status and trimmed body of GET /whoami.
func (e *env) whoami(c *dbsctest.Client) (int, string) {
	e.t.Helper()
	code, body, err := c.Get(context.Background(), "/whoami")
	if err != nil {
		e.t.Fatal(err)
	}
	return code, strings.TrimSpace(body)
}

func (e *env) wantSignedIn(c *dbsctest.Client, want string) {
	e.t.Helper()
	if code, body := e.whoami(c); code != 200 || body != want {
		e.t.Fatalf("whoami = %d %q, want 200 %q", code, body, want)
	}
}

func (e *env) wantSignedOut(c *dbsctest.Client) {
	e.t.Helper()
	if code, body := e.whoami(c); code != http.StatusUnauthorized {
		e.t.Fatalf("whoami = %d %q, want 401", code, body)
	}
}

// challenge asks the refresh endpoint for a challenge for c's session.
func (e *env) challenge(c *dbsctest.Client) string {
	e.t.Helper()
	s := c.Session()
	if s == nil {
		e.t.Fatal("client not bound")
	}
	resp, err := c.PostRefresh(context.Background(), s.ID, "")
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusForbidden {
		e.t.Fatalf("refresh without proof = %d, want 403", resp.StatusCode)
	}
	ch := c.Session().Challenge
	if ch == "" {
		e.t.Fatalf("no challenge cached from %q", resp.Header.Get(dbsc.HeaderChallenge))
	}
	return ch
}

func mustP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// mustRSA returns one shared RSA-2048 key (generation is slow).
func mustRSA(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

func mustDeviceKey(t testing.TB, pub crypto.PublicKey) *dbsc.DeviceKey {
	t.Helper()
	k, err := dbsc.NewDeviceKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func body(t testing.TB, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
