package qsessions_test

// The Examples and handlers of this file are what docs/sessions.md quotes
// (docs/docs_test.go checks that every Go block of the docs is compiled
// code). They run on the module's reference schema (package ent), which
// has the same generated API as an app's own ent package.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/device"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/ent/session"
	"github.com/qsessions/qsessions/middleware"
	"github.com/qsessions/qsessions/qsessionstest"
)

// exampleClient opens the reference schema on a new SQLite file, as an app
// opens its own ent client; done closes and removes it.
func exampleClient() (client *ent.Client, done func()) {
	dir, err := os.MkdirTemp("", "qsessions-example")
	if err != nil {
		log.Fatal(err)
	}
	client, err = ent.Open("sqlite3", "file:"+filepath.Join(dir, "app.db")+"?_fk=1&_busy_timeout=5000")
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Schema.Create(context.Background()); err != nil {
		log.Fatal(err)
	}
	return client, func() { client.Close(); os.RemoveAll(dir) }
}

// The Manager over the generated Store, with some of its settings.
func ExampleNew() {
	client, done := exampleClient()
	defer done()
	ctx := context.Background()

	store := ent.NewSessionStore(client) // generated into your ent package; once per client
	if err := store.Check(ctx); err != nil {
		log.Fatal(err) // the table or a column is missing: apply your migrations
	}
	m := qsessions.New(backend.NewDB(store))
	m.Lifetime = 30 * 24 * time.Hour   // absolute, from the first save; default 14 days
	m.IdleTimeout = 7 * 24 * time.Hour // ends sessions unused this long; default off
	m.MaxSessionsPerUser = 20          // a login past it ends the oldest; default 100
	m.Timeout = 2 * time.Second        // bounds each database or cache call; default 3 s
	m.StartCleaner(ctx)                // deletes expired rows every CleanupInterval (1 h)
	defer m.StopCleaner()

	fmt.Println(m.Lifetime, m.ActivityInterval)
	// Output: 720h0m0s 1m0s
}

// preferences keeps a value in the visitor's session, signed in or not.
func preferences(w http.ResponseWriter, r *http.Request) {
	s := qsessions.FromContext(r.Context())
	if theme := r.PostFormValue("theme"); theme != "" {
		if err := s.Set("theme", theme); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest) // ErrTooLarge, ErrUnsupportedValue
			return
		}
	}
	fmt.Fprintf(w, "theme: %q\n", s.GetString("theme"))
}

