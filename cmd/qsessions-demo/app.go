package main

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/device"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/ent/user"
	"github.com/qsessions/qsessions/internal/ratelog"
	"github.com/qsessions/qsessions/location"
	"github.com/qsessions/qsessions/middleware"
	"github.com/qsessions/qsessions/migrations"
	"github.com/qsessions/qsessions/pages"
)

// config is what the flags set.
type config struct {
	Addr           string
	DB             string
	Memcache       string
	GeoIPDir       string
	TrustedProxies string
	DBSC           dbscConfig // dbsc.go
	Metrics        metricsConfig
	Django         djangoConfig
}

// demoUser is a user the demo created, with its fresh password.
type demoUser struct {
	Name, Password string
	Admin          bool
}

// app is the demo: database, session manager, pages.
type app struct {
	db        *dburl.DB
	dbURL     string
	client    *ent.Client
	m         *qsessions.Manager
	geo       *location.Reader
	mc        *backend.Memcache
	pages     *pages.Pages
	users     []demoUser
	notes     []string // said at start-up
	logs      ratelog.Limiter
	cacheDesc string
	handler   http.Handler
	cfg       config // the flags, for the features' setup
}

// newApp opens the database, applies the embedded migrations, creates the
// demo users and builds the handler. The caller closes the app.
func newApp(ctx context.Context, cfg config) (*app, error) {
	db, err := dburl.Open(cfg.DB)
	if err != nil {
		return nil, err
	}
	a := &app{db: db, dbURL: db.URL, cfg: cfg}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = db.SQL.PingContext(pctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", db.URL, err)
	}
	dir, err := migrations.Dir(db.Dialect)
	if err != nil {
		return nil, err
	}
	if _, err := migrations.Apply(ctx, db.SQL, db.Dialect, dir, migrations.Options{Schema: db.Schema, URL: db.URL}); err != nil {
		if errors.Is(err, migrations.ErrNotClean) {
			return nil, fmt.Errorf("applying the migrations to %s: %w\n(the database already holds tables that these migrations did not create, "+
				"perhaps from an older demo: delete the SQLite file or pass --db with an empty database)", db.URL, err)
		}
		return nil, fmt.Errorf("applying the migrations to %s: %w", db.URL, err)
	}
	a.client = ent.NewClient(ent.Driver(entsql.OpenDB(db.Dialect, db.SQL)))
	store := ent.NewSessionStore(a.client)
	var cache backend.Cache
	keys, err := backend.ParseCacheKeys(os.Getenv(backend.CacheKeysEnv))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", backend.CacheKeysEnv, err)
	}
	if cfg.Memcache != "" {
		servers := strings.Split(cfg.Memcache, ",")
		for i := range servers {
			servers[i] = strings.TrimSpace(servers[i])
		}
		a.mc, err = backend.NewMemcache(servers, backend.MemcacheOptions{})
		if err != nil {
			return nil, fmt.Errorf("--memcache %q: %w", cfg.Memcache, err)
		}
		cache = a.mc
		a.cacheDesc = "cached_db on memcached " + strings.Join(servers, ",")
		if len(keys) == 0 {
			// Entries in a shared cache must be authenticated. A key made
			// for this run works for this process only: another process
			// (or the next start) cannot read its entries, so they are
			// misses, not errors.
			key := make([]byte, backend.MinKeyLen)
			rand.Read(key)
			keys = [][]byte{key}
			a.notes = append(a.notes, fmt.Sprintf("no %s set: generated a cache key for this run only; "+
				"set %s to the same hex key(s) in every process that shares the cache", backend.CacheKeysEnv, backend.CacheKeysEnv))
		}
	} else {
		cache = backend.NewLocalCache(0)
		a.cacheDesc = "cached_db on the in-process cache"
	}
	b, err := backend.NewCachedDB(store, cache, backend.CachedOptions{Prefix: "qsessions-demo:", Keys: keys})
	if err != nil {
		return nil, err
	}
	a.m = qsessions.New(b)
	var proxies []netip.Prefix
	if cfg.TrustedProxies != "" {
		for _, s := range strings.Split(cfg.TrustedProxies, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				return nil, fmt.Errorf("--trusted-proxies: %q is not a CIDR such as 10.0.0.0/8: %w", s, err)
			}
			proxies = append(proxies, p)
		}
	}
	var locator location.Locator
	if cfg.GeoIPDir != "" {
		a.geo, err = location.Open(cfg.GeoIPDir, location.WithWatch(time.Minute))
		if err != nil {
			return nil, fmt.Errorf("--geoip-dir: %w", err)
		}
		locator = a.geo
	}
	for _, u := range []struct {
		name  string
		admin bool
	}{{"alice", true}, {"bob", false}} {
		pass, err := a.ensureUser(ctx, u.name, u.admin)
		if err != nil {
			return nil, fmt.Errorf("creating the demo user %s: %w", u.name, err)
		}
		a.users = append(a.users, demoUser{Name: u.name, Password: pass, Admin: u.admin})
	}
	pc := pages.Config{
		Manager:     a.m,
		CurrentUser: a.currentUser,
		IsAdmin:     a.isAdmin,
		UserName:    a.userName,
		Admin:       ent.NewSessionAdminSource(a.client),
		Locator:     locator,
		LoginURL:    "/login",
		LogoutURL:   "/logout",
		AppName:     "qsessions demo",
	}
	mw := middleware.Options{
		Cookie:         middleware.Cookie{Insecure: true}, // the demo serves plain HTTP on localhost
		TrustedProxies: proxies,
	}
	for _, f := range features {
		if f.setup != nil {
			if err := f.setup(ctx, a, &mw, &pc); err != nil {
				return nil, fmt.Errorf("%s: %w", f.name, err)
			}
		}
	}
	a.pages, err = pages.New(pc)
	if err != nil {
		return nil, err
	}
	a.handler = a.routes(mw)
	for _, f := range features {
		if f.start != nil {
			f.start(context.WithoutCancel(ctx), a)
		}
	}
	ok = true
	return a, nil
}

