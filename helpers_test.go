package qsessions_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/middleware"
)

// env is one test's app: a Manager over the reference ent store on a fresh
// database, the middleware, and a handler with small routes.
type env struct {
	t      *testing.T
	db     *testutil.DB
	drv    *testutil.CountingDriver
	client *ent.Client
	store  *ent.SessionStore
	clock  *testutil.Clock
	calls  *countingBackend // every backend call: database or cache
	m      *qsessions.Manager
	h      http.Handler
	// beforeSave runs inside /set after the load, before the response.
	beforeSave func()
}

// backendKinds lists the backends the behaviour suite runs against.
var backendKinds = []string{"db"}

// newBackend builds the named backend over store; cached kinds are added by
// the cached_db tests' init.
var newBackend = func(t *testing.T, kind string, store backend.Store) backend.Backend {
	return backend.NewDB(store)
}

// eachEnv runs f for every dialect and backend kind.
func eachEnv(t *testing.T, f func(t *testing.T, e *env)) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			for _, kind := range backendKinds {
				t.Run(kind, func(t *testing.T) { f(t, newEnv(t, testutil.Open(t, d), kind)) })
			}
		})
	}
}

func newEnv(t *testing.T, db *testutil.DB, kind string) *env {
	t.Helper()
	e := &env{t: t, db: db, clock: testutil.NewClock()}
	e.drv = testutil.NewCountingDriver(db.Driver())
	e.client = ent.NewClient(ent.Driver(e.drv))
	if err := e.client.Schema.Create(context.Background()); err != nil {
		t.Fatalf("creating schema: %v", err)
	}
	e.store = ent.NewSessionStore(e.client, backend.WithClock(e.clock.Now))
	e.calls = &countingBackend{Backend: newBackend(t, kind, e.store)}
	e.m = qsessions.New(e.calls)
	e.m.Now = e.clock.Now
	mw := middleware.New(e.m, middleware.Options{
		Cookie:         middleware.Cookie{Insecure: true},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")},
	})
	e.h = mw(e.routes())
	e.drv.Reset()
	return e
}

func (e *env) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/noop", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		s := qsessions.FromContext(r.Context())
		v, ok := s.Get(r.FormValue("k"))
		fmt.Fprintf(w, "%v|%v", v, ok)
	})
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		s := qsessions.FromContext(r.Context())
		if err := s.Load(); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if e.beforeSave != nil {
			e.beforeSave()
		}
		if err := s.Set(r.FormValue("k"), r.FormValue("v")); err != nil {
			http.Error(w, err.Error(), 422)
			return
		}
		io.WriteString(w, "set")
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.Atoi(r.FormValue("user"))
		if err := qsessions.FromContext(r.Context()).Login(r.Context(), id); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		io.WriteString(w, "in")
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := qsessions.FromContext(r.Context()).Logout(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		io.WriteString(w, "out")
	})
	mux.HandleFunc("/clear", func(w http.ResponseWriter, r *http.Request) {
		if err := qsessions.FromContext(r.Context()).Clear(); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%v", qsessions.FromContext(r.Context()).UserID())
	})
	mux.HandleFunc("/revoke", func(w http.ResponseWriter, r *http.Request) {
		s := qsessions.FromContext(r.Context())
		if err := e.m.Revoke(r.Context(), s.UserID(), r.FormValue("id")); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/revoke-others", func(w http.ResponseWriter, r *http.Request) {
		s := qsessions.FromContext(r.Context())
		n, err := e.m.RevokeOthers(r.Context(), s.UserID())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, n)
	})
	return mux
}

// req describes one request.
type req struct {
	path   string
	cookie string // the session cookie value; "" sends none
	ip     string // RemoteAddr host; default 192.0.2.1
	ua     string
	xff    string
}

// resp is a response with the session cookie it set, if any.
type resp struct {
	code    int
	body    string
	cookie  string // new cookie value
	deleted bool   // the cookie was deleted
	header  http.Header
	raw     []*http.Cookie
}

func (e *env) do(r req) resp {
	e.t.Helper()
	hr := httptest.NewRequest(http.MethodPost, r.path, nil)
	ip := r.ip
	if ip == "" {
		ip = "192.0.2.1"
	}
	hr.RemoteAddr = netip.AddrPortFrom(netip.MustParseAddr(ip), 40000).String()
	if r.ua != "" {
		hr.Header.Set("User-Agent", r.ua)
	} else {
		hr.Header.Set("User-Agent", "test-agent/1.0")
	}
	if r.xff != "" {
		hr.Header.Set("X-Forwarded-For", r.xff)
	}
	if r.cookie != "" {
		hr.AddCookie(&http.Cookie{Name: "sessionid", Value: r.cookie})
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, hr)
	out := resp{code: rec.Code, body: rec.Body.String(), header: rec.Header(), raw: rec.Result().Cookies()}
	for _, c := range out.raw {
		if c.Name == "sessionid" {
			if c.MaxAge < 0 {
				out.deleted = true
			} else {
				out.cookie = c.Value
			}
		}
	}
	return out
}

// newUser creates a user and returns its ID.
func (e *env) newUser(name string) int {
	e.t.Helper()
	u, err := e.client.User.Create().SetUsername(name).Save(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	e.drv.Reset()
	return u.ID
}

// row reads the stored row of a cookie token straight from the table.
func (e *env) row(token string) *ent.Session {
	e.t.Helper()
	s, err := e.client.Session.Get(context.Background(), backend.KeyOf(token))
	if ent.IsNotFound(err) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) count() int {
	n, err := e.client.Session.Query().Count(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func within(a, b time.Time, d time.Duration) bool {
	diff := a.Sub(b)
	return diff < d && diff > -d
}

func hasPrefix(s, p string) bool { return strings.HasPrefix(s, p) }

// countingBackend counts the calls that reach the backend (and so the
// database or the cache).
type countingBackend struct {
	backend.Backend
	calls atomic.Int64
}

func (c *countingBackend) Load(ctx context.Context, key string, now time.Time) (*backend.Record, error) {
	c.calls.Add(1)
	return c.Backend.Load(ctx, key, now)
}

func (c *countingBackend) Create(ctx context.Context, rec *backend.Record, now time.Time) (string, error) {
	c.calls.Add(1)
	return c.Backend.Create(ctx, rec, now)
}

func (c *countingBackend) Touch(ctx context.Context, rec *backend.Record, cutoff, now time.Time) (bool, error) {
	c.calls.Add(1)
	return c.Backend.Touch(ctx, rec, cutoff, now)
}

func (c *countingBackend) Save(ctx context.Context, rec *backend.Record, now time.Time) error {
	c.calls.Add(1)
	return c.Backend.Save(ctx, rec, now)
}

func (c *countingBackend) Delete(ctx context.Context, keys ...string) (int, error) {
	c.calls.Add(1)
	return c.Backend.Delete(ctx, keys...)
}

// SessionStore forwards the wrapped backend's Store, as a wrapper must for
// the Manager to hear of sessions ended through ent.
func (c *countingBackend) SessionStore() backend.Store {
	if s, ok := c.Backend.(interface{ SessionStore() backend.Store }); ok {
		return s.SessionStore()
	}
	return nil
}

// CreateCapped forwards the wrapped backend's capping create, as a wrapper
// should for logins to stay one round trip.
func (c *countingBackend) CreateCapped(ctx context.Context, rec *backend.Record, now time.Time, keep int) (string, []string, bool, error) {
	c.calls.Add(1)
	if cc, ok := c.Backend.(backend.CappingCreator); ok {
		return cc.CreateCapped(ctx, rec, now, keep)
	}
	t, err := c.Backend.Create(ctx, rec, now)
	return t, nil, false, err
}

// RotateCapped forwards the wrapped backend's capping rotate, as a wrapper
// should for logins of a session with a row to stay one round trip.
func (c *countingBackend) RotateCapped(ctx context.Context, oldKey string, rec *backend.Record, now time.Time, keep int) (string, []string, bool, error) {
	c.calls.Add(1)
	if cr, ok := c.Backend.(backend.CappingRotator); ok {
		return cr.RotateCapped(ctx, oldKey, rec, now, keep)
	}
	t, err := c.Backend.Rotate(ctx, oldKey, rec, now)
	return t, nil, false, err
}
