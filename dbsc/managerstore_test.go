package dbsc_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dbsc"
	"github.com/qsessions/qsessions/dbsc/dbsctest"
	"github.com/qsessions/qsessions/middleware"
)

// qenv is the handlers over a real qsessions Manager and middleware:
// ManagerStore, the session's own bound-cookie check, rotation and
// revocation, in process.
type qenv struct {
	t     testing.TB
	clock *fakeClock
	store *backend.MemStore
	m     *qsessions.Manager
	srv   *dbsc.Server
	ts    *httptest.Server
}

// newQEnv serves, inside the session middleware:
//
//	GET  /login    Login as user 7 (rotating the session), then StartRegistration
//	GET  /whoami   "user 7" or 401 "not signed in" (+ " needs proof")
//	POST /cycle    CycleKey
//	POST /dbsc/... the handlers
//
// The clock starts at the real time: the middleware computes cookie
// Max-Age against time.Now.
func newQEnv(t testing.TB, cached bool) *qenv {
	t.Helper()
	e := &qenv{t: t, clock: &fakeClock{t: time.Now().UTC()}, store: backend.NewMemStore()}
	var b backend.Backend = backend.NewDB(e.store)
	if cached {
		c, err := backend.NewCachedDB(e.store, backend.NewLocalCache(0), backend.CachedOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b = c
	}
	e.m = qsessions.New(b)
	e.m.Now = e.clock.Now
	srv, err := dbsc.New(dbsc.Config{Store: dbsc.NewManagerStore(e.m, ""), Now: e.clock.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	mux := http.NewServeMux()
	srv.Register(mux)
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		s := qsessions.FromContext(r.Context())
		if err := s.Login(r.Context(), 7); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if err := srv.StartRegistration(w, s.Record().Key); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "signed in")
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		s := qsessions.FromContext(r.Context())
		if id := s.UserID(); id != nil {
			fmt.Fprintf(w, "user %v\n", id)
			return
		}
		msg := "not signed in"
		if s.NeedsDeviceProof() {
			msg += " needs proof"
		}
		http.Error(w, msg, http.StatusUnauthorized)
	})
	mux.HandleFunc("POST /cycle", func(w http.ResponseWriter, r *http.Request) {
		if err := qsessions.FromContext(r.Context()).CycleKey(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	e.ts = httptest.NewTLSServer(middleware.New(e.m, middleware.Options{})(mux))
	t.Cleanup(e.ts.Close)
	return e
}

func (e *qenv) client(mod func(*dbsctest.Client)) *dbsctest.Client {
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

func (e *qenv) get(c *dbsctest.Client, path string) (int, string) {
	e.t.Helper()
	code, body, err := c.Get(context.Background(), path)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	return code, strings.TrimSpace(body)
}

// key returns the session key of c's session cookie.
func (e *qenv) key(c *dbsctest.Client) string {
	e.t.Helper()
	tok, ok := c.Cookie(dbsc.DefaultSessionCookie)
	if !ok {
		e.t.Fatal("no session cookie")
	}
	return backend.KeyOf(tok)
}

func (e *qenv) record(key string) *backend.Record {
	e.t.Helper()
	rec, err := e.store.Get(context.Background(), key, e.clock.Now())
	if err != nil {
		e.t.Fatalf("loading %s: %v", backend.PublicID(key), err)
	}
	return rec
}

func eachBackend(t *testing.T, f func(t *testing.T, e *qenv)) {
	for _, cached := range []bool{false, true} {
		name := "db"
		if cached {
			name = "cached_db"
		}
		t.Run(name, func(t *testing.T) { f(t, newQEnv(t, cached)) })
	}
}

// TestManagerStoreLifecycle: register at login, bound requests, expiry and
// refresh, rotation keeps the binding, a stolen cookie alone is nothing,
// revocation ends the session and then the browser's device-bound session.
func TestManagerStoreLifecycle(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *qenv) {
		c := e.client(nil)
		if code, body := e.get(c, "/login"); code != 200 {
			t.Fatalf("login: %d %s", code, body)
		}
		bs := c.Session()
		if bs == nil {
			t.Fatal("the client did not register")
		}
		key := e.key(c)
		rec := e.record(key)
		if !rec.Bound() || len(rec.DeviceSecret) != dbsc.SecretLen {
			t.Fatalf("row after registration: key %q, secret of %d bytes", rec.DeviceKey, len(rec.DeviceSecret))
		}
		dk, err := dbsc.ParseDeviceKey([]byte(rec.DeviceKey))
		if err != nil || dk.Thumbprint() != bs.ID {
			t.Fatalf("stored key %v (%v), browser's session %s", dk, err, bs.ID)
		}
		if code, body := e.get(c, "/whoami"); code != 200 || body != "user 7" {
			t.Fatalf("bound request: %d %q", code, body)
		}

		// A thief with the long-lived cookie only: not signed in.
		thief := e.client(nil)
		tok, _ := c.Cookie(dbsc.DefaultSessionCookie)
		thief.SetCookie(dbsc.DefaultSessionCookie, tok)
		if code, body := e.get(thief, "/whoami"); code != 401 || body != "not signed in needs proof" {
			t.Fatalf("stolen session cookie alone: %d %q", code, body)
		}

		// The bound cookie expires; the next request refreshes first.
		e.clock.Advance(dbsc.DefaultCredentialTTL + 6*time.Second)
		before := c.RefreshPOSTs.Load()
		if code, body := e.get(c, "/whoami"); code != 200 || body != "user 7" {
			t.Fatalf("after expiry and refresh: %d %q", code, body)
		}
		if n := c.RefreshPOSTs.Load() - before; n != 2 {
			t.Errorf("a refresh took %d POSTs, want 2 (challenge, proof)", n)
		}
		// Both cookies stolen, then the bound one expires: the thief
		// cannot refresh without the device key.
		for n, v := range c.Cookies() {
			thief.SetCookie(n, v)
		}
		if code, _ := e.get(thief, "/whoami"); code != 200 {
			t.Fatalf("both cookies, fresh: %d (they are worth minutes)", code)
		}
		e.clock.Advance(dbsc.DefaultCredentialTTL + 6*time.Second)
		if code, _ := e.get(thief, "/whoami"); code != 401 {
			t.Fatalf("both cookies, bound one expired: %d", code)
		}

		// Rotation (CycleKey, as Login does) keeps the binding: the bound
		// cookie of the old token stays valid for the new one.
		if code, body := e.get(c, "/whoami"); code != 200 {
			t.Fatalf("refresh before rotation: %d %q", code, body)
		}
		refreshes := c.RefreshPOSTs.Load()
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/cycle", nil)
		resp, err := c.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("cycle: %v %v", resp, err)
		}
		newKey := e.key(c)
		if newKey == key {
			t.Fatal("CycleKey kept the token")
		}
		if r := e.record(newKey); r.DeviceKey != rec.DeviceKey || string(r.DeviceSecret) != string(rec.DeviceSecret) {
			t.Fatal("the rotated row lost its binding")
		}
		if code, body := e.get(c, "/whoami"); code != 200 || c.RefreshPOSTs.Load() != refreshes {
			t.Fatalf("after rotation: %d %q, %d refresh POSTs", code, body, c.RefreshPOSTs.Load()-refreshes)
		}

		// Revoked: signed out at once though the bound cookie is valid,
		// and the next refresh ends the browser's device-bound session.
		if err := e.m.AdminRevoke(context.Background(), backend.PublicID(newKey)); err != nil {
			t.Fatal(err)
		}
		if _, ok := c.Cookie(bs.CookieName); !ok {
			t.Fatal("the bound cookie should still be live")
		}
		if code, body := e.get(c, "/whoami"); code != 401 || body != "not signed in" {
			t.Fatalf("after revoke: %d %q", code, body)
		}
		if err := c.Refresh(context.Background()); !errors.Is(err, dbsctest.ErrEnded) || c.Session() != nil {
			t.Fatalf("refresh of a revoked session: %v", err)
		}
	})
}

// TestManagerStoreExpiredSession: a refresh of an expired session ends the
// device-bound session; so does one for a session that is not bound or is
// bound to another key.
func TestManagerStoreExpiredSession(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *qenv) {
		c := e.client(nil)
		e.get(c, "/login")
		if c.Session() == nil {
			t.Fatal("not registered")
		}
		e.clock.Advance(qsessions.DefaultLifetime + time.Minute)
		if code, _ := e.get(c, "/whoami"); code != 401 {
			t.Fatalf("expired session: %d", code)
		}
		if c.Session() != nil || c.Ended.Load() != 1 {
			t.Fatalf("refresh of an expired session: session %v, ended %d", c.Session(), c.Ended.Load())
		}

		// A browser that never registers: the session is never bound and
		// lives on its cookie as before, past any bound-cookie lifetime.
		plain := e.client(func(c *dbsctest.Client) { c.NoAutoRegister = true })
		e.get(plain, "/login")
		if plain.LastRegistration() == "" {
			t.Fatal("no registration header at login")
		}
		e.clock.Advance(time.Hour)
		if code, body := e.get(plain, "/whoami"); code != 200 || body != "user 7" {
			t.Fatalf("unbound session: %d %q", code, body)
		}
		if e.record(e.key(plain)).Bound() {
			t.Fatal("a browser that never registered has a bound row")
		}
		// Its session id header names a binding it does not have: ended.
		resp, err := plain.PostRefresh(context.Background(), "someid", "")
		if err != nil || resp.StatusCode != 200 || !strings.Contains(body(t, resp), `"continue":false`) {
			t.Fatalf("refresh of an unbound session: %v %v", resp, err)
		}
	})
}