// Close releases the database, the memcached connections and the GeoIP
// reader.
func (a *app) Close() {
	if a.m != nil {
		a.m.StopCleaner()
	}
	for _, f := range features {
		if f.close != nil {
			f.close(a)
		}
	}
	if a.geo != nil {
		_ = a.geo.Close()
	}
	if a.mc != nil {
		_ = a.mc.Close()
	}
	if a.db != nil {
		_ = a.db.Close()
	}
}

// Handler is the demo's whole HTTP handler.
func (a *app) Handler() http.Handler { return a.handler }

func (a *app) routes(mw middleware.Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", a.loginPage)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /{$}", a.home)
	a.pages.Register(mux)
	for _, f := range features {
		if f.routes != nil {
			f.routes(a, mux)
		}
	}
	sessions := middleware.New(a.m, mw)
	// Cross-origin requests are refused before any session is touched.
	// Every request has one budget for all its database work (the session's
	// load, the user's lookup, a sign-in, the security log), so a database
	// that holds a lock or stops answering fails it in about Timeout, not in
	// the sum of its steps.
	var h http.Handler = withBudget(a.m.Timeout, http.NewCrossOriginProtection().Handler(withUserMemo(sessions(mux))))
	for _, f := range features {
		if f.wrap != nil {
			h = f.wrap(a, h)
		}
	}
	return h
}

// ensureUser creates or updates a demo user with a fresh random password.
func (a *app) ensureUser(ctx context.Context, name string, admin bool) (string, error) {
	pass := rand.Text()[:12]
	hash, err := hashPassword(pass)
	if err != nil {
		return "", err
	}
	n, err := a.client.User.Update().Where(user.Username(name)).SetPasswordHash(hash).SetIsAdmin(admin).Save(ctx)
	if err == nil && n == 0 {
		err = a.client.User.Create().SetUsername(name).SetPasswordHash(hash).SetIsAdmin(admin).Exec(ctx)
	}
	return pass, err
}

const pbkdf2Rounds = 100_000

func hashPassword(pass string) ([]byte, error) {
	salt := make([]byte, 16)
	rand.Read(salt)
	k, err := pbkdf2.Key(sha256.New, pass, salt, pbkdf2Rounds, 32)
	return append(salt, k...), err
}

// dummyHash is checked for unknown users, so a wrong name costs as long as
// a wrong password.
var dummyHash, _ = hashPassword(rand.Text())

func checkPassword(hash []byte, pass string) bool {
	if len(hash) != 48 {
		hash = dummyHash
	}
	k, err := pbkdf2.Key(sha256.New, pass, hash[:16], pbkdf2Rounds, 32)
	return err == nil && subtle.ConstantTimeCompare(k, hash[16:]) == 1
}

// queryTimeout bounds the demo's own user queries, as Manager.Timeout
// bounds the session's: a database that stops answering fails a request
// in seconds.
const queryTimeout = 3 * time.Second

