package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/alerts"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/middleware"
	"github.com/qsessions/qsessions/pages"
)

// Sign-in alerts and the security log (package alerts), always on: the
// demo's schema has the SessionEvent table. A sign-in from a new device or
// country, and a session that changes country, are "sent" as a log line;
// the sessions page shows the notice and the recent events.

// alertsOf holds each app's alerts, for close.
var alertsOf sync.Map // *app -> *alerts.Alerts

// alertLogger is where the demo "sends" its alerts; nil: slog.Default().
var alertLogger *slog.Logger

func init() {
	register(feature{
		name:  "sign-in alerts",
		setup: setupAlerts,
		start: func(ctx context.Context, a *app) {
			if al, ok := alertsOf.Load(a); ok {
				al.(*alerts.Alerts).StartCleaner(ctx)
			}
		},
		close: func(a *app) {
			if al, ok := alertsOf.LoadAndDelete(a); ok {
				al.(*alerts.Alerts).StopCleaner()
			}
		},
	})
}

func setupAlerts(ctx context.Context, a *app, _ *middleware.Options, pc *pages.Config) error {
	log := ent.NewSessionEventLog(a.client)
	o := alerts.Options{
		Manager: a.m,
		Log:     log,
		Notify:  func(ctx context.Context, e qsessions.LoggedEvent) { sendAlert(ctx, a, e) },
	}
	if a.geo != nil {
		o.Locator = a.geo
	}
	al, err := alerts.New(o)
	if err != nil {
		return err
	}
	al.Attach()
	alertsOf.Store(a, al) // the cleaner starts once every setup ran (start)
	pc.Events = log
	return nil
}

// sendAlert is the demo's stand-in for an e-mail to the user.
func sendAlert(ctx context.Context, a *app, e qsessions.LoggedEvent) {
	l := alertLogger
	if l == nil {
		l = slog.Default()
	}
	what := "new sign-in"
	switch {
	case e.Kind == qsessions.EventIPChange:
		what = "session moved to another country"
	case e.NewDevice && e.NewLocation:
		what = "new sign-in from a new device and location"
	case e.NewDevice:
		what = "new sign-in from a new device"
	case e.NewLocation:
		what = "new sign-in from a new location"
	}
	dev, where := e.Device, e.Location
	if dev == "" {
		dev = "an unknown device"
	}
	if where == "" {
		where = "an unknown place"
	}
	l.InfoContext(ctx, "alert: "+what, "user", a.userName(ctx, e.UserID), "device", dev, "location", where,
		"ip", e.IP, "session", e.SessionID)
}
