// Package pages serves reusable session-management pages for apps that use
// qsessions: "your sessions" (device, location, IP, created, last activity,
// revoke one, sign out everywhere else), the same list as JSON, and, for
// admins, every session with filters and a detail page that shows the
// decoded session data. The pages are plain html/template with one inline
// stylesheet; they need no JavaScript.
//
// An app mounts them on its mux, inside the qsessions middleware, with a
// few callbacks that tell the pages about its users:
//
//	p, err := pages.New(pages.Config{
//		Manager:  m,
//		IsAdmin:  func(r *http.Request) bool { ... },
//		UserName: func(ctx context.Context, id any) string { ... },
//		Admin:    ent.NewSessionAdminSource(client), // generated; nil: no admin pages
//	})
//	if err != nil { ... }
//	p.Register(mux) // GET /sessions, POST /sessions/{id}/revoke, GET /api/sessions, GET /admin/sessions, ...
//	handler := middleware.New(m, middleware.Options{})(mux)
//
// Anonymous visitors are redirected to Config.LoginURL and no session row is
// written for them. When the session cannot be loaded (the database is down
// or slower than the Manager's Timeout) the pages answer 503 with
// Retry-After, never a redirect to the login page: the session may be
// intact, and signing in again would not help. Every POST is checked by an http.CrossOriginProtection
// (cross-site requests get 403) whatever the app wraps around the pages. A
// user revokes only their own sessions (any other id is 404); the admin
// pages need Config.IsAdmin (403 otherwise) and are read-only apart from
// revoking.
package pages

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/qsessions/qsessions/internal/text"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/device"
	"github.com/qsessions/qsessions/internal/ratelog"
	"github.com/qsessions/qsessions/location"
)

// Defaults of Config.
const (
	// DefaultLoginURL is where anonymous visitors are sent, with ?next=.
	DefaultLoginURL = "/login"
	// DefaultPageSize is how many sessions an admin page lists.
	DefaultPageSize = 50
	// MaxPageSize bounds Config.PageSize: one admin page asks the
	// AdminSource for at most this many rows.
	MaxPageSize = 500
	// MaxSearch is the longest search text passed to an AdminSource, in
	// characters; longer input is cut.
	MaxSearch = 100
)

// Config configures New. Manager is required.
type Config struct {
	// Manager lists and revokes the signed-in user's sessions.
	Manager *qsessions.Manager
	// CurrentUser returns the signed-in user of r in the app's ID type: nil
	// and no error for an anonymous visitor, an error when it could not be
	// found out (the pages then answer 503). It runs once per request. nil
	// means the session's user, qsessions.FromContext(r.Context()).User():
	// one session load (nothing without a cookie, so anonymous visits write
	// nothing). Apps that check more (the user still exists, is active) set
	// their own.
	CurrentUser func(r *http.Request) (userID any, err error)
	// IsAdmin reports whether the signed-in user of r may use the admin
	// pages; nil means nobody may. It runs once per admin request.
	IsAdmin func(r *http.Request) bool
	// UserName returns the name to show for a user; nil shows the ID. The
	// pages call it once per request for the signed-in user and once per
	// distinct owner that an AdminSource row leaves without a name.
	UserName func(ctx context.Context, userID any) string
	// Admin lists every session for the admin pages: the one the entc
	// extension generates (ent.NewSessionAdminSource(client)) or the app's
	// own; nil leaves the admin routes unregistered.
	Admin qsessions.AdminSource
	// Locator turns IP addresses into places (location.Open); nil shows
	// none. Each page looks every distinct IP up once.
	Locator location.Locator
	// Events is the security log package alerts writes (the generated
	// New<Event>Log); set, the sessions page shows its notices of new
	// sign-ins and "Recent security events" (one EventLog.Recent more), and
	// GET /api/sessions/events serves them (see events.go). nil: none.
	Events qsessions.EventLog
	// Prefix is the path the pages are mounted under: "" (the default) gives
	// /sessions, /api/sessions and /admin/sessions; "/account" gives
	// /account/sessions and so on. It must start with "/" and not end
	// with one.
	Prefix string
	// LoginURL is where anonymous visitors are redirected, with the page
	// they asked for in ?next=; default DefaultLoginURL.
	LoginURL string
	// LogoutURL, when set, adds a "Sign out" button that POSTs there.
	LogoutURL string
	// HomeURL is the target of the app name in the page header; default "/".
	HomeURL string
	// AppName is shown in the page header and the window title; default
	// "Sessions".
	AppName string
	// PageSize is how many sessions an admin page lists; default
	// DefaultPageSize, at most MaxPageSize.
	PageSize int
	// CrossOrigin checks every POST of the pages; nil means
	// http.NewCrossOriginProtection() (same-origin browser requests and
	// non-browser clients pass, cross-site browser requests get 403).
	CrossOrigin *http.CrossOriginProtection
	// Logger receives errors that the visitor only sees as a 500; default
	// slog.Default(). Keys and tokens are never logged.
	Logger *slog.Logger
}