// withBudget gives each request's context a deadline of d (0: none); the
// session's final save runs without it (the middleware's SaveTimeout).
func withBudget(d time.Duration, next http.Handler) http.Handler {
	if d <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// userMemo caches the signed-in user for one request: the pages ask who
// the user is, whether they are an admin and their name.
type userMemo struct {
	loaded bool
	u      *ent.User
	err    error
}

type memoKey struct{}

func withUserMemo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), memoKey{}, &userMemo{})))
	})
}

// user returns the signed-in user: nil for an anonymous visitor (or a user
// deleted meanwhile), an error when the session or the user could not be
// read (the database is down or slow). One query per request at most.
func (a *app) user(r *http.Request) (*ent.User, error) {
	memo, _ := r.Context().Value(memoKey{}).(*userMemo)
	if memo != nil && memo.loaded {
		return memo.u, memo.err
	}
	var u *ent.User
	id, err := qsessions.FromContext(r.Context()).User()
	if n, ok := id.(int); ok && err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
		u, err = a.client.User.Get(ctx, n)
		cancel()
		if ent.IsNotFound(err) {
			u, err = nil, nil
		} else if err != nil {
			err = fmt.Errorf("%w: loading the signed-in user: %w", qsessions.ErrUnavailable, err)
		}
	}
	if memo != nil {
		memo.loaded, memo.u, memo.err = true, u, err
	}
	return u, err
}

func (a *app) currentUser(r *http.Request) (any, error) {
	u, err := a.user(r)
	if u == nil || err != nil {
		return nil, err
	}
	return u.ID, nil
}

func (a *app) isAdmin(r *http.Request) bool {
	u, _ := a.user(r)
	return u != nil && u.IsAdmin
}

func (a *app) userName(ctx context.Context, id any) string {
	if memo, _ := ctx.Value(memoKey{}).(*userMemo); memo != nil && memo.u != nil && memo.u.ID == id {
		return memo.u.Username
	}
	n, ok := id.(int)
	if !ok {
		return ""
	}
	u, err := a.client.User.Get(ctx, n)
	if err != nil {
		return ""
	}
	return u.Username
}

// unavailable answers a request that failed because the database did not
// answer: 503 with Retry-After and a page that says to try again, never a
// sign-in form; the failure is logged at most once a minute per kind.
func (a *app) unavailable(w http.ResponseWriter, r *http.Request, what string, err error) {
	a.logs.Log(r.Context(), slog.Default(), slog.LevelError, what+" "+r.Method+" "+r.URL.Path, "demo: "+what+" failed", "err", err, "path", r.URL.Path)
	w.Header().Set("Retry-After", "2")
	a.view(w, r, http.StatusServiceUnavailable, "Try again", "retry", nil)
}

var views = template.Must(template.New("").Parse(`
{{define "login"}}<div class="card">
<h1>Sign in</h1>
{{with .Error}}<p class="flash error" role="alert">{{.}}</p>{{end}}
{{with .Message}}<p class="flash" role="status">{{.}}</p>{{end}}
<form method="post" action="/login" class="stack">
<input type="hidden" name="next" value="{{.Next}}">
<label>Username <input name="username" value="{{.Username}}" autocomplete="username" required{{if not .Username}} autofocus{{end}}></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required{{if .Username}} autofocus{{end}}></label>
<button class="btn primary">Sign in</button>
</form>
<p class="muted"><small>The demo users and their passwords are printed when the demo starts.</small></p>
</div>{{end}}

{{define "retry"}}<div class="card">
<h1>Please try again</h1>
<p class="flash error" role="alert">The service is briefly unavailable. Your session is safe; please try again in a moment.</p>
</div>{{end}}

{{define "home"}}<h1>Hello, {{.User.Username}}</h1>
<p class="lead">You are signed in{{if .User.IsAdmin}} as an administrator{{end}}. This is the session of this browser:</p>
<dl class="fields">
<dt>Session</dt><dd class="mono">{{.Session.ID}}</dd>
<dt>Device</dt><dd>{{.Device}}</dd>
<dt>IP address</dt><dd class="mono">{{.Session.IP}}</dd>
<dt>Location</dt><dd>{{.Location}}</dd>
<dt>Signed in</dt><dd>{{.Session.CreatedAt.Format "2006-01-02 15:04:05 UTC"}}</dd>
<dt>Last activity</dt><dd>{{.Session.LastActivity.Format "2006-01-02 15:04:05 UTC"}}</dd>
<dt>Expires</dt><dd>{{.Session.ExpireDate.Format "2006-01-02 15:04:05 UTC"}}</dd>
<dt>Stored values</dt><dd>{{range $i, $k := .Keys}}{{if $i}}, {{end}}<code>{{$k}}</code>{{else}}none{{end}}</dd>
</dl>
<form method="get" action="{{.SessionsURL}}" class="below"><button class="btn primary">See all your sessions</button>{{if .User.IsAdmin}}<a href="{{.AdminURL}}">Every session (admin)</a>{{end}}</form>
{{end}}
`))

