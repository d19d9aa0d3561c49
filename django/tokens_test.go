package django

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/django/djangotest"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/middleware"
)

// goApp is a Go app on the reference schema: a Manager with Django
// cookies accepted, behind the middleware.
type goApp struct {
	t      *testing.T
	db     *testutil.DB
	m      *qsessions.Manager
	target *Target
	srv    *httptest.Server
	// native turns a user ID's text into the Backend's type.
	native func(string) any
	logs   *syncWriter
}

// visit is what the app saw of one request.
type visit struct {
	user   any
	values map[string]any
	sess   *qsessions.Session
	cookie *http.Cookie // the Set-Cookie of the session, if any
}

// newGoApp builds the app on goDB over the reference ent store (ent) or
// sqlstore, with fb (nil: Tokens without a fallback).
func newGoApp(t *testing.T, goDB *testutil.DB, store string, fb *Fallback) *goApp {
	t.Helper()
	ctx := context.Background()
	a := &goApp{t: t, db: goDB, logs: &syncWriter{w: &bytes.Buffer{}}}
	target, err := NewTarget(ctx, goDB.SQL, goDB.Dialect)
	if err != nil {
		t.Fatal(err)
	}
	a.target = target
	var b backend.Backend
	switch store {
	case "ent":
		client := ent.NewClient(ent.Driver(entsql.OpenDB(goDB.Dialect, goDB.SQL)))
		b = backend.NewDB(ent.NewSessionStore(client))
		a.native = func(s string) any { n, _ := strconv.Atoi(s); return n }
	default:
		b = backend.NewDB(target.Store())
		a.native = func(s string) any { return s }
	}
	a.m = qsessions.New(b)
	a.m.Legacy = &Tokens{}
	if fb != nil {
		fb.Target, fb.Backend = target, b
		fb.Logger = slog.New(slog.NewTextHandler(a.logs, nil))
		tokens, err := NewTokens(ctx, fb)
		if err != nil {
			t.Fatal(err)
		}
		a.m.Legacy = tokens
	}
	var mu sync.Mutex
	a.srv = httptest.NewServer(middleware.New(a.m, middleware.Options{Cookie: middleware.Cookie{Insecure: true}})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := qsessions.FromContext(r.Context())
			switch r.URL.Path {
			case "/login":
				if err := s.Login(r.Context(), a.native(r.URL.Query().Get("user"))); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
			case "/touch":
				_ = s.Set("go", true)
			}
			uid, err := s.User()
			if err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			json.NewEncoder(w).Encode(map[string]any{"user": uid})
			visits.Store(r.Header.Get("X-Visit"), visit{user: uid, values: s.Values(), sess: s})
		}),
	))
	t.Cleanup(a.srv.Close)
	return a
}

// visits holds what each request saw, by its X-Visit header.
var visits sync.Map

// syncWriter serializes writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

// get requests path with the session cookie value token.
func (a *goApp) get(path, token string) visit {
	a.t.Helper()
	req, _ := http.NewRequest("GET", a.srv.URL+path, nil)
	id := strconv.FormatInt(time.Now().UnixNano(), 36) + token
	req.Header.Set("X-Visit", id)
	if token != "" {
		req.AddCookie(&http.Cookie{Name: "sessionid", Value: token})
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		var b bytes.Buffer
		b.ReadFrom(res.Body)
		a.t.Fatalf("GET %s: %d %s", path, res.StatusCode, b.String())
	}
	v, _ := visits.LoadAndDelete(id)
	out, _ := v.(visit)
	for _, c := range res.Cookies() {
		if c.Name == "sessionid" {
			out.cookie = c
		}
	}
	return out
}

// rows counts the Go app's session rows.
func (a *goApp) rows() int {
	a.t.Helper()
	var n int
	if err := a.db.SQL.QueryRow("SELECT COUNT(*) FROM qsessions_session").Scan(&n); err != nil {
		a.t.Fatal(err)
	}
	return n
}

// TestTokensFallbackRealDjango runs the cut-over fallback with sessions
// Django 3.2 made, on each database, through the middleware, over the
// reference ent store and over sqlstore: a Django cookie opens its user's
// session with its values in Go types, without a prior import; concurrent
// first requests share one import; a tampered cookie, an expired one and
// one of a user the Go app lacks open nothing; and a session revoked on
// the Go side never comes back, not after Django saves its row again, not
// after a login rotated it away.
func TestTokensFallbackRealDjango(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			for _, store := range []string{"ent", "sqlstore"} {
				t.Run(store, func(t *testing.T) {
					djangoDB, cfg, made := djangoMade(t, d) // the test has Django save rows
					testFallback(t, djangoDB, cfg, made, d, store)
				})
			}
		})
	}
}

