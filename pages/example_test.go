package pages_test

// The Example of this file is what docs/pages.md quotes (docs/docs_test.go
// checks that every Go block of the docs is compiled code).

import (
	"context"
	"log"
	"net/http"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/location"
	"github.com/qsessions/qsessions/middleware"
	"github.com/qsessions/qsessions/pages"
)

// The pages on an app's mux, with the admin source and the event log the
// entc extension generates into the app's ent package.
func ExampleNew() {
	var (
		client   *ent.Client                                  // the app's ent client
		m        *qsessions.Manager                           // qsessions.New(...)
		geo      location.Locator                             // location.Open(dir), or nil
		isAdmin  func(r *http.Request) bool                   // the app's own check
		userName func(ctx context.Context, userID any) string // the app's users
	)

	p, err := pages.New(pages.Config{
		Manager:   m,
		Admin:     ent.NewSessionAdminSource(client), // generated; nil: no admin pages
		IsAdmin:   isAdmin,                           // may r's user see every session? nil: nobody
		UserName:  userName,                          // how to show a user; nil: by ID
		Locator:   geo,                               // nil: no places
		Events:    ent.NewSessionEventLog(client),    // package alerts' log; nil: no security events
		LoginURL:  "/login",                          // the default; visitors go there with ?next=
		LogoutURL: "/logout",                         // adds a "Sign out" button that POSTs there
		AppName:   "Acme",
		Prefix:    "/account", // /account/sessions, /account/admin/sessions, ...
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	p.Register(mux)
	handler := http.NewCrossOriginProtection().Handler(middleware.New(m, middleware.Options{})(mux))
	log.Fatal(http.ListenAndServe(":8080", handler))
}
