package alerts_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/alerts"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/location"
	"github.com/qsessions/qsessions/location/locationtest"
	"github.com/qsessions/qsessions/middleware"
)

const (
	uaWindows  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	uaWindows2 = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36"
	uaIPhone   = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
	uaLinux    = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
)

// Addresses of the GeoIP fixture.
const (
	ipLondon     = "81.2.69.142"
	ipLondon2    = "81.2.69.160"
	ipBoxford    = "2.125.160.216" // United Kingdom too
	ipLinkoping  = "89.160.20.112"
	ipLinkoping2 = "89.160.20.128"
	ipMilton     = "216.160.83.56"
	ipLAN        = "10.1.2.3"
)

// geoDir writes the GeoIP fixture and returns its directory.
func geoDir(t testing.TB) string {
	dir := t.TempDir()
	locationtest.WriteFile(t, filepath.Join(dir, "GeoLite2-City.mmdb"), locationtest.Options{DatabaseType: "GeoLite2-City"},
		locationtest.Record{Network: "81.2.69.0/24", City: "London", Country: "United Kingdom", CountryCode: "GB"},
		locationtest.Record{Network: "2.125.160.0/24", City: "Boxford", Country: "United Kingdom", CountryCode: "GB"},
		locationtest.Record{Network: "89.160.20.0/24", City: "Linköping", Country: "Sweden", CountryCode: "SE"},
		locationtest.Record{Network: "216.160.83.0/24", City: "Milton", Country: "United States", CountryCode: "US"},
	)
	return dir
}

func openGeo(t testing.TB) *location.Reader {
	r, err := location.Open(geoDir(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// logBuffer is a slog destination tests read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// notified records what Notify heard.
type notified struct {
	mu     sync.Mutex
	events []qsessions.LoggedEvent
}

func (n *notified) notify(_ context.Context, e qsessions.LoggedEvent) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.events = append(n.events, e)
}

// take returns what was notified since the last take.
func (n *notified) take() []qsessions.LoggedEvent {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.events
	n.events = nil
	return out
}

// env is one test's app: a Manager over the reference ent store on a
// fresh database, the generated event log, alerts attached, and a
// handler with small routes behind the middleware.
type env struct {
	t      testing.TB
	db     *testutil.DB
	drv    *testutil.CountingDriver
	client *ent.Client
	clock  *testutil.Clock
	m      *qsessions.Manager
	log    qsessions.EventLog
	a      *alerts.Alerts
	heard  *notified
	logs   *logBuffer
	h      http.Handler
}

// newEnv builds the env; edit tweaks the alerts' options (log, timeout)
// before New.
func newEnv(t testing.TB, db *testutil.DB, edit func(*alerts.Options)) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, db: db, clock: testutil.NewClock(), heard: &notified{}, logs: &logBuffer{}}
	e.drv = testutil.NewCountingDriver(db.Driver())
	e.client = ent.NewClient(ent.Driver(e.drv))
	if err := e.client.Schema.Create(ctx); err != nil {
		t.Fatalf("creating the schema: %v", err)
	}
	store := ent.NewSessionStore(e.client, backend.WithClock(e.clock.Now))
	e.m = qsessions.New(backend.NewDB(store))
	e.m.Now = e.clock.Now
	e.m.Logger = slog.New(slog.NewTextHandler(e.logs, nil))
	e.log = ent.NewSessionEventLog(e.client)
	o := alerts.Options{Manager: e.m, Log: e.log, Locator: openGeo(t), Notify: e.heard.notify}
	if edit != nil {
		edit(&o)
	}
	a, err := alerts.New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.a = a
	a.Attach()
	e.h = middleware.New(e.m, middleware.Options{
		Cookie:         middleware.Cookie{Insecure: true},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")},
	})(e.routes())
	e.drv.Reset()
	return e
}

// eachEnv runs f on every dialect.
func eachEnv(t *testing.T, edit func(*alerts.Options), f func(t *testing.T, e *env)) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) { f(t, newEnv(t, db, edit)) })
}

func (e *env) routes() http.Handler {
	mux := http.NewServeMux()
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
		if _, err := e.m.RevokeOthers(r.Context(), s.UserID()); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	return mux
}

// result is a response with the session cookie it set, if any.
type result struct {
	code   int
	body   string
	cookie string
}

// do sends a request from ip (through a trusted proxy) with ua and the
// session cookie.
func (e *env) do(path, cookie, ip, ua string) result {
	e.t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, nil)
	r.RemoteAddr = "10.9.0.1:40000"
	r.Header.Set("X-Forwarded-For", ip)
	r.Header.Set("User-Agent", ua)
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: "sessionid", Value: cookie})
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, r)
	out := result{code: rec.Code, body: rec.Body.String()}
	for _, c := range rec.Result().Cookies() {
		if c.Name == "sessionid" && c.MaxAge >= 0 {
			out.cookie = c.Value
		}
	}
	return out
}

// login signs user in from ip with ua and returns the cookie.
func (e *env) login(user int, ip, ua string) string {
	e.t.Helper()
	r := e.do("/login?user="+strconv.Itoa(user), "", ip, ua)
	if r.code != 200 || r.cookie == "" {
		e.t.Fatalf("login: %d %s", r.code, r.body)
	}
	return r.cookie
}

func (e *env) newUser(name string) int {
	e.t.Helper()
	return e.client.User.Create().SetUsername(name).SaveX(context.Background()).ID
}

// events returns the user's logged events, newest first.
func (e *env) events(user int) []qsessions.LoggedEvent {
	e.t.Helper()
	evs, err := e.log.Recent(context.Background(), user, time.Time{}, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

func pid(token string) string { return backend.PublicID(backend.KeyOf(token)) }
