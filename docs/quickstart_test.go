package docs_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/pages"
)

// TestQuickstart is the proof that the README's quick start is real. It
// copies examples/quickstart (exactly the files the README quotes, without
// generated code) into a new module in a temporary directory, points its
// replace at this checkout, and does what the README says, with the module
// cache and the Go module proxy only: `go generate ./ent` (entc with the
// qsessions extension), `go mod tidy`, `go build`. Then it serves the app on
// a free port with a new SQLite file and uses it over HTTP as two browsers:
// sign up, the sessions page lists one session, a second sign-in, revoking
// the first browser's session from the second, the generated admin source
// (owners by username), sign out.
func TestQuickstart(t *testing.T) {
	if testing.Short() {
		t.Skip("quick start: builds a new module with go generate and cgo; not with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("quick start: no go command in PATH: %v", err)
	}
	checkout, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyQuickstart(t, filepath.Join(checkout, "examples", "quickstart"), dir)

	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	gocmd := func(args ...string) {
		t.Helper()
		start := time.Now()
		cmd := exec.Command(goBin, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		t.Logf("go %s: %.1fs", strings.Join(args, " "), time.Since(start).Seconds())
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	gocmd("mod", "edit", "-replace=github.com/qsessions/qsessions="+checkout)
	gocmd("generate", "./ent")
	if _, err := os.Stat(filepath.Join(dir, "ent", "qsessions.go")); err != nil {
		t.Fatalf("go generate did not write ent/qsessions.go: %v", err)
	}
	gocmd("mod", "tidy")
	gocmd("build", "-o", "app", ".")

	dbPath := filepath.Join(dir, "app.db")
	base := startApp(t, filepath.Join(dir, "app"), "-addr", "127.0.0.1:0", "-db", "file:"+dbPath+"?_fk=1", "-insecure-cookie")

	alice := newBrowser(t, base)
	// A visitor is sent to the login page, with no cookie.
	resp := alice.get("/sessions", false)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
		t.Fatalf("GET /sessions anonymous: %d, Location %q; want 303 to /login?next=", resp.StatusCode, resp.Header.Get("Location"))
	}
	if c := resp.Header.Get("Set-Cookie"); c != "" {
		t.Errorf("an anonymous visit got a cookie: %s", c)
	}
	if r := alice.get("/login?next=/sessions", true); r.StatusCode != http.StatusOK {
		t.Fatalf("GET /login: %d", r.StatusCode)
	}

	// Sign up (and in); the sessions page lists one session, this one.
	resp = alice.post("/signup", url.Values{"username": {"alice"}, "password": {"correct horse"}, "next": {"/sessions"}})
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/sessions" {
		t.Fatalf("POST /signup: %d at %s; want 200 at /sessions", resp.StatusCode, resp.Request.URL.Path)
	}
	page := alice.body
	if n := strings.Count(page, `class="badge current"`); n != 1 {
		t.Errorf("the sessions page marks %d sessions as this device, want 1", n)
	}
	if !strings.Contains(page, "Go-http-client") && !strings.Contains(page, "quickstart-test") {
		t.Errorf("the sessions page does not show this client's device:\n%s", page)
	}
	aliceSessions := alice.api()
	if len(aliceSessions) != 1 || !aliceSessions[0].Current || aliceSessions[0].IP != "127.0.0.1" {
		t.Fatalf("GET /api/sessions after sign-up: %+v; want one current session from 127.0.0.1", aliceSessions)
	}

	// A second browser: a wrong password is refused, the right one signs in.
	phone := newBrowser(t, base)
	if r := phone.post("/login", url.Values{"username": {"alice"}, "password": {"wrong horse"}}); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST /login with a wrong password: %d, want 401", r.StatusCode)
	}
	if r := phone.post("/login", url.Values{"username": {"alice"}, "password": {"correct horse"}, "next": {"/sessions"}}); r.StatusCode != http.StatusOK {
		t.Fatalf("POST /login: %d", r.StatusCode)
	}
	both := phone.api()
	if len(both) != 2 {
		t.Fatalf("two browsers signed in, /api/sessions lists %d sessions", len(both))
	}

	// The phone revokes the first browser's session; that browser is signed out.
	if r := phone.post("/sessions/"+aliceSessions[0].ID+"/revoke", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("revoking the other session: %d", r.StatusCode)
	}
	if r := alice.get("/sessions", false); r.StatusCode != http.StatusSeeOther {
		t.Errorf("the revoked browser still gets /sessions: %d", r.StatusCode)
	}
	if got := phone.api(); len(got) != 1 || !got[0].Current {
		t.Errorf("after the revoke /api/sessions lists %+v; want the phone's session alone", got)
	}

	// The generated admin source: admins see every session, owners by username.
	if r := phone.get("/admin/sessions", true); r.StatusCode != http.StatusForbidden {
		t.Errorf("GET /admin/sessions as a non-admin: %d, want 403", r.StatusCode)
	}
	db, err := dburl.Open("sqlite://" + dbPath)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.SQL.Exec(`UPDATE users SET is_admin = true WHERE username = 'alice'`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if r := phone.get("/admin/sessions?q=ali", true); r.StatusCode != http.StatusOK || !strings.Contains(phone.body, ">alice</td>") {
		t.Errorf("GET /admin/sessions?q=ali as an admin: %d; want 200 listing alice's session:\n%s", r.StatusCode, phone.body)
	}

	// Sign out.
	if r := phone.post("/logout", nil); r.StatusCode != http.StatusOK || r.Request.URL.Path != "/login" {
		t.Errorf("POST /logout: %d at %s; want the login page", r.StatusCode, r.Request.URL.Path)
	}
	if r := phone.get("/sessions", false); r.StatusCode != http.StatusSeeOther {
		t.Errorf("GET /sessions after signing out: %d, want 303", r.StatusCode)
	}
}

// copyQuickstart copies the quick start's own files: its Go files but ent's
// generated ones (a developer may have run go generate in the checkout),
// go.mod and go.sum.
func copyQuickstart(t *testing.T, from, to string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		name := d.Name()
		if !strings.HasSuffix(name, ".go") && name != "go.mod" && name != "go.sum" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.HasPrefix(string(b), "// Code generated") {
			return nil
		}
		if err := os.MkdirAll(filepath.Join(to, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		n++
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 6 {
		t.Fatalf("copied %d files of examples/quickstart; want main.go, go.mod, go.sum, ent/generate.go, ent/entc.go and the schema", n)
	}
}

// listening is the app's start-up line.
var listening = regexp.MustCompile(`listening on (http://\S+)`)

// startApp runs the built app and returns its base URL; it is stopped when
// the test ends.
func startApp(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = filepath.Dir(bin)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		close(found)
	}()
	select {
	case u, ok := <-found:
		if !ok {
			t.Fatalf("the app ended before listening")
		}
		go func() { _, _ = io.Copy(io.Discard, stderr) }()
		return u
	case <-time.After(60 * time.Second):
		t.Fatalf("the app did not start listening within 60 s")
	}
	return ""
}

// browser is an HTTP client with its own cookies.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	body string // of the last response
}

func newBrowser(t *testing.T, base string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

func (b *browser) do(req *http.Request, follow bool) *http.Response {
	b.t.Helper()
	req.Header.Set("User-Agent", "quickstart-test")
	c := *b.c
	if !follow {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	resp, err := c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		b.t.Fatal(err)
	}
	b.body = string(body)
	return resp
}

func (b *browser) get(path string, follow bool) *http.Response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req, follow)
}

func (b *browser) post(path string, form url.Values) *http.Response {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req, true)
}

// api returns GET /api/sessions.
func (b *browser) api() []pages.APISession {
	b.t.Helper()
	if r := b.get("/api/sessions", false); r.StatusCode != http.StatusOK {
		b.t.Fatalf("GET /api/sessions: %d\n%s", r.StatusCode, b.body)
	}
	var v pages.APIResponse
	if err := json.Unmarshal([]byte(b.body), &v); err != nil {
		b.t.Fatalf("GET /api/sessions: %v\n%s", err, b.body)
	}
	return v.Sessions
}
