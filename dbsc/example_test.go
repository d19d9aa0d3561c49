package dbsc_test

import (
	"log"
	"net/http"
	"os"
	"strings"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dbsc"
	"github.com/qsessions/qsessions/middleware"
)

// The functions an example leaves to the app.
var (
	checkPassword = func(r *http.Request) (userID int, ok bool) { return 42, true }
	sessionStore  = func() backend.Store { return backend.NewMemStore() } // ent.NewSessionStore(client)
)

// Device-bound sessions for an app: the handlers over the app's Manager,
// mounted inside the session middleware, the bound cookie's name given to
// the middleware, and the registration asked for at sign-in, after Login.
func Example() {
	m := qsessions.New(backend.NewDB(sessionStore()))

	srv, err := dbsc.New(dbsc.Config{Store: dbsc.NewManagerStore(m, "")})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	srv.Register(mux) // POST /dbsc/register, POST /dbsc/refresh
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		userID, ok := checkPassword(r)
		if !ok {
			http.Error(w, "wrong username or password", http.StatusUnauthorized)
			return
		}
		s := qsessions.FromContext(r.Context())
		if err := s.Login(r.Context(), userID); err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		// Login rotated the token: ask for the binding with the new key.
		// A browser without DBSC ignores the header.
		if err := srv.StartRegistration(w, s.Record().Key); err != nil {
			log.Print(err) // the sign-in stands; the session stays unbound
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	handler := middleware.New(m, middleware.Options{BoundCookie: srv.CookieName()})(mux)

	// DBSC needs HTTPS: Chromium ignores it on plain HTTP, localhost too.
	log.Fatal(http.ListenAndServeTLS(":443", "cert.pem", "key.pem", handler))
}

// Several processes behind a load balancer: the same challenge keys in
// every process, and used challenges remembered in the memcached servers
// they share.
func ExampleNewCacheReplayGuard() {
	keys, err := backend.ParseCacheKeys(os.Getenv("QSESSIONS_DBSC_KEYS")) // hex, 32 bytes or more each
	if err != nil || len(keys) == 0 {
		log.Fatal("QSESSIONS_DBSC_KEYS: ", err)
	}
	mc, err := backend.NewMemcache(strings.Split(os.Getenv("MEMCACHED"), ","), backend.MemcacheOptions{})
	if err != nil {
		log.Fatal(err)
	}
	guard, err := dbsc.NewCacheReplayGuard(mc, "myapp:dbsc:", nil)
	if err != nil {
		log.Fatal(err)
	}
	m := qsessions.New(backend.NewDB(sessionStore()))
	srv, err := dbsc.New(dbsc.Config{
		Store:         dbsc.NewManagerStore(m, ""),
		ChallengeKeys: keys,
		ReplayGuard:   guard,
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = srv
}