// TestManagerStoreConcurrentRefreshes: two tabs refresh at once; both end
// signed in, nobody is signed out, one binding stays.
func TestManagerStoreConcurrentRefreshes(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *qenv) {
		c := e.client(nil)
		e.get(c, "/login")
		id := c.Session().ID
		for round := range 5 {
			e.clock.Advance(dbsc.DefaultCredentialTTL + 6*time.Second)
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
			for i, err := range errs {
				if err != nil {
					t.Fatalf("round %d, tab %d: %v", round, i, err)
				}
			}
			if code, _ := e.get(c, "/whoami"); code != 200 || c.Session() == nil || c.Session().ID != id || c.Ended.Load() != 0 {
				t.Fatalf("round %d: %d, session %v, ended %d", round, code, c.Session(), c.Ended.Load())
			}
		}
	})
}

// TestManagerStoreSessionLookups: what Session and Bind answer without a
// live session, and that malformed cookies cost no backend call.
func TestManagerStoreSessionLookups(t *testing.T) {
	store := backend.NewMemStore()
	counting := &countingBackend{Backend: backend.NewDB(store)}
	m := qsessions.New(counting)
	ms := dbsc.NewManagerStore(m, "sid")
	for name, cookie := range map[string]string{"none": "", "malformed": "sid=not-a-token", "other name": "sessionid=" + strings.Repeat("A", backend.TokenLen)} {
		r := httptest.NewRequest("POST", "/dbsc/refresh", nil)
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		if _, err := ms.Session(r); !errors.Is(err, dbsc.ErrNoSession) {
			t.Errorf("%s: %v, want ErrNoSession", name, err)
		}
	}
	if counting.loads != 0 {
		t.Errorf("cookies that are no token cost %d loads", counting.loads)
	}
	r := httptest.NewRequest("POST", "/dbsc/refresh", nil)
	r.Header.Set("Cookie", "sid="+strings.Repeat("A", backend.TokenLen))
	if _, err := ms.Session(r); !errors.Is(err, dbsc.ErrNoSession) || counting.loads != 1 {
		t.Errorf("unknown token: %v after %d loads", err, counting.loads)
	}
	k := mustDeviceKey(t, mustP256(t).Public())
	if err := ms.Bind(context.Background(), strings.Repeat("0", 64), dbsc.Binding{Key: k, Secret: make([]byte, dbsc.SecretLen)}); !errors.Is(err, dbsc.ErrNoSession) {
		t.Errorf("Bind of an unknown session: %v", err)
	}
	if err := ms.Bind(context.Background(), strings.Repeat("0", 64), dbsc.Binding{Key: k}); err == nil || errors.Is(err, dbsc.ErrNoSession) {
		t.Errorf("Bind without a secret: %v", err)
	}
	// A backend failure is not "no session" (the handlers answer 500 and
	// the browser keeps its device-bound session).
	counting.fail = errors.New("database down")
	if _, err := ms.Session(r); err == nil || errors.Is(err, dbsc.ErrNoSession) {
		t.Errorf("failing backend: %v", err)
	}
	// A row whose stored key is garbage is a session without a binding.
	counting.fail = nil
	tok, key, _ := backend.NewToken(nil)
	now := time.Now()
	if err := store.Insert(context.Background(), &backend.Record{Key: key, ExpireDate: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, LastActivity: now, DeviceKey: `{"kty":"EC"}`, DeviceSecret: make([]byte, 32)}); err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Cookie", "sid="+tok)
	m.Logger = quietLogger()
	if s, err := ms.Session(r); err != nil || s.Key != key || s.Binding != nil {
		t.Errorf("row with a bad key: %+v %v", s, err)
	}
}