func testFallback(t *testing.T, djangoDB *testutil.DB, cfg djangotest.Config, made djangotest.Made, d, store string) {
	ctx := context.Background()
	goDB := goDatabase(t, d)
	alice := made.Users["alice"]
	addUser(t, goDB, alice, "alice") // bob comes later
	signer, _ := NewSigner(secretKey, oldSecretKey)
	reader, _ := NewReader(djangoDB.SQL, djangoDB.Dialect, DjangoSession)
	a := newGoApp(t, goDB, store, &Fallback{Reader: reader, Signer: signer})

	// Signed in on the Django side, never imported: the first Go request
	// imports it.
	c := made.Case(t, "login_sha256")
	v := a.get("/", c.Key)
	if v.user != a.native(alice) {
		t.Fatalf("Django cookie opened user %#v, want %#v", v.user, a.native(alice))
	}
	want := c.WantValues(t)
	for _, k := range []string{AuthUserIDKey, AuthBackendKey, AuthHashKey} {
		delete(want, k)
	}
	if d := djangotest.Diff(v.values, want); d != "" {
		t.Fatalf("values through the Manager: %s", d)
	}
	if n, ok := qsessions.GetAs[int64](v.sess, "int"); !ok || n != 42 {
		t.Fatalf("GetAs[int64](int) = %v, %v", n, ok)
	}
	if s := v.sess.GetString("str"); s != "h\u00e9llo w\u00f6rld \u2713 \U0001F600" {
		t.Fatalf("GetString(str) = %q", s)
	}
	if l, ok := qsessions.GetAs[[]any](v.sess, "list"); !ok || len(l) != 5 || l[0] != int64(1) || l[1] != "two" || l[2] != 3.0 || l[3] != nil {
		t.Fatalf("GetAs[[]any](list) = %#v, %v", l, ok)
	}
	if m, ok := qsessions.GetAs[map[string]any](v.sess, "nested"); !ok || m["a"].(map[string]any)["e"] == nil {
		t.Fatalf("GetAs[map](nested) = %#v, %v", m, ok)
	}
	if !v.sess.GetBool("true") || v.sess.GetFloat64("float") != 1.5 {
		t.Fatal("GetBool/GetFloat64")
	}
	if v.cookie != nil {
		t.Fatalf("the first request set the cookie %v; it should keep Django's", v.cookie)
	}
	if v2 := a.get("/", c.Key); v2.user != a.native(alice) {
		t.Fatalf("second request: user %#v", v2.user)
	}
	if p := v.sess.Persist(); p != qsessions.PersistDefault {
		t.Fatalf("a session without set_expiry(0) came in as %v", p)
	}

	if v := a.get("/touch", c.Key); v.cookie == nil || v.cookie.MaxAge <= 0 {
		t.Fatalf("a persistent session saved without refreshing its cookie: %v", v.cookie)
	}

	// set_expiry(0) on the Django side: the session keeps its
	// browser-session cookie (Django's, without Max-Age) when the Go side
	// saves it, rather than being given a persistent one.
	bs := made.Case(t, "browser_session")
	if v := a.get("/", bs.Key); v.sess.Persist() != qsessions.PersistBrowser || v.values["x"] != int64(1) {
		t.Fatalf("set_expiry(0): Persist %v, values %v", v.sess.Persist(), v.values)
	}
	if v := a.get("/touch", bs.Key); v.cookie != nil && (v.cookie.MaxAge != 0 || !v.cookie.Expires.IsZero()) {
		t.Fatalf("set_expiry(0) saved with the persistent cookie %v", v.cookie)
	}
	rows := a.rows()

	// Concurrent first requests of one cookie: one import, every request
	// served, no cookie deleted.
	anon := made.Case(t, "anonymous")
	var wg sync.WaitGroup
	results := make(chan visit, 8)
	for range 8 {
		wg.Go(func() { results <- a.get("/", anon.Key) })
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r.user != nil || r.values["cart"] == nil || r.cookie != nil {
			t.Fatalf("concurrent first request: user %v, values %v, cookie %v", r.user, r.values, r.cookie)
		}
	}
	if a.rows() != rows+1 {
		t.Fatalf("%d rows after 8 concurrent first requests, want %d", a.rows(), rows+1)
	}

	// Nothing for a tampered, an expired or an unknown cookie, nor for a
	// user the Go app does not have (yet).
	for _, name := range []string{"tampered", "expired", "pickle", "legacy"} {
		if v := a.get("/", made.Case(t, name).Key); v.user != nil || len(v.values) != 0 {
			t.Fatalf("%s: user %v, values %v", name, v.user, v.values)
		}
	}
	if v := a.get("/", "abcdefghijklmnopqrstuvwxyz012345"); v.user != nil {
		t.Fatal("an unknown Django-shaped cookie opened a session")
	}
	for _, want := range []string{"reason=\"bad signature\"", "reason=pickle", "reason=\"missing user\""} {
		if !strings.Contains(a.logs.String(), want) {
			t.Fatalf("the log does not say %s:\n%s", want, a.logs)
		}
	}
	addUser(t, goDB, made.Users["bob"], "bob")
	if v := a.get("/", made.Case(t, "legacy").Key); v.user != a.native(made.Users["bob"]) {
		t.Fatalf("once bob exists his session opens: user %v", v.user)
	}

	// Revoked on the Go side: gone for good, though Django keeps its row
	// and saves it again.
	if _, err := a.m.RevokeUser(ctx, a.native(alice)); err != nil {
		t.Fatal(err)
	}
	var saved []string
	if err := json.Unmarshal(djangotest.Run(t, "touch", cfg.WithItems([]djangotest.Case{c})), &saved); err != nil {
		t.Fatal(err)
	}
	if row, err := reader.Lookup(ctx, c.Key, time.Now()); err != nil || row.SessionData != saved[0] {
		t.Fatalf("Django's row is not live and saved: %v", err)
	}
	if v := a.get("/", c.Key); v.user != nil || len(v.values) != 0 {
		t.Fatalf("a revoked session came back through the fallback: user %v", v.user)
	}
	if v := a.get("/touch", c.Key); v.user != nil || v.values["int"] != nil {
		t.Fatalf("a revoked session came back: %v", v.values)
	}

	// A login rotates a Django cookie to a qsessions token; the Django
	// cookie then opens nothing.
	fb := made.Case(t, "fallback_key")
	v = a.get("/login?user="+made.Users["bob"], fb.Key)
	if v.cookie == nil || !backend.ValidToken(v.cookie.Value) || v.user != a.native(made.Users["bob"]) || v.values["old"] != true {
		t.Fatalf("login from a Django session: cookie %v, user %v, values %v", v.cookie, v.user, v.values)
	}
	if v := a.get("/", v.cookie.Value); v.user != a.native(made.Users["bob"]) || v.values["old"] != true {
		t.Fatalf("the rotated session: user %v, values %v", v.user, v.values)
	}
	if v := a.get("/", fb.Key); v.user != nil {
		t.Fatalf("the Django cookie still opens user %v after the rotation", v.user)
	}
	imported, err := a.target.Ledger().Imported(ctx, goDB.SQL, []string{backend.KeyOf(c.Key), backend.KeyOf(anon.Key), backend.KeyOf(fb.Key), backend.KeyOf(made.Case(t, "tampered").Key)})
	if err != nil || len(imported) != 3 || imported[backend.KeyOf(made.Case(t, "tampered").Key)] {
		t.Fatalf("ledger: %v, %v", imported, err)
	}

	// Without a fallback, only imported sessions open.
	plain := newGoApp(t, goDB, store, nil)
	if v := plain.get("/", anon.Key); v.values["cart"] == nil {
		t.Fatalf("an imported session does not open without the fallback: %v", v.values)
	}
	if v := plain.get("/", made.Case(t, "compressed").Key); len(v.values) != 0 {
		t.Fatalf("a session never imported opened without the fallback: %v", v.values)
	}
}

// TestFallbackErrors: a fallback without its parts is refused; Tokens
// without a fallback finds nothing.
func TestFallbackErrors(t *testing.T) {
	if _, err := NewTokens(context.Background(), &Fallback{}); err == nil {
		t.Fatal("NewTokens accepted an empty Fallback")
	}
	var tokens *Tokens
	if _, err := tokens.Import(context.Background(), strings.Repeat("a", 32), time.Now()); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("nil Tokens: %v", err)
	}
	if !(&Tokens{}).Valid(strings.Repeat("a", 32)) || (&Tokens{}).Valid(strings.Repeat("A", 32)) {
		t.Fatal("Valid")
	}
}
