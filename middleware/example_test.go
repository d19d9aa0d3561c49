package middleware_test

// The Example of this file is what docs/sessions.md quotes
// (docs/docs_test.go checks that every Go block of the docs is compiled
// code).

import (
	"log"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/qsessions/qsessions/middleware"
	"github.com/qsessions/qsessions/qsessionstest"
)

// The middleware's options beyond the defaults.
func ExampleNew() {
	m := qsessionstest.NewManager() // an app's: qsessions.New(backend.NewDB(store))
	mux := http.NewServeMux()

	sessions := middleware.New(m, middleware.Options{
		Cookie: middleware.Cookie{
			Name:           "__Host-session", // __Host-: Secure, Path=/, no Domain (New checks)
			BrowserSession: true,             // ends with the browser unless SetRememberMe(true)
		},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, // your load balancers only
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			slog.WarnContext(r.Context(), "session", "err", err)
			middleware.DefaultErrorHandler(w, r, err) // 400 interrupted, 503 unavailable, else 500
		},
	})
	handler := http.NewCrossOriginProtection().Handler(sessions(mux))
	log.Fatal(http.ListenAndServe(":8080", handler))
}