// A handler reads and writes the request's session; the middleware loads it
// on first use and saves it before the response headers.
func ExampleFromContext() {
	m := qsessionstest.NewManager() // in memory; an app uses its ent Store
	h := middleware.New(m, middleware.Options{})(http.HandlerFunc(preferences))

	r := httptest.NewRequest("POST", "/prefs", strings.NewReader("theme=dark"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Print(w.Body)
	cookie := w.Result().Cookies()[0]

	r = httptest.NewRequest("GET", "/prefs", nil)
	r.AddCookie(cookie)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Print(w.Body)
	// Output:
	// theme: "dark"
	// theme: "dark"
}

// Cart is an app type kept in sessions.
type Cart struct {
	Items []string `json:"items"`
}

func init() { qsessions.Register[Cart]("example.cart") } // stored by name, as JSON

// addToCart keeps a registered struct type in the session.
func addToCart(w http.ResponseWriter, r *http.Request) {
	s := qsessions.FromContext(r.Context())
	cart, _ := qsessions.GetAs[Cart](s, "example.cart") // the zero Cart when there is none
	cart.Items = append(cart.Items, r.PostFormValue("item"))
	if err := s.Set("example.cart", cart); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintln(w, strings.Join(cart.Items, ", "))
}

func ExampleRegister() {
	m := qsessionstest.NewManager()
	h := middleware.New(m, middleware.Options{})(http.HandlerFunc(addToCart))
	var cookies []*http.Cookie
	for _, item := range []string{"tea", "milk"} {
		r := httptest.NewRequest("POST", "/cart", strings.NewReader("item="+item))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range cookies {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Print(w.Body)
		if c := w.Result().Cookies(); len(c) > 0 {
			cookies = c
		}
	}
	// Output:
	// tea
	// tea, milk
}

// signIn signs a user in after the app checked the password, with a
// "remember me" box.
func signIn(w http.ResponseWriter, r *http.Request, userID int) {
	s := qsessions.FromContext(r.Context())
	if err := s.SetRememberMe(r.PostFormValue("remember") == "on"); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if err := s.Renew(); err != nil { // a fresh deadline, not the anonymous session's
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if err := s.Login(r.Context(), userID); err != nil { // a new token: no session fixation
		if errors.Is(err, qsessions.ErrUnavailable) {
			w.Header().Set("Retry-After", "2")
			http.Error(w, "Please try again.", http.StatusServiceUnavailable) // never "signed out"
			return
		}
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func ExampleSession_Login() {
	m := qsessionstest.NewManager()
	m.RememberMeLifetime = 90 * 24 * time.Hour
	h := middleware.New(m, middleware.Options{Cookie: middleware.Cookie{BrowserSession: true}})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { signIn(w, r, 42) }))
	for _, remember := range []string{"off", "on"} {
		r := httptest.NewRequest("POST", "/login", strings.NewReader("remember="+remember))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		c := w.Result().Cookies()[0]
		fmt.Printf("remember %s: %d, persistent cookie %v\n", remember, w.Code, !c.Expires.IsZero())
	}
	// Output:
	// remember off: 303, persistent cookie false
	// remember on: 303, persistent cookie true
}

// mySessions lists the signed-in user's sessions ("where you're signed in").
func mySessions(m *qsessions.Manager) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		userID, err := qsessions.FromContext(r.Context()).User()
		if err != nil {
			http.Error(w, "Please try again.", http.StatusServiceUnavailable)
			return
		}
		if userID == nil {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		list, err := m.UserSessions(r.Context(), userID) // newest activity first
		if err != nil {
			http.Error(w, "Please try again.", http.StatusServiceUnavailable)
			return
		}
		for _, s := range list {
			fmt.Fprintf(w, "%s %-17s %-15s current=%v\n", s.ID, device.Parse(s.UserAgent).Label(), s.IP, s.Current)
		}
	}
}

// revokeSession ends one of the signed-in user's sessions by its public id.
func revokeSession(m *qsessions.Manager) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		userID, err := qsessions.FromContext(r.Context()).User()
		if userID == nil || err != nil {
			http.Error(w, "Sign in first.", http.StatusUnauthorized)
			return
		}
		err = m.Revoke(r.Context(), userID, r.PathValue("id")) // only this user's live sessions
		switch {
		case errors.Is(err, backend.ErrNotFound):
			http.NotFound(w, r) // someone else's, expired, or unknown: nothing ended
		case err != nil:
			http.Error(w, "Please try again.", http.StatusServiceUnavailable)
		default:
			http.Redirect(w, r, "/account/sessions", http.StatusSeeOther)
		}
	}
}

// changePassword ends the user's other sessions once the new password is
// stored: whoever knew the old one is signed out everywhere but here.
func changePassword(m *qsessions.Manager, setPassword func(ctx context.Context, userID any, pass string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		userID, err := qsessions.FromContext(r.Context()).User()
		if userID == nil || err != nil {
			http.Error(w, "Sign in first.", http.StatusUnauthorized)
			return
		}
		if err := setPassword(r.Context(), userID, r.PostFormValue("password")); err != nil {
			http.Error(w, "Please try again.", http.StatusServiceUnavailable)
			return
		}
		n, err := m.RevokeOthers(r.Context(), userID) // RevokeUser would end this one too
		if err != nil {
			http.Error(w, "Please try again.", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "Password changed; %d other sessions signed out.\n", n)
	}
}

func ExampleManager_UserSessions() {
	client, done := exampleClient()
	defer done()
	m := qsessions.New(backend.NewDB(ent.NewSessionStore(client)))
	alice := client.User.Create().SetUsername("alice").SaveX(context.Background())

	mux := http.NewServeMux()
	mux.Handle("GET /account/sessions", mySessions(m))
	mux.Handle("POST /account/sessions/{id}/revoke", revokeSession(m))
	mux.Handle("POST /account/password", changePassword(m, func(context.Context, any, string) error { return nil }))
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) { signIn(w, r, alice.ID) })
	h := middleware.New(m, middleware.Options{})(mux)
	do := func(method, path, ua, ip string, c *http.Cookie) (*httptest.ResponseRecorder, *http.Cookie) {
		r := httptest.NewRequest(method, path, nil)
		r.Header.Set("User-Agent", ua)
		r.RemoteAddr = ip + ":4711"
		if c != nil {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if cs := w.Result().Cookies(); len(cs) > 0 {
			c = cs[0]
		}
		return w, c
	}
	const (
		chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
		iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
	)
	_, laptop := do("POST", "/login", chrome, "203.0.113.7", nil)
	_, phone := do("POST", "/login", iphone, "198.51.100.23", nil)
	_, tablet := do("POST", "/login", iphone, "198.51.100.24", nil)
	w, _ := do("GET", "/account/sessions", chrome, "203.0.113.7", laptop)
	fmt.Print(idless(w.Body.String()))

	w, _ = do("POST", "/account/sessions/0123456789abcdef/revoke", chrome, "203.0.113.7", laptop)
	fmt.Println("revoke an unknown id:", w.Code)
	w, _ = do("POST", "/account/password", iphone, "198.51.100.23", phone)
	fmt.Print(w.Body)
	w, _ = do("GET", "/account/sessions", iphone, "198.51.100.24", tablet)
	fmt.Println("the tablet afterwards:", w.Code, w.Header().Get("Location"))
	// Output:
	// ID Safari on iPhone  198.51.100.24   current=false
	// ID Safari on iPhone  198.51.100.23   current=false
	// ID Chrome on Windows 203.0.113.7     current=true
	// revoke an unknown id: 404
	// Password changed; 2 other sessions signed out.
	// the tablet afterwards: 303 /login
}

// idless replaces the public ids at the start of lines by "ID".
func idless(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if len(l) > backend.PublicIDLen {
			lines[i] = "ID" + l[backend.PublicIDLen:]
		}
	}
	return strings.Join(lines, "")
}

