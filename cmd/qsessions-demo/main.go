// Command qsessions-demo is a small web app showing what qsessions is for:
// log in, see your active sessions, revoke one, sign out everywhere else.
// It runs on a SQLite file in the working directory by default and needs
// nothing else installed:
//
//	go run ./cmd/qsessions-demo            # http://127.0.0.1:8080
//	go run ./cmd/qsessions-demo --db postgres://root@127.0.0.1:5432/test?sslmode=disable
package main

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/ent/user"
	"github.com/qsessions/qsessions/middleware"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	dbURL := flag.String("db", "sqlite://qsessions-demo.db", "database URL (postgres://, mysql://, sqlite://)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *dbURL); err != nil {
		log.Fatal(err)
	}
}

// app is the demo's state.
type app struct {
	client *ent.Client
	m      *qsessions.Manager
}

func run(ctx context.Context, addr, dbURL string) error {
	db, err := dburl.Open(dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	client := ent.NewClient(ent.Driver(entsql.OpenDB(db.Dialect, db.SQL)))
	if err := client.Schema.Create(ctx); err != nil {
		return fmt.Errorf("creating the schema on %s: %w", db.URL, err)
	}
	a := &app{client: client, m: qsessions.New(backend.NewDB(ent.NewSessionStore(client)))}
	for _, u := range []struct {
		name  string
		admin bool
	}{{"alice", true}, {"bob", false}} {
		pass, err := a.ensureUser(ctx, u.name, u.admin)
		if err != nil {
			return err
		}
		fmt.Printf("user: %s  password: %s\n", u.name, pass)
	}
	a.m.StartCleaner(ctx)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("qsessions demo on http://%s (database %s)\n", ln.Addr(), db.URL)
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
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

func hashPassword(pass string) ([]byte, error) {
	salt := make([]byte, 16)
	rand.Read(salt)
	k, err := pbkdf2.Key(sha256.New, pass, salt, 100_000, 32)
	return append(salt, k...), err
}

func checkPassword(hash []byte, pass string) bool {
	if len(hash) != 48 {
		return false
	}
	k, err := pbkdf2.Key(sha256.New, pass, hash[:16], 100_000, 32)
	return err == nil && subtle.ConstantTimeCompare(k, hash[16:]) == 1
}

func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", a.loginPage)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("POST /sessions/{id}/revoke", a.revoke)
	mux.HandleFunc("POST /sessions/revoke-others", a.revokeOthers)
	sessions := middleware.New(a.m, middleware.Options{Cookie: middleware.Cookie{Insecure: true}})
	return http.NewCrossOriginProtection().Handler(sessions(mux))
}

var pages = template.Must(template.New("").Parse(`
{{define "head"}}<!doctype html><html><head><meta charset="utf-8"><title>qsessions demo</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left}
.err{color:#a00}.cur{font-weight:bold}</style></head><body><h1>qsessions demo</h1>{{end}}
{{define "login"}}{{template "head"}}<h2>Sign in</h2>{{with .}}<p class="err">{{.}}</p>{{end}}
<form method="post" action="/login"><p><label>Username <input name="username" autofocus></label></p>
<p><label>Password <input name="password" type="password"></label></p><p><button>Sign in</button></p></form></body></html>{{end}}
{{define "home"}}{{template "head"}}<p>Signed in as <b>{{.User.Username}}</b>{{if .User.IsAdmin}} (admin){{end}}.</p>
<form method="post" action="/logout"><button>Sign out</button></form>
<h2>Your active sessions</h2><table><tr><th>Session</th><th>IP</th><th>Browser</th><th>Created</th><th>Last activity</th><th></th></tr>
{{range .Sessions}}<tr{{if .Current}} class="cur"{{end}}><td>{{.ID}}{{if .Current}} (this device){{end}}</td><td>{{.IP}}</td><td>{{.UserAgent}}</td>
<td>{{.CreatedAt.Format "2006-01-02 15:04"}}</td><td>{{.LastActivity.Format "2006-01-02 15:04"}}</td>
<td>{{if not .Current}}<form method="post" action="/sessions/{{.ID}}/revoke"><button>Revoke</button></form>{{end}}</td></tr>{{end}}</table>
<form method="post" action="/sessions/revoke-others"><p><button>Sign out everywhere else</button></p></form></body></html>{{end}}
`))

func (a *app) loginPage(w http.ResponseWriter, r *http.Request) {
	pages.ExecuteTemplate(w, "login", nil)
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	u, err := a.client.User.Query().Where(user.Username(r.PostFormValue("username"))).Only(r.Context())
	if err != nil || !checkPassword(u.PasswordHash, r.PostFormValue("password")) {
		w.WriteHeader(http.StatusUnauthorized)
		pages.ExecuteTemplate(w, "login", "Wrong username or password.")
		return
	}
	if err := qsessions.FromContext(r.Context()).Login(r.Context(), u.ID); err != nil {
		slog.Error("login", "err", err)
		http.Error(w, "could not sign in", http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	_ = qsessions.FromContext(r.Context()).Logout(r.Context())
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// current returns the signed-in user, or nil after redirecting to /login.
func (a *app) current(w http.ResponseWriter, r *http.Request) *ent.User {
	id, _ := qsessions.FromContext(r.Context()).UserID().(int)
	if id != 0 {
		if u, err := a.client.User.Get(r.Context(), id); err == nil {
			return u
		}
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	u := a.current(w, r)
	if u == nil {
		return
	}
	list, err := a.m.UserSessions(r.Context(), u.ID)
	if err != nil {
		http.Error(w, "could not list sessions", http.StatusInternalServerError)
		return
	}
	pages.ExecuteTemplate(w, "home", map[string]any{"User": u, "Sessions": list})
}

func (a *app) revoke(w http.ResponseWriter, r *http.Request) {
	u := a.current(w, r)
	if u == nil {
		return
	}
	if err := a.m.Revoke(r.Context(), u.ID, r.PathValue("id")); err != nil {
		http.NotFound(w, r)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (a *app) revokeOthers(w http.ResponseWriter, r *http.Request) {
	u := a.current(w, r)
	if u == nil {
		return
	}
	if _, err := a.m.RevokeOthers(r.Context(), u.ID); err != nil {
		http.Error(w, "could not revoke", http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
