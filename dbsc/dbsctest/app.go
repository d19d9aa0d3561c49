package dbsctest

import (
	"fmt"
	"net/http"

	"github.com/qsessions/qsessions/dbsc"
)

// NewApp returns a tiny app around srv and store, doing what the session
// middleware and an app's sign-in will do:
//
//	GET|POST /login?user=NAME   new signed-in session, its cookie, and the registration header
//	GET      /whoami            200 "NAME bound|unbound", or 401 "not signed in"
//	GET      /                  a small HTML page (for browsers)
//	POST     {srv prefix}/...   the DBSC endpoints
//
// A request of a bound session without a valid bound cookie is not signed
// in (srv.CheckRequest), as the middleware will decide.
func NewApp(srv *dbsc.Server, store *MemStore) http.Handler {
	mux := http.NewServeMux()
	srv.Register(mux)
	login := func(w http.ResponseWriter, r *http.Request) {
		user := r.FormValue("user")
		if user == "" {
			user = "alice"
		}
		key, err := store.Login(w, user)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if err := srv.StartRegistration(w, key); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>signed in</title><p>signed in as %s</p>\n", user)
	}
	mux.HandleFunc("GET /login", login)
	mux.HandleFunc("POST /login", login)
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		_, user, b, ok := store.Lookup(r)
		if !ok || srv.CheckRequest(r, b) != nil {
			http.Error(w, "not signed in", http.StatusUnauthorized)
			return
		}
		state := "unbound"
		if b != nil {
			state = "bound"
		}
		fmt.Fprintf(w, "%s %s\n", user, state)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><title>dbsc test app</title><p><a href=\"/login\">sign in</a> <a href=\"/whoami\">who am I</a></p>\n")
	})
	return mux
}
