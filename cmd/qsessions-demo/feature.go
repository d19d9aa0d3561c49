package main

import (
	"context"
	"flag"
	"net/http"

	"github.com/qsessions/qsessions/middleware"
	"github.com/qsessions/qsessions/pages"
)

// feature is an optional part of the demo that lives in a file of its own
// (Django cookies, device-bound sessions, sign-in alerts, metrics) and
// registers itself from that file's init. Each hook may be nil; they run in
// the order the features registered.
type feature struct {
	// name is for messages.
	name string
	// flags adds the feature's flags, setting fields of cfg.
	flags func(fs *flag.FlagSet, cfg *config)
	// setup runs once the Manager exists, before the pages and the
	// middleware are built: it may set Manager fields, middleware options
	// and pages settings, and open what the feature needs.
	setup func(ctx context.Context, a *app, mw *middleware.Options, pc *pages.Config) error
	// start runs after every feature's setup, when the app is complete:
	// background work (cleaners) starts here, so it never races with a
	// later setup that changes Manager fields.
	start func(ctx context.Context, a *app)
	// routes adds the feature's routes to the demo's mux (inside the
	// session middleware).
	routes func(a *app, mux *http.ServeMux)
	// wrap wraps the demo's whole handler (outside the session
	// middleware).
	wrap func(a *app, h http.Handler) http.Handler
	// close releases what setup opened.
	close func(a *app)
}

// features are the registered features.
var features []feature

// register adds f; each feature file calls it from init.
func register(f feature) { features = append(features, f) }