// view executes a demo template inside the pages' layout.
func (a *app) view(w http.ResponseWriter, r *http.Request, status int, title, name string, data any) {
	var buf bytes.Buffer
	if err := views.ExecuteTemplate(&buf, name, data); err != nil {
		slog.ErrorContext(r.Context(), "rendering", "page", name, "err", err)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	a.pages.Render(w, r, status, title, template.HTML(buf.String()))
}

// textOK reports whether a form value may reach a query: valid UTF-8
// without NUL (PostgreSQL refuses both with an error).
func textOK(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// safeNext returns next when it is a path on this site, else "/".
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}

type loginView struct {
	Error, Message, Username, Next string
}

func (a *app) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	u, err := a.user(r)
	if err != nil {
		a.unavailable(w, r, "checking the session", err)
		return
	}
	if u != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	v := loginView{Next: next}
	if r.URL.Query().Get("done") == "out" {
		v.Message = "You are signed out."
	}
	a.view(w, r, http.StatusOK, "Sign in", "login", v)
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		a.view(w, r, http.StatusBadRequest, "Sign in", "login", loginView{Error: "The form could not be read. Please try again.", Next: "/"})
		return
	}
	name, pass := strings.TrimSpace(r.PostForm.Get("username")), r.PostForm.Get("password")
	if !textOK(name) || !textOK(pass) || !textOK(r.PostForm.Get("next")) {
		a.view(w, r, http.StatusBadRequest, "Sign in", "login", loginView{Error: "The form holds characters that are not allowed.", Next: "/"})
		return
	}
	v := loginView{Username: name, Next: safeNext(r.PostForm.Get("next"))}
	if name == "" || pass == "" {
		v.Error = "Enter your username and password."
		a.view(w, r, http.StatusBadRequest, "Sign in", "login", v)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	u, err := a.client.User.Query().Where(user.Username(name)).Only(ctx)
	cancel()
	if err != nil && !ent.IsNotFound(err) {
		a.unavailable(w, r, "loading the user at login", err)
		return
	}
	var hash []byte
	if u != nil {
		hash = u.PasswordHash
	}
	if !checkPassword(hash, pass) || u == nil {
		v.Error = "Wrong username or password."
		a.view(w, r, http.StatusUnauthorized, "Sign in", "login", v)
		return
	}
	s := qsessions.FromContext(r.Context())
	// Values set before Login are written by Login's one INSERT.
	_ = s.Set("login_method", "password")
	_ = s.Set("login_at", time.Now().UTC())
	if err := s.Login(r.Context(), u.ID); err != nil {
		if errors.Is(err, qsessions.ErrUnavailable) {
			a.unavailable(w, r, "signing in", err)
			return
		}
		a.logs.Log(r.Context(), slog.Default(), slog.LevelError, "login", "demo: signing in failed", "err", err)
		v.Error = "Signing in failed on our side. Please try again."
		a.view(w, r, http.StatusInternalServerError, "Sign in", "login", v)
		return
	}
	a.startDeviceBinding(w, r, s)
	http.Redirect(w, r, v.Next, http.StatusSeeOther)
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	if err := qsessions.FromContext(r.Context()).Logout(r.Context()); err != nil {
		a.unavailable(w, r, "signing out", err)
		return
	}
	http.Redirect(w, r, "/login?done=out", http.StatusSeeOther)
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	u, err := a.user(r)
	if err != nil {
		a.unavailable(w, r, "checking the session", err)
		return
	}
	if u == nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	s := qsessions.FromContext(r.Context())
	rec := s.Record()
	if rec == nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	info := qsessions.InfoOf(rec)
	info.Current = true
	loc := "Unknown"
	if ip, err := netip.ParseAddr(info.IP); err == nil {
		if !location.Routable(ip) {
			loc = "Local network"
		} else if a.geo != nil {
			if d := a.geo.Describe(ip); d != "" {
				loc = d
			}
		}
	}
	a.view(w, r, http.StatusOK, "Home", "home", map[string]any{
		"User": u, "Session": info, "Device": device.Parse(info.UserAgent).Label(), "Location": loc, "Keys": s.Keys(),
		"SessionsURL": a.pages.URL("/sessions"), "AdminURL": a.pages.URL("/admin/sessions"),
	})
}