// Sessions are ent entities of your schema: query them through the graph,
// and delete them with ent; the generated hooks tell the cache and OnEvent.
func ExampleManager_RevokeUser() {
	client, done := exampleClient()
	defer done()
	ctx := context.Background()
	m := qsessions.New(backend.NewDB(ent.NewSessionStore(client)))
	u := client.User.Create().SetUsername("bob").SaveX(ctx)
	for _, ip := range []string{"203.0.113.7", "203.0.113.8", "198.51.100.23"} {
		if err := m.Start(ctx, "", ip, "curl/8.4.0").Login(ctx, u.ID); err != nil {
			log.Fatal(err)
		}
	}

	live, err := u.QuerySessions().Where(session.ExpireDateGT(time.Now())).All(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(live), "live sessions, e.g.", len(live[0].PublicID()), "hex digits:", live[0].PublicID() == backend.PublicID(live[0].ID))
	// Through ent, by any predicate (the hooks evict them from a cache):
	n, err := client.Session.Delete().Where(session.UserID(u.ID), session.IPHasPrefix("203.0.113.")).Exec(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, "deleted through ent")
	// Or through the Manager, e.g. when an account is locked:
	n, err = m.RevokeUser(qsessions.WithCause(ctx, qsessions.CauseAdmin), u.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, "revoked by the Manager")
	// Output:
	// 3 live sessions, e.g. 16 hex digits: true
	// 2 deleted through ent
	// 1 revoked by the Manager
}

// OnEvent hears every sign-in, sign-out, revoke and change of address after
// it was committed; package alerts builds sign-in alerts and a security log
// on it.
func ExampleEvent() {
	m := qsessionstest.NewManager()
	m.OnEvent = func(ctx context.Context, e qsessions.Event) {
		fmt.Println(e.Kind, e.Cause, e.UserID, e.IP) // an app logs it, or queues an e-mail
	}
	ctx := context.Background()
	s := m.Start(ctx, "", "203.0.113.7", "curl/8.4.0")
	if err := s.Login(ctx, 42); err != nil {
		log.Fatal(err)
	}
	if _, err := m.RevokeUser(ctx, 42); err != nil {
		log.Fatal(err)
	}
	// Output:
	// sign-in  42 203.0.113.7
	// revoke app 42
}

// whoami is an app handler that reads the signed-in user.
func whoami(w http.ResponseWriter, r *http.Request) {
	s := qsessions.FromContext(r.Context())
	fmt.Fprintf(w, "user %v, theme %s\n", s.UserID(), s.GetString("theme"))
}

// Handler tests sign in without a database: qsessionstest.
func TestExampleHandlerTest(t *testing.T) {
	m := qsessionstest.NewManager()
	h := middleware.New(m, middleware.Options{})(http.HandlerFunc(whoami))

	r := httptest.NewRequest("GET", "/whoami", nil)
	r.AddCookie(qsessionstest.LoginAs(t, m, 42, map[string]any{"theme": "dark"}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if got := w.Body.String(); got != "user 42, theme dark\n" {
		t.Errorf("got %q", got)
	}
}