// Pages serves the session-management pages. Create it with New; it is safe
// for concurrent use.
type Pages struct {
	cfg  Config
	tmpl *template.Template
	mux  *http.ServeMux
	logs ratelog.Limiter
}

// New checks cfg and returns the pages. It errors, naming the field, when
// Manager is missing or Prefix, LoginURL or PageSize is invalid. Cost:
// parsing the templates once.
func New(cfg Config) (*Pages, error) {
	switch {
	case cfg.Manager == nil:
		return nil, errors.New("pages: Config.Manager is required")
	case cfg.Prefix != "" && (!strings.HasPrefix(cfg.Prefix, "/") || strings.HasSuffix(cfg.Prefix, "/") || strings.ContainsAny(cfg.Prefix, "{}? \t\n")):
		return nil, fmt.Errorf("pages: Config.Prefix %q must start with \"/\", not end with one, and hold no {, }, ? or spaces", cfg.Prefix)
	case cfg.PageSize < 0 || cfg.PageSize > MaxPageSize:
		return nil, fmt.Errorf("pages: Config.PageSize %d must be between 0 (the default, %d) and %d", cfg.PageSize, DefaultPageSize, MaxPageSize)
	}
	if cfg.LoginURL == "" {
		cfg.LoginURL = DefaultLoginURL
	}
	if _, err := url.Parse(cfg.LoginURL); err != nil {
		return nil, fmt.Errorf("pages: Config.LoginURL %q: %v", cfg.LoginURL, err)
	}
	if cfg.HomeURL == "" {
		cfg.HomeURL = "/"
	}
	if cfg.AppName == "" {
		cfg.AppName = "Sessions"
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.CrossOrigin == nil {
		cfg.CrossOrigin = http.NewCrossOriginProtection()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CurrentUser == nil {
		cfg.CurrentUser = func(r *http.Request) (any, error) {
			s := qsessions.FromContext(r.Context())
			if s == nil {
				return nil, errors.New("pages: no session in the request context: mount the pages inside the qsessions middleware")
			}
			return s.User()
		}
	}
	p := &Pages{cfg: cfg}
	t, err := template.New("").Funcs(p.funcs()).Parse(templates + eventTemplates)
	if err != nil {
		return nil, fmt.Errorf("pages: parsing the templates: %w", err)
	}
	p.tmpl = t
	p.mux = http.NewServeMux()
	p.Register(p.mux)
	return p, nil
}

// Paths of the pages, relative to Config.Prefix.
const (
	pathSessions     = "/sessions"
	pathRevokeOthers = "/sessions/revoke-others"
	pathAPI          = "/api/sessions"
	pathAdmin        = "/admin/sessions"
)

// Register adds the routes to mux (Go 1.22 patterns, Prefix first):
//
//	GET  /sessions                    the user's live sessions
//	POST /sessions/{id}/revoke        end one of them (404 unless the user's)
//	POST /sessions/revoke-others      end all but the current one
//	GET  /api/sessions                the same list as JSON
//	GET  /api/sessions/events         the security events as JSON (Config.Events)
//	GET  /admin/sessions              every session, with filters (admins)
//	GET  /admin/sessions/{id}         one session and its decoded data (admins)
//	POST /admin/sessions/{id}/revoke  end any session (admins)
//
// The admin routes are registered only when Config.Admin is set. Register
// panics, as ServeMux does, if a pattern conflicts with one already on mux.
//
// Per request the pages cost one CurrentUser and one UserName call, one
// IsAdmin call (for the navigation), and: the list and the JSON one
// Manager.UserSessions (one indexed query) and one Locator lookup per
// distinct IP; a revoke the user's list plus one DELETE; the admin list one
// AdminSource.List; an admin detail or revoke one AdminSource.Get (plus one
// DELETE through the Manager's Backend).
func (p *Pages) Register(mux *http.ServeMux) {
	pre := p.cfg.Prefix
	post := func(h http.HandlerFunc) http.Handler { return p.cfg.CrossOrigin.Handler(h) }
	mux.HandleFunc("GET "+pre+pathSessions, p.sessions)
	mux.Handle("POST "+pre+pathSessions+"/{id}/revoke", post(p.revoke))
	mux.Handle("POST "+pre+pathRevokeOthers, post(p.revokeOthers))
	mux.HandleFunc("GET "+pre+pathAPI, p.api)
	p.registerEvents(mux)
	if p.cfg.Admin != nil {
		mux.HandleFunc("GET "+pre+pathAdmin, p.adminList)
		mux.HandleFunc("GET "+pre+pathAdmin+"/{id}", p.adminDetail)
		mux.Handle("POST "+pre+pathAdmin+"/{id}/revoke", post(p.adminRevoke))
	}
}

// ServeHTTP serves the pages' routes (see Register) from a mux of their
// own and answers 404 for any other path, for apps that mount the pages as
// one handler, e.g. mux.Handle("/account/", p) with Prefix "/account". It
// must run inside the qsessions middleware, like Register's routes.
func (p *Pages) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.mux.ServeHTTP(w, r) }

// URL returns the path of one of the pages under Prefix: URL("/sessions"),
// URL("/admin/sessions") and so on, for links from the app's own pages. It
// only concatenates strings.
func (p *Pages) URL(path string) string { return p.cfg.Prefix + path }

// now is the Manager's clock, UTC.
func (p *Pages) now() time.Time {
	if p.cfg.Manager.Now != nil {
		return backend.Time(p.cfg.Manager.Now())
	}
	return backend.Time(time.Now())
}

// viewer is who asks: the signed-in user, if any.
type viewer struct {
	SignedIn bool
	ID       any
	Name     string
	Admin    bool
	Session  string // the public id of the request's session, "" if none
}

// who returns the signed-in user of r (SignedIn false for an anonymous
// visitor), or the error that kept the pages from finding out.
func (p *Pages) who(r *http.Request) (viewer, error) {
	id, err := p.cfg.CurrentUser(r)
	if err != nil || id == nil {
		return viewer{}, err
	}
	v := viewer{SignedIn: true, ID: id, Name: p.userName(r.Context(), id)}
	if s := qsessions.FromContext(r.Context()); s != nil {
		v.Session = s.ID()
	}
	return v, nil
}

// signedIn returns the signed-in user of r, or answers (503 when the user
// could not be found out, a redirect to the login page for an anonymous
// visitor) and returns false.
func (p *Pages) signedIn(w http.ResponseWriter, r *http.Request) (viewer, bool) {
	v, err := p.who(r)
	switch {
	case err != nil:
		p.failErr(w, r, v, "Your session could not be checked just now.", err)
		return v, false
	case !v.SignedIn:
		p.toLogin(w, r)
		return v, false
	}
	return v, true
}

func (p *Pages) userName(ctx context.Context, id any) string {
	if id == nil {
		return ""
	}
	if p.cfg.UserName != nil {
		if n := p.cfg.UserName(ctx, id); n != "" {
			return n
		}
	}
	return fmt.Sprint(id)
}

func (p *Pages) isAdmin(r *http.Request) bool {
	return p.cfg.IsAdmin != nil && p.cfg.IsAdmin(r)
}

// toLogin redirects an anonymous visitor to the login page, with the page
// asked for (a GET's own URL, else the sessions page) in ?next=.
func (p *Pages) toLogin(w http.ResponseWriter, r *http.Request) {
	next := r.URL.RequestURI()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		next = p.URL(pathSessions)
	}
	u, _ := url.Parse(p.cfg.LoginURL) // checked by New
	q := u.Query()
	q.Set("next", next)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// row is one session as the templates show it.
type row struct {
	ID            string
	Current       bool
	Owner         string
	OwnerID       string
	Device        string // "Chrome on Windows"
	DeviceVersion string // "Chrome 120 on Windows", for the admin list
	DeviceFull    string // "Other / Windows 10 / Chrome 120.0.0.0"
	Kind          string
	UserAgent     string
	IP            string
	Location      string
	CreatedAt     time.Time
	LastActivity  time.Time
	ExpireDate    time.Time
	Expired       bool
	DeviceBound   bool // device-bound (DBSC): its cookie is worth nothing without the device's key
}

// locate looks up each distinct IP of list once with the Locator and
// returns the results by IP, so a page of 100 sessions from three addresses
// costs three lookups. Failed lookups are left out.
func (p *Pages) locate(list []qsessions.Info) map[string]location.Info {
	out := make(map[string]location.Info)
	if p.cfg.Locator == nil {
		return out
	}
	for _, in := range list {
		if _, done := out[in.IP]; done {
			continue
		}
		if ip, err := netip.ParseAddr(in.IP); err == nil {
			if li, err := p.cfg.Locator.Lookup(ip); err == nil {
				out[in.IP] = li
			}
		}
	}
	return out
}

// rows turns Infos into template rows, one location lookup per distinct IP.
func (p *Pages) rows(list []qsessions.Info, now time.Time) []row {
	places := p.locate(list)
	out := make([]row, len(list))
	for i, in := range list {
		d := device.Parse(in.UserAgent)
		out[i] = row{
			ID: in.ID, Current: in.Current,
			Device: d.Label(), DeviceVersion: d.VersionLabel(), DeviceFull: d.String(), Kind: d.Kind.String(), UserAgent: in.UserAgent,
			IP: in.IP, Location: placeName(in.IP, places),
			CreatedAt: in.CreatedAt, LastActivity: in.LastActivity, ExpireDate: in.ExpireDate,
			Expired: !in.ExpireDate.After(now), DeviceBound: in.DeviceBound,
		}
	}
	return out
}

// placeName describes ip for a page: the looked-up place, or why there is
// none.
func placeName(ip string, places map[string]location.Info) string {
	if s := places[ip].String(); s != "" {
		return s
	}
	a, err := netip.ParseAddr(ip)
	switch {
	case err != nil:
		return "Unknown"
	case !location.Routable(a):
		return "Local network"
	}
	return "Unknown"
}

// messages are the confirmations shown after a redirect (?done=...); only
// these fixed texts reach the page.
var messages = map[string]string{
	"revoked": "The session was revoked. That device is signed out.",
	"others":  "Every other session was revoked. Only this device is still signed in.",
	"none":    "There were no other sessions to revoke.",
}

func message(r *http.Request) string {
	msg := messages[r.URL.Query().Get("done")]
	if n, err := strconv.Atoi(r.URL.Query().Get("n")); err == nil && r.URL.Query().Get("done") == "others" {
		verb := "were"
		if n == 1 {
			verb = "was"
		}
		msg = text.Count(n, "other session") + " " + verb + " revoked. Only this device is still signed in."
	}
	return msg
}

// page is what the layout needs, plus the page's own data.
type page struct {
	Title   string
	Nav     string
	Viewer  viewer
	Message string
	Body    template.HTML
	Data    any
}

// Security headers of every page. The stylesheet is allowed by its hash,
// so the pages run with no script and no other style at all.
var (
	styleHash = func() string {
		sum := sha256.Sum256([]byte(stylesheet))
		return base64.StdEncoding.EncodeToString(sum[:])
	}()
	csp = "default-src 'none'; style-src 'sha256-" + styleHash + "'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

func setHeaders(h http.Header, contentType string) {
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	if strings.HasPrefix(contentType, "text/html") {
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
	}
}

// render executes template name into a buffer and writes it with status;
// a template error is a logged 500 with nothing half-written.
func (p *Pages) render(w http.ResponseWriter, r *http.Request, status int, name string, pg page) {
	var buf bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&buf, name, pg); err != nil {
		p.cfg.Logger.ErrorContext(r.Context(), "pages: rendering", "page", name, "err", err)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	setHeaders(w.Header(), "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Render writes an app's own page inside the pages' layout (header with
// the app name, navigation and the signed-in user; the same stylesheet and
// security headers), so a login or home page looks like the session pages.
// body is trusted HTML the app produced, e.g. with its own html/template
// executed into a buffer. The page may use the layout's classes: card,
// stack, flash, error, muted, fields, btn, danger. Cost: one CurrentUser and
// one UserName call.
func (p *Pages) Render(w http.ResponseWriter, r *http.Request, status int, title string, body template.HTML) {
	v, _ := p.who(r) // an app page renders even when the user is unknown
	if v.SignedIn {
		v.Admin = p.cfg.Admin != nil && p.isAdmin(r)
	}
	p.render(w, r, status, "app", page{Title: title, Viewer: v, Body: body})
}

// fail renders an error page, logging err (at most once a minute per
// status) when there is one.
func (p *Pages) fail(w http.ResponseWriter, r *http.Request, v viewer, status int, text string, err error) {
	if err != nil {
		p.logs.Log(r.Context(), p.cfg.Logger, slog.LevelError, strconv.Itoa(status)+" "+route(r), "pages: "+text, "path", r.URL.Path, "err", err)
	}
	p.render(w, r, status, "error", page{Title: http.StatusText(status), Viewer: v, Data: text})
}

// failErr answers a failed step: 503 with Retry-After when the session
// store did not answer (qsessions.ErrUnavailable: try again, the session is
// probably intact), 500 otherwise; either is logged.
func (p *Pages) failErr(w http.ResponseWriter, r *http.Request, v viewer, text string, err error) {
	if errors.Is(err, qsessions.ErrUnavailable) {
		w.Header().Set("Retry-After", retryAfter)
		p.fail(w, r, v, http.StatusServiceUnavailable, text+" Please try again in a moment.", err)
		return
	}
	p.fail(w, r, v, http.StatusInternalServerError, text, err)
}

// route names r's route for the log's rate limit: one line per minute per
// status and route (its mux pattern, else its path).
func route(r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	return r.Method + " " + r.URL.Path
}

// retryAfter is the Retry-After of a 503, in seconds.
const retryAfter = "2"

// sessions serves GET /sessions.
func (p *Pages) sessions(w http.ResponseWriter, r *http.Request) {
	v, ok := p.signedIn(w, r)
	if !ok {
		return
	}
	v.Admin = p.cfg.Admin != nil && p.isAdmin(r)
	list, err := p.cfg.Manager.UserSessions(r.Context(), v.ID)
	if err != nil {
		p.failErr(w, r, v, "Your sessions could not be listed.", err)
		return
	}
	currentFirst(list)
	now := p.now()
	rows := p.rows(list, now)
	others := 0
	for _, x := range rows {
		if !x.Current {
			others++
		}
	}
	p.render(w, r, http.StatusOK, "sessions", page{
		Title: "Your sessions", Nav: "sessions", Viewer: v, Message: message(r),
		Data: p.withEvents(r, v, rows, map[string]any{"Rows": rows, "Others": others}),
	})
}

// revoke serves POST /sessions/{id}/revoke.
func (p *Pages) revoke(w http.ResponseWriter, r *http.Request) {
	v, ok := p.signedIn(w, r)
	if !ok {
		return
	}
	id, ok := backend.ParsePublicID(r.PathValue("id"))
	if !ok {
		p.fail(w, r, v, http.StatusNotFound, "No such session: it has ended already, or it is not yours.", nil)
		return
	}
	if id == v.Session {
		// The user's own current session: that is signing out.
		if err := qsessions.FromContext(r.Context()).Logout(r.Context()); err != nil {
			p.failErr(w, r, v, "The session could not be revoked.", err)
			return
		}
		http.Redirect(w, r, p.cfg.LoginURL, http.StatusSeeOther)
		return
	}
	err := p.cfg.Manager.Revoke(r.Context(), v.ID, id)
	switch {
	case errors.Is(err, backend.ErrNotFound):
		p.fail(w, r, v, http.StatusNotFound, "No such session: it has ended already, or it is not yours.", nil)
		return
	case err != nil:
		p.failErr(w, r, v, "The session could not be revoked.", err)
		return
	}
	http.Redirect(w, r, p.URL(pathSessions)+"?done=revoked", http.StatusSeeOther)
}

// revokeOthers serves POST /sessions/revoke-others.
func (p *Pages) revokeOthers(w http.ResponseWriter, r *http.Request) {
	v, ok := p.signedIn(w, r)
	if !ok {
		return
	}
	n, err := p.cfg.Manager.RevokeOthers(r.Context(), v.ID)
	if err != nil {
		p.failErr(w, r, v, "The other sessions could not be revoked.", err)
		return
	}
	target := p.URL(pathSessions) + "?done=none"
	if n > 0 {
		target = p.URL(pathSessions) + "?done=others&n=" + strconv.Itoa(n)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// APISession is one session in the JSON of GET /api/sessions. Times are
// RFC 3339 in UTC.
type APISession struct {
	// ID is the public id (backend.PublicID), the {id} of the revoke URL.
	ID string `json:"id"`
	// Current marks the session of the request that asked.
	Current bool `json:"current"`
	// Device names the device for people (device.Info.Label): "Chrome on
	// Mac", "Safari on iPhone".
	Device string `json:"device"`
	// DeviceInfo is the parsed User-Agent.
	DeviceInfo device.Info `json:"device_info"`
	// Location is "City, Country", "Country", or "" when unknown.
	Location     string    `json:"location"`
	IP           string    `json:"ip"`
	UserAgent    string    `json:"user_agent"`
	CreatedAt    time.Time `json:"created_at"`
	LastActivity time.Time `json:"last_activity"`
	ExpireDate   time.Time `json:"expire_date"`
	// DeviceBound marks a device-bound session (DBSC, package dbsc): the
	// browser holds a device key, and the session's cookie alone is worth
	// nothing after a few minutes.
	DeviceBound bool `json:"device_bound"`
}

// APIResponse is the JSON body of GET /api/sessions: the user's live
// sessions, the current one first (it is active now), then newest activity
// first, as on the page.
type APIResponse struct {
	Sessions []APISession `json:"sessions"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	setHeaders(w.Header(), "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// api serves GET /api/sessions. An anonymous request gets 401 with
// {"error": ...} rather than a redirect, as API clients expect; a session
// that could not be checked gets 503 with Retry-After.
func (p *Pages) api(w http.ResponseWriter, r *http.Request) {
	_, list, ok := p.apiSessions(w, r)
	if !ok {
		return
	}
	currentFirst(list)
	places := p.locate(list)
	out := APIResponse{Sessions: make([]APISession, len(list))}
	for i, in := range list {
		d := device.Parse(in.UserAgent)
		out.Sessions[i] = APISession{
			ID: in.ID, Current: in.Current, Device: d.Label(), DeviceInfo: d,
			Location: places[in.IP].String(), IP: in.IP, UserAgent: in.UserAgent,
			CreatedAt: in.CreatedAt, LastActivity: in.LastActivity, ExpireDate: in.ExpireDate,
			DeviceBound: in.DeviceBound,
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// apiSessions reads the signed-in user and their live sessions for an API
// request; when it cannot, it has answered (401 for an anonymous request,
// 503 or 500 through apiFail) and ok is false. Cost: one CurrentUser call
// and one Manager.UserSessions.
func (p *Pages) apiSessions(w http.ResponseWriter, r *http.Request) (id any, list []qsessions.Info, ok bool) {
	id, err := p.cfg.CurrentUser(r)
	if err != nil {
		p.apiFail(w, r, "your session could not be checked", err)
		return nil, nil, false
	}
	if id == nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "not signed in"})
		return nil, nil, false
	}
	list, err = p.cfg.Manager.UserSessions(r.Context(), id)
	if err != nil {
		p.apiFail(w, r, "the sessions could not be listed", err)
		return nil, nil, false
	}
	return id, list, true
}

// apiFail answers an API request whose step failed: 503 with Retry-After
// when the session store did not answer, 500 otherwise; either is logged.
func (p *Pages) apiFail(w http.ResponseWriter, r *http.Request, text string, err error) {
	status := http.StatusInternalServerError
	if errors.Is(err, qsessions.ErrUnavailable) {
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", retryAfter)
	}
	p.logs.Log(r.Context(), p.cfg.Logger, slog.LevelError, strconv.Itoa(status)+" "+route(r), "pages: "+text, "path", r.URL.Path, "err", err)
	writeJSON(w, status, map[string]string{"error": text})
}

// funcs are the template functions; they read the Manager's clock.
func (p *Pages) funcs() template.FuncMap {
	return template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"ago": func(t time.Time) string { return relative(t, p.now()) },
		"url": p.URL,
		"cfg": func() Config { return p.cfg },
	}
}

// relative describes t from now: "just now", "5 minutes ago", "in 13 days".
func relative(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		if future {
			return "in under a minute"
		}
		return "just now"
	case d < time.Hour:
		n := int(d / time.Minute)
		s = text.Count(n, "minute")
	case d < 48*time.Hour:
		n := int(d / time.Hour)
		s = text.Count(n, "hour")
	default:
		n := int(d / (24 * time.Hour))
		s = fmt.Sprintf("%d days", n)
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// currentFirst moves the request's own session to the front: it is active
// now, whatever its last_activity (written at most once per
// ActivityInterval) says. The others keep the Manager's order, newest
// activity first.
func currentFirst(list []qsessions.Info) {
	slices.SortStableFunc(list, func(a, b qsessions.Info) int {
		switch {
		case a.Current == b.Current:
			return 0
		case a.Current:
			return -1
		}
		return 1
	})
}

// textOK reports whether s may reach a query: valid UTF-8 without NUL
// (PostgreSQL refuses both; the other databases would store or compare
// garbage).
func textOK(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }
