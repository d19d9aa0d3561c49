package alerts_test

import (
	"context"
	"log"
	"log/slog"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/alerts"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/location"
	"github.com/qsessions/qsessions/pages"
)

// Example_setup is docs/alerts.md's setup: the security log over the
// generated event table, alerts on the Manager, and the log on the pages.
func Example_setup() {
	var (
		ctx    = context.Background()
		client *ent.Client      // the app's ent client
		geo    *location.Reader // location.Open(dir); optional
		m      = qsessions.New(backend.NewDB(ent.NewSessionStore(client)))
	)
	if client == nil {
		return // a sketch: the app has its client and its Manager
	}
	events := ent.NewSessionEventLog(client) // generated: implements qsessions.EventLog
	opts := alerts.Options{
		Manager: m,
		Log:     events,
		Notify: func(ctx context.Context, e qsessions.LoggedEvent) {
			slog.InfoContext(ctx, "new sign-in", "device", e.Device, "location", e.Location)
		},
	}
	if geo != nil {
		opts.Locator = geo // a nil *Reader must not be set: leave the field unset
	}
	a, err := alerts.New(opts)
	if err != nil {
		log.Fatal(err)
	}
	a.Attach()          // sets m.OnEvent (after any OnEvent already set); before serving
	a.StartCleaner(ctx) // deletes events past Retention, now and every hour
	p, err := pages.New(pages.Config{Manager: m, Events: events})
	if err != nil {
		log.Fatal(err)
	}
	_ = p
}
