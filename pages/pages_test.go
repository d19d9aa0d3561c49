package pages_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/location"
	"github.com/qsessions/qsessions/middleware"
	"github.com/qsessions/qsessions/pages"
	"github.com/qsessions/qsessions/qsessionstest"
)

const (
	uaWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	uaIPhone  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
)

// users of the tests: 1 is an admin.
var names = map[int]string{1: "alice", 2: "bob"}

// fakeLocator knows one network.
type fakeLocator struct{}

func (fakeLocator) Lookup(ip netip.Addr) (location.Info, error) {
	if netip.MustParsePrefix("81.2.69.0/24").Contains(ip) {
		return location.Info{City: "London", Country: "United Kingdom"}, nil
	}
	return location.Info{}, nil
}

// memAdmin is an AdminSource over the sessions a test created.
type memAdmin struct {
	m    *qsessions.Manager
	mu   sync.Mutex
	keys []string
}

func (a *memAdmin) add(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.keys = append(a.keys, key)
}

func (a *memAdmin) records(ctx context.Context) []*backend.Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*backend.Record
	for _, k := range a.keys {
		// Load returns live sessions only; expired ones do not matter here.
		if r, err := a.m.Backend.Load(ctx, k, time.Now()); err == nil {
			out = append(out, r)
		}
	}
	return out
}

func (a *memAdmin) List(ctx context.Context, f qsessions.AdminFilter) ([]qsessions.AdminSession, int, error) {
	var all []qsessions.AdminSession
	for _, r := range a.records(ctx) {
		if f.State == qsessions.StateExpired {
			continue
		}
		if f.OwnerID != nil && r.UserID != f.OwnerID {
			continue
		}
		if f.Search != "" && !strings.HasPrefix(r.IP, f.Search) && !strings.Contains(names[intOr0(r.UserID)], f.Search) {
			continue
		}
		// As the generated AdminSource does.
		all = append(all, qsessions.AdminSession{Info: qsessions.InfoOf(r)})
	}
	end := min(f.Offset+f.Limit, len(all))
	if f.Offset >= len(all) {
		return nil, len(all), nil
	}
	return all[f.Offset:end], len(all), nil
}

func (a *memAdmin) Get(ctx context.Context, publicID string) (*backend.Record, error) {
	for _, r := range a.records(ctx) {
		if backend.PublicID(r.Key) == publicID {
			return r, nil
		}
	}
	return nil, backend.ErrNotFound
}

func intOr0(v any) int { n, _ := v.(int); return n }

// env is a test server with the pages mounted.
type env struct {
	t     *testing.T
	m     *qsessions.Manager
	store *backend.MemStore
	admin *memAdmin
	srv   *httptest.Server
}