// countingBackend counts loads and can fail them.
type countingBackend struct {
	backend.Backend
	loads int
	fail  error
}

func (c *countingBackend) Load(ctx context.Context, key string, now time.Time) (*backend.Record, error) {
	c.loads++
	if c.fail != nil {
		return nil, c.fail
	}
	return c.Backend.Load(ctx, key, now)
}

// BenchmarkRefresh is the server's cost of one refresh of a bound session
// (two POSTs: one answered 403 with a challenge, one with an ES256 proof),
// over ManagerStore and the db backend on the in-memory Store, through
// the middleware and an in-process TLS connection.
func BenchmarkRefresh(b *testing.B) {
	e := newQEnv(b, false)
	c, err := dbsctest.NewClient(e.ts.URL, e.ts.Client())
	if err != nil {
		b.Fatal(err)
	}
	c.Now = e.clock.Now
	if code, _, err := c.Get(context.Background(), "/login"); err != nil || code != 200 || c.Session() == nil {
		b.Fatal("login", code, err)
	}
	for b.Loop() {
		if err := c.Refresh(context.Background()); err != nil {
			b.Fatal(err)
		}
		c.DeleteCookie(c.Session().CookieName)
	}
}

// BenchmarkRefreshServer is the server side alone of one refresh, called
// in process without a network: the POST answered 403 with a challenge and
// the POST with an ES256 proof answered with a fresh bound cookie, each
// through the session middleware and one ManagerStore.Session (a load from
// the in-memory Store). The client's signing is outside the timer.
func BenchmarkRefreshServer(b *testing.B) {
	e := newQEnv(b, false)
	c, err := dbsctest.NewClient(e.ts.URL, e.ts.Client())
	if err != nil {
		b.Fatal(err)
	}
	c.Now = e.clock.Now
	if code, _, err := c.Get(context.Background(), "/login"); err != nil || code != 200 || c.Session() == nil {
		b.Fatal("login", code, err)
	}
	h := e.ts.Config.Handler
	tok, _ := c.Cookie(dbsc.DefaultSessionCookie)
	id := c.Session().ID
	post := func(proof string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/dbsc/refresh", nil)
		r.Header.Set("Cookie", dbsc.DefaultSessionCookie+"="+tok)
		r.Header.Set(dbsc.HeaderSessionID, id)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		if proof != "" {
			r.Header.Set(dbsc.HeaderResponse, proof)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for b.Loop() {
		w := post("")
		if w.Code != http.StatusForbidden {
			b.Fatal(w.Code)
		}
		ch := w.Header().Get(dbsc.HeaderChallenge)
		ch = ch[1 : strings.IndexByte(ch[1:], '"')+1]
		b.StopTimer()
		proof, err := dbsctest.SignProof(dbsctest.ProofSpec{Signer: c.Key(), Challenge: ch})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if w := post(proof); w.Code != http.StatusOK {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}

// BenchmarkBoundRequest is an ordinary request of a signed-in session
// through the middleware (in process, in-memory Store), unbound and
// device-bound: the difference is the session's check of the bound cookie
// (backend.VerifyBound).
func BenchmarkBoundRequest(b *testing.B) {
	for _, bound := range []bool{false, true} {
		name := "unbound"
		if bound {
			name = "bound"
		}
		b.Run(name, func(b *testing.B) {
			e := newQEnv(b, false)
			c, err := dbsctest.NewClient(e.ts.URL, e.ts.Client())
			if err != nil {
				b.Fatal(err)
			}
			c.Now, c.NoAutoRegister = e.clock.Now, !bound
			if code, _, err := c.Get(context.Background(), "/login"); err != nil || code != 200 || (c.Session() != nil) != bound {
				b.Fatal("login", code, err)
			}
			h := e.ts.Config.Handler
			r := httptest.NewRequest(http.MethodGet, "/whoami", nil)
			for n, v := range c.Cookies() {
				r.AddCookie(&http.Cookie{Name: n, Value: v})
			}
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatal(w.Code, w.Body.String())
				}
			}
		})
	}
}
