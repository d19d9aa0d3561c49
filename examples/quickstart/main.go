// Command app is the quick start of qsessions' README: a small ent app with
// int user IDs, a username and a password hash, that adds server-side
// sessions, a login and the session pages. The README quotes its files;
// TestQuickstart in the qsessions module copies this directory into a new
// module, generates its ent code, builds it, signs in over HTTP and reads
// the sessions page.
//
//	go generate ./... && go mod tidy
//	go run . -insecure-cookie   # http://127.0.0.1:8080/signup, then /sessions
//
// Inside the qsessions checkout, run it with GOWORK=off: this directory is a
// module of its own, not one of the workspace's.
package main

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"flag"
	"html/template"
	"log"
	"net"
	"net/http"
	"strings"

	_ "github.com/mattn/go-sqlite3"

	"example.com/app/ent"
	"example.com/app/ent/user"
	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/middleware"
	"github.com/qsessions/qsessions/pages"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	dsn := flag.String("db", "file:app.db?_fk=1", "SQLite database")
	insecure := flag.Bool("insecure-cookie", false, "send the session cookie over plain HTTP (local development only)")
	flag.Parse()
	ctx := context.Background()

	client, err := ent.Open("sqlite3", *dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	// The app's auto-migration, as before: it now creates qsessions_session too.
	if err := client.Schema.Create(ctx); err != nil {
		log.Fatal(err)
	}

	store := ent.NewSessionStore(client) // generated; once per client
	if err := store.Check(ctx); err != nil {
		log.Fatal(err) // names the missing table or columns and how to add them
	}
	m := qsessions.New(backend.NewDB(store))
	m.StartCleaner(ctx) // deletes expired sessions every hour

	a := &app{client: client}
	a.pages, err = pages.New(pages.Config{
		Manager:   m,
		Admin:     ent.NewSessionAdminSource(client), // generated: every session, for admins
		IsAdmin:   a.isAdmin,
		UserName:  a.userName,
		LogoutURL: "/logout",
	})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /login", a.form)
	mux.HandleFunc("GET /signup", a.form)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /signup", a.signup)
	mux.HandleFunc("POST /logout", a.logout)
	a.pages.Register(mux) // /sessions, /api/sessions, /admin/sessions, ...
	sessions := middleware.New(m, middleware.Options{Cookie: middleware.Cookie{Insecure: *insecure}})
	handler := http.NewCrossOriginProtection().Handler(sessions(mux))

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on http://%s", ln.Addr())
	log.Fatal(http.Serve(ln, handler))
}

type app struct {
	client *ent.Client
	pages  *pages.Pages
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	u, err := a.client.User.Query().Where(user.Username(r.PostFormValue("username"))).Only(r.Context())
	if err != nil && !ent.IsNotFound(err) {
		http.Error(w, "Please try again.", http.StatusServiceUnavailable)
		return
	}
	if !checkPassword(u, r.PostFormValue("password")) {
		http.Error(w, "Wrong username or password.", http.StatusUnauthorized)
		return
	}
	a.signIn(w, r, u)
}

// signIn makes u the session's user and sends the browser on.
func (a *app) signIn(w http.ResponseWriter, r *http.Request, u *ent.User) {
	s := qsessions.FromContext(r.Context())
	if err := s.Login(r.Context(), u.ID); err != nil { // a new token: no session fixation
		http.Error(w, "Please try again.", http.StatusServiceUnavailable)
		return
	}
	http.Redirect(w, r, localPath(r.PostFormValue("next")), http.StatusSeeOther)
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	if err := qsessions.FromContext(r.Context()).Logout(r.Context()); err != nil {
		http.Error(w, "Please try again.", http.StatusServiceUnavailable)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (a *app) signup(w http.ResponseWriter, r *http.Request) {
	name, pass := strings.TrimSpace(r.PostFormValue("username")), r.PostFormValue("password")
	if name == "" || len(pass) < 8 {
		http.Error(w, "Choose a username and a password of 8 characters or more.", http.StatusBadRequest)
		return
	}
	u, err := a.client.User.Create().SetUsername(name).SetPasswordHash(hashPassword(pass)).Save(r.Context())
	if ent.IsConstraintError(err) {
		http.Error(w, "That username is taken.", http.StatusConflict)
		return
	}
	if err != nil {
		http.Error(w, "Please try again.", http.StatusServiceUnavailable)
		return
	}
	a.signIn(w, r, u)
}

// currentUser returns the signed-in user, nil for a visitor.
func (a *app) currentUser(r *http.Request) (*ent.User, error) {
	id, err := qsessions.FromContext(r.Context()).User()
	if id == nil || err != nil {
		return nil, err
	}
	u, err := a.client.User.Get(r.Context(), id.(int))
	if ent.IsNotFound(err) {
		return nil, nil
	}
	return u, err
}

func (a *app) isAdmin(r *http.Request) bool {
	u, err := a.currentUser(r)
	return err == nil && u != nil && u.IsAdmin
}

func (a *app) userName(ctx context.Context, id any) string {
	n, _ := id.(int)
	if u, err := a.client.User.Get(ctx, n); err == nil {
		return u.Username
	}
	return "" // the pages show the ID
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	u, err := a.currentUser(r)
	switch {
	case err != nil:
		http.Error(w, "Please try again.", http.StatusServiceUnavailable)
	case u == nil:
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/sessions", http.StatusSeeOther)
	}
}

var form = template.Must(template.New("form").Parse(`<form method="post" class="card stack">
<input type="hidden" name="next" value="{{.Next}}">
<label>Username <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" required></label>
<button class="btn primary">{{.Title}}</button>
</form>
<p class="muted">{{if .Signup}}Have an account? <a href="/login">Sign in</a>{{else}}New here? <a href="/signup">Sign up</a>{{end}}</p>`))

// form serves the sign-in and sign-up forms in the pages' layout.
func (a *app) form(w http.ResponseWriter, r *http.Request) {
	signup := r.URL.Path == "/signup"
	title := "Sign in"
	if signup {
		title = "Sign up"
	}
	var b strings.Builder
	data := map[string]any{"Title": title, "Signup": signup, "Next": localPath(r.URL.Query().Get("next"))}
	if err := form.Execute(&b, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	a.pages.Render(w, r, http.StatusOK, title, template.HTML(b.String()))
}

// localPath returns next when it is a path on this site, else "/".
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

const pbkdf2Rounds = 600_000 // OWASP's figure for PBKDF2-HMAC-SHA256

// hashPassword returns a random salt followed by the PBKDF2 key of pass.
func hashPassword(pass string) []byte {
	salt := make([]byte, 16)
	rand.Read(salt)
	key, err := pbkdf2.Key(sha256.New, pass, salt, pbkdf2Rounds, 32)
	if err != nil {
		panic(err) // only for parameters out of range
	}
	return append(salt, key...)
}

// dummyHash is checked for unknown users, so that a wrong username costs as
// long as a wrong password.
var dummyHash = hashPassword(rand.Text())

// checkPassword reports whether pass is u's password; u may be nil.
func checkPassword(u *ent.User, pass string) bool {
	hash := dummyHash
	if u != nil && len(u.PasswordHash) == len(dummyHash) {
		hash = u.PasswordHash
	}
	key, err := pbkdf2.Key(sha256.New, pass, hash[:16], pbkdf2Rounds, 32)
	return err == nil && u != nil && subtle.ConstantTimeCompare(key, hash[16:]) == 1
}