func newEnv(t *testing.T, prefix string) *env {
	t.Helper()
	store := backend.NewMemStore()
	m := qsessions.New(backend.NewDB(store))
	e := &env{t: t, m: m, store: store, admin: &memAdmin{m: m}}
	p, err := pages.New(pages.Config{
		Manager:   m,
		IsAdmin:   func(r *http.Request) bool { return qsessions.FromContext(r.Context()).UserID() == 1 },
		UserName:  func(_ context.Context, id any) string { return names[intOr0(id)] },
		Admin:     e.admin,
		Locator:   fakeLocator{},
		Prefix:    prefix,
		LogoutURL: "/logout",
		PageSize:  2,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	p.Register(mux)
	// Clients come from the addresses tests put in X-Forwarded-For.
	h := middleware.New(m, middleware.Options{
		Cookie:         middleware.Cookie{Insecure: true},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
	})(mux)
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// login makes a session of userID from ip with user agent ua and returns
// its cookie and public id.
func (e *env) login(userID any, ip, ua string) (*http.Cookie, string) {
	e.t.Helper()
	ctx := context.Background()
	s := e.m.Start(ctx, "", ip, ua)
	if err := s.Set("cart", []string{"apple", "pear"}); err != nil {
		e.t.Fatal(err)
	}
	if err := s.Login(ctx, userID); err != nil {
		e.t.Fatal(err)
	}
	c, err := s.Save(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	e.admin.add(s.Record().Key)
	return &http.Cookie{Name: qsessionstest.CookieName, Value: c.Token}, s.ID()
}

type resp struct {
	code int
	body string
	h    http.Header
}

// do sends a request without following redirects. hdr holds extra headers.
func (e *env) do(method, path string, c *http.Cookie, hdr map[string]string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if c != nil {
		req.AddCookie(c)
	}
	req.Header.Set("User-Agent", uaWindows)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := cl.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, string(b), res.Header}
}

func (e *env) live(id string) bool {
	for _, r := range e.admin.records(context.Background()) {
		if backend.PublicID(r.Key) == id {
			return true
		}
	}
	return false
}

func TestAnonymousRedirectsAndWritesNothing(t *testing.T) {
	e := newEnv(t, "")
	for _, tc := range []struct{ method, path, next string }{
		{"GET", "/sessions", "/sessions"},
		{"GET", "/admin/sessions?state=expired", "/admin/sessions?state=expired"},
		{"GET", "/admin/sessions/0123456789abcdef", "/admin/sessions/0123456789abcdef"},
		{"POST", "/sessions/0123456789abcdef/revoke", "/sessions"},
		{"POST", "/sessions/revoke-others", "/sessions"},
		{"POST", "/admin/sessions/0123456789abcdef/revoke", "/sessions"},
	} {
		r := e.do(tc.method, tc.path, nil, nil)
		want := "/login?next=" + url.QueryEscape(tc.next)
		if r.code != http.StatusSeeOther || r.h.Get("Location") != want {
			t.Errorf("%s %s: %d to %q, want 303 to %q", tc.method, tc.path, r.code, r.h.Get("Location"), want)
		}
		if r.h.Get("Set-Cookie") != "" {
			t.Errorf("%s %s set a cookie: %s", tc.method, tc.path, r.h.Get("Set-Cookie"))
		}
	}
	r := e.do("GET", "/api/sessions", nil, nil)
	if r.code != http.StatusUnauthorized || !strings.Contains(r.body, `"error": "not signed in"`) || r.h.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("anonymous API: %d %s %q", r.code, r.h.Get("Content-Type"), r.body)
	}
	// An invalid cookie is treated as none, and is not replaced by a row.
	r = e.do("GET", "/sessions", &http.Cookie{Name: "sessionid", Value: "forged"}, nil)
	if r.code != http.StatusSeeOther {
		t.Errorf("forged cookie: %d", r.code)
	}
	if n := e.store.Len(); n != 0 {
		t.Fatalf("anonymous visits wrote %d session rows", n)
	}
}

func TestSessionsPage(t *testing.T) {
	e := newEnv(t, "")
	c, cur := e.login(2, "81.2.69.142", uaWindows)
	_, other := e.login(2, "10.1.2.3", uaIPhone)
	_, foreign := e.login(1, "192.0.2.9", uaIPhone)

	r := e.do("GET", "/sessions", c, map[string]string{"X-Forwarded-For": "81.2.69.142"})
	if r.code != http.StatusOK {
		t.Fatalf("GET /sessions: %d %s", r.code, r.body)
	}
	for _, want := range []string{
		"Signed in as <b>bob</b>",
		`<tr id="session-` + cur + `" class="current">`,
		"Chrome on Windows</span><span class=\"badge current\">This device</span>",
		"London, United Kingdom",
		`<tr id="session-` + other + `">`,
		"Safari on iPhone",
		"Local network",
		`action="/sessions/` + other + `/revoke"`,
		`action="/sessions/revoke-others"`,
		"Ends 1 other session;",
		`action="/logout"`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(r.body, foreign) || strings.Contains(r.body, `/sessions/`+cur+`/revoke`) {
		t.Error("the page shows another user's session or a revoke button for the current one")
	}
	if strings.Index(r.body, cur) > strings.Index(r.body, other) {
		t.Error("the current session should come first")
	}
	if strings.Contains(r.body, "<script") {
		t.Error("the page has a script")
	}
	// Admin link only for admins.
	if strings.Contains(r.body, "All sessions") {
		t.Error("a non-admin sees the admin link")
	}

	// Security headers, and the CSP hash matches the inline stylesheet.
	for k, v := range map[string]string{"Cache-Control": "no-store", "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff"} {
		if r.h.Get(k) != v {
			t.Errorf("header %s = %q, want %q", k, r.h.Get(k), v)
		}
	}
	css := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(r.body)
	sum := sha256.Sum256([]byte(css[1]))
	if csp := r.h.Get("Content-Security-Policy"); !strings.Contains(csp, "style-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") ||
		!strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q does not allow exactly the page's stylesheet", csp)
	}
}

func TestAPIShape(t *testing.T) {
	e := newEnv(t, "")
	c, cur := e.login(2, "81.2.69.142", uaWindows)
	_, other := e.login(2, "10.1.2.3", uaIPhone)
	r := e.do("GET", "/api/sessions", c, map[string]string{"X-Forwarded-For": "81.2.69.142"})
	if r.code != http.StatusOK || r.h.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("GET /api/sessions: %d %s", r.code, r.h.Get("Content-Type"))
	}
	var raw struct {
		Sessions []map[string]any `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(r.body), &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Sessions) != 2 {
		t.Fatalf("%d sessions, want 2: %s", len(raw.Sessions), r.body)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range raw.Sessions[0] {
			if !yield(k) {
				return
			}
		}
	})
	want := []string{"created_at", "current", "device", "device_bound", "device_info", "expire_date", "id", "ip", "last_activity", "location", "user_agent"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	var got pages.APIResponse
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatal(err)
	}
	s0, s1 := got.Sessions[0], got.Sessions[1]
	if s0.ID != cur || !s0.Current || s0.Device != "Chrome on Windows" || s0.Location != "London, United Kingdom" ||
		s0.IP != "81.2.69.142" || s0.DeviceInfo.Browser != "Chrome" || s0.CreatedAt.IsZero() || s0.LastActivity.IsZero() {
		t.Errorf("current session: %+v", s0)
	}
	if s1.ID != other || s1.Current || s1.Device != "Safari on iPhone" || s1.Location != "" || s1.DeviceInfo.Kind.String() != "mobile" {
		t.Errorf("other session: %+v", s1)
	}
}

// TestDeviceBoundMark: a device-bound session (DBSC) is marked on the
// user's page, in the JSON, and on the admin list and detail; others are
// not.
func TestDeviceBoundMark(t *testing.T) {
	e := newEnv(t, "")
	c, cur := e.login(1, "192.0.2.1", uaWindows)
	boundCookie, bound := e.login(1, "192.0.2.2", uaIPhone)
	secret := []byte("0123456789abcdef0123456789abcdef")
	if err := e.m.Backend.Bind(context.Background(), backend.KeyOf(boundCookie.Value), `{"crv":"P-256","kty":"EC","x":"x","y":"y"}`, secret, time.Now()); err != nil {
		t.Fatal(err)
	}
	const badge = `<span class="badge bound"`
	r := e.do("GET", "/sessions", c, nil)
	if r.code != http.StatusOK || strings.Count(r.body, badge) != 1 {
		t.Fatalf("/sessions: %d, %d badges", r.code, strings.Count(r.body, badge))
	}
	// The badge is in the bound session's row, not the current one's.
	row := r.body[strings.Index(r.body, `id="session-`+bound+`"`):]
	if i := strings.Index(row, badge); i < 0 || i > strings.Index(row, "</tr>") {
		t.Errorf("the badge is not in the bound session's row:\n%s", r.body)
	}
	var api pages.APIResponse
	if err := json.Unmarshal([]byte(e.do("GET", "/api/sessions", c, nil).body), &api); err != nil || len(api.Sessions) != 2 {
		t.Fatal(err, api)
	}
	for _, s := range api.Sessions {
		if s.DeviceBound != (s.ID == bound) {
			t.Errorf("JSON: session %s device_bound %v", s.ID, s.DeviceBound)
		}
	}
	r = e.do("GET", "/admin/sessions", c, nil)
	if strings.Count(r.body, badge) != 1 {
		t.Errorf("admin list: %d badges", strings.Count(r.body, badge))
	}
	r = e.do("GET", "/admin/sessions/"+bound, c, nil)
	if !strings.Contains(r.body, badge) || !strings.Contains(r.body, "Device-bound (DBSC)") {
		t.Errorf("admin detail of the bound session:\n%s", r.body)
	}
	r = e.do("GET", "/admin/sessions/"+cur, c, nil)
	if strings.Contains(r.body, badge) || !strings.Contains(r.body, "none: the session cookie alone signs in") {
		t.Errorf("admin detail of an unbound session:\n%s", r.body)
	}
}

func TestRevoke(t *testing.T) {
	e := newEnv(t, "")
	c, cur := e.login(2, "192.0.2.1", uaWindows)
	_, other := e.login(2, "192.0.2.2", uaIPhone)
	_, foreign := e.login(1, "192.0.2.3", uaIPhone)

	// Someone else's session, an unknown id and a malformed one: 404, and
	// nothing is revoked.
	for _, id := range []string{foreign, strings.ToUpper(foreign), "0123456789abcdef", "nothex", "0123456789abcdef0"} {
		r := e.do("POST", "/sessions/"+id+"/revoke", c, nil)
		if r.code != http.StatusNotFound || !strings.Contains(r.body, "No such session") {
			t.Errorf("revoke %s: %d, want 404", id, r.code)
		}
	}
	if !e.live(foreign) || !e.live(other) || !e.live(cur) {
		t.Fatal("a 404 revoked something")
	}

	// Cross-site POSTs are refused before anything happens.
	for _, hdr := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
		{"Origin": "https://evil.example"},
	} {
		for _, path := range []string{"/sessions/" + other + "/revoke", "/sessions/revoke-others"} {
			r := e.do("POST", path, c, hdr)
			if r.code != http.StatusForbidden {
				t.Errorf("POST %s with %v: %d, want 403", path, hdr, r.code)
			}
		}
	}
	if !e.live(other) {
		t.Fatal("a cross-site POST revoked a session")
	}
	// A same-origin browser POST passes.
	r := e.do("POST", "/sessions/"+other+"/revoke", c, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": e.srv.URL})
	if r.code != http.StatusSeeOther || r.h.Get("Location") != "/sessions?done=revoked" {
		t.Fatalf("revoke own: %d %q", r.code, r.h.Get("Location"))
	}
	if e.live(other) || !e.live(cur) {
		t.Fatal("revoke ended the wrong session")
	}
	r = e.do("GET", "/sessions?done=revoked", c, nil)
	if !strings.Contains(r.body, `class="flash"`) || !strings.Contains(r.body, "The session was revoked.") {
		t.Error("no confirmation after a revoke")
	}

	// Sign out everywhere else.
	e.login(2, "192.0.2.4", uaIPhone)
	e.login(2, "192.0.2.5", uaIPhone)
	r = e.do("POST", "/sessions/revoke-others", c, nil)
	if r.code != http.StatusSeeOther || r.h.Get("Location") != "/sessions?done=others&n=2" {
		t.Fatalf("revoke-others: %d %q", r.code, r.h.Get("Location"))
	}
	list, _ := e.m.UserSessions(context.Background(), 2)
	if len(list) != 1 || list[0].ID != cur || !e.live(foreign) {
		t.Fatalf("after revoke-others: %v", list)
	}
	r = e.do("GET", "/sessions?done=others&n=2", c, nil)
	if !strings.Contains(r.body, "2 other sessions were revoked.") || strings.Contains(r.body, "Sign out everywhere else") {
		t.Error("revoke-others: wrong confirmation or button still shown")
	}

	// Revoking the current session through its own id signs out.
	r = e.do("POST", "/sessions/"+cur+"/revoke", c, nil)
	if r.code != http.StatusSeeOther || r.h.Get("Location") != "/login" || e.live(cur) {
		t.Fatalf("revoke current: %d %q live=%v", r.code, r.h.Get("Location"), e.live(cur))
	}
	if r = e.do("GET", "/sessions", c, nil); r.code != http.StatusSeeOther {
		t.Fatalf("after signing out: %d", r.code)
	}
}

func TestAdminPages(t *testing.T) {
	e := newEnv(t, "/account")
	admin, adminID := e.login(1, "192.0.2.1", uaWindows)
	bob, _ := e.login(2, "192.0.2.7", uaIPhone)
	// bob2 is never used over HTTP, so it keeps its IP (requests come from
	// 127.0.0.1 and move a session there).
	_, bob2 := e.login(2, "81.2.69.142", uaWindows)

	// Non-admins get 403 on every admin page and cannot revoke.
	for _, tc := range []struct{ method, path string }{
		{"GET", "/account/admin/sessions"},
		{"GET", "/account/admin/sessions/" + adminID},
		{"POST", "/account/admin/sessions/" + adminID + "/revoke"},
	} {
		r := e.do(tc.method, tc.path, bob, nil)
		if r.code != http.StatusForbidden || !strings.Contains(r.body, "administrators only") {
			t.Errorf("%s %s as a non-admin: %d, want 403", tc.method, tc.path, r.code)
		}
	}
	if !e.live(adminID) {
		t.Fatal("a non-admin revoked a session")
	}

	// The list, with page size 2: three sessions make two pages.
	r := e.do("GET", "/account/admin/sessions", admin, nil)
	if r.code != http.StatusOK {
		t.Fatalf("admin list: %d %s", r.code, r.body)
	}
	for _, want := range []string{"Showing 1–2 of 3 sessions", `href="/account/admin/sessions?page=2"`, `aria-current="page">All sessions`, "alice", "bob"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("admin list lacks %q", want)
		}
	}
	r = e.do("GET", "/account/admin/sessions?page=2", admin, nil)
	if !strings.Contains(r.body, "Showing 3–3 of 3") || !strings.Contains(r.body, `href="/account/admin/sessions"`) {
		t.Errorf("page 2:\n%s", r.body)
	}
	// Filters reach the source and stay in the links.
	r = e.do("GET", "/account/admin/sessions?mine=1", admin, nil)
	if !strings.Contains(r.body, "Showing 1–1 of 1 session") || !strings.Contains(r.body, adminID) || !strings.Contains(r.body, `name="mine" value="1" checked`) {
		t.Errorf("mine=1:\n%s", r.body)
	}
	r = e.do("GET", "/account/admin/sessions?q=81.2.", admin, nil)
	if !strings.Contains(r.body, "Showing 1–1 of 1 session") || !strings.Contains(r.body, "London, United Kingdom") || !strings.Contains(r.body, `value="81.2."`) {
		t.Errorf("search by IP:\n%s", r.body)
	}
	r = e.do("GET", "/account/admin/sessions?state=expired", admin, nil)
	if !strings.Contains(r.body, "No sessions match.") || !strings.Contains(r.body, `<option value="expired" selected>`) {
		t.Errorf("state=expired:\n%s", r.body)
	}

	// Details with decoded data.
	r = e.do("GET", "/account/admin/sessions/"+bob2, admin, nil)
	if r.code != http.StatusOK {
		t.Fatalf("detail: %d", r.code)
	}
	for _, want := range []string{"bob <span class=\"muted\">(id 2)</span>", "<td class=\"mono\">cart</td>", "[]string", "&#34;apple&#34;", "Revoke this session", "81.2.69.142", "London, United Kingdom"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("detail lacks %q", want)
		}
	}
	for _, id := range []string{"0123456789abcdef", "zz"} {
		if r := e.do("GET", "/account/admin/sessions/"+id, admin, nil); r.code != http.StatusNotFound {
			t.Errorf("detail of %s: %d, want 404", id, r.code)
		}
	}
	// Admin revoke, cross-site refused first.
	if r := e.do("POST", "/account/admin/sessions/"+bob2+"/revoke", admin, map[string]string{"Sec-Fetch-Site": "cross-site"}); r.code != http.StatusForbidden || !e.live(bob2) {
		t.Fatalf("cross-site admin revoke: %d", r.code)
	}
	r = e.do("POST", "/account/admin/sessions/"+bob2+"/revoke", admin, nil)
	if r.code != http.StatusSeeOther || r.h.Get("Location") != "/account/admin/sessions?done=revoked" || e.live(bob2) {
		t.Fatalf("admin revoke: %d %q", r.code, r.h.Get("Location"))
	}
	// Routes without the prefix do not exist.
	if r := e.do("GET", "/sessions", admin, nil); r.code != http.StatusNotFound {
		t.Errorf("GET /sessions with a prefix: %d", r.code)
	}
}

func TestNoAdminSource(t *testing.T) {
	m := qsessionstest.NewManager()
	p, err := pages.New(pages.Config{Manager: m, CurrentUser: func(*http.Request) (any, error) { return 1, nil }})
	if err != nil {
		t.Fatal(err)
	}
	h := middleware.New(m, middleware.Options{})(p)
	for path, code := range map[string]int{"/admin/sessions": 404, "/sessions": 200, "/elsewhere": 404} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != code {
			t.Errorf("GET %s: %d, want %d", path, rec.Code, code)
		}
	}
}

func TestRender(t *testing.T) {
	e := newEnv(t, "")
	p, err := pages.New(pages.Config{Manager: e.m, CurrentUser: func(*http.Request) (any, error) { return nil, nil }, AppName: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	h := middleware.New(e.m, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.Render(w, r, http.StatusTeapot, "Hello", "<p class=\"muted\">body</p>")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusTeapot || !strings.Contains(rec.Body.String(), "<title>Hello · Shop</title>") ||
		!strings.Contains(rec.Body.String(), "<p class=\"muted\">body</p>") || rec.Header().Get("Content-Security-Policy") == "" {
		t.Errorf("Render: %d\n%s", rec.Code, rec.Body.String())
	}
}

func TestNewErrors(t *testing.T) {
	m := qsessionstest.NewManager()
	cu := func(*http.Request) (any, error) { return nil, nil }
	for _, tc := range []struct {
		cfg  pages.Config
		want string
	}{
		{pages.Config{CurrentUser: cu}, "Manager is required"},
		{pages.Config{Manager: m, CurrentUser: cu, Prefix: "account"}, "Prefix"},
		{pages.Config{Manager: m, CurrentUser: cu, Prefix: "/account/"}, "Prefix"},
		{pages.Config{Manager: m, CurrentUser: cu, PageSize: 501}, "PageSize"},
	} {
		if _, err := pages.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): %v, want an error about %s", tc.cfg, err, tc.want)
		}
	}
}

// TestAdminSearchRefusesBadText: a search with NUL or invalid UTF-8 (which
// PostgreSQL refuses with an error) is answered 400 and never reaches the
// AdminSource.
func TestAdminSearchRefusesBadText(t *testing.T) {
	e := newEnv(t, "")
	admin, _ := e.login(1, "192.0.2.1", uaWindows)
	for _, q := range []string{"a%00b", "%FF", "x%C3"} {
		r := e.do("GET", "/admin/sessions?q="+q, admin, nil)
		if r.code != http.StatusBadRequest || !strings.Contains(r.body, "valid UTF-8") {
			t.Errorf("search %q: %d, want 400", q, r.code)
		}
	}
	if r := e.do("GET", "/admin/sessions?q=192.0", admin, nil); r.code != http.StatusOK {
		t.Errorf("a plain search: %d", r.code)
	}
}
