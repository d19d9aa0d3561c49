// Package alerts gives an app sign-in alerts and a security log, as GitHub
// and Google do: "New sign-in from Safari on iPhone in Linköping, Sweden",
// and a list of the sign-ins, sign-outs, revokes and changes of country of a
// user's sessions. It listens on the Manager's events (Manager.OnEvent),
// works out what each one means, writes a qsessions.EventLog and calls the
// app's Notify for what a user should hear of at once:
//
//	a, err := alerts.New(alerts.Options{
//		Manager: m,
//		Log:     ent.NewSessionEventLog(client), // generated from entschema.EventMixin
//		Locator: geo,                           // optional: places and countries
//		Notify: func(ctx context.Context, e qsessions.LoggedEvent) {
//			// e-mail the user: "New sign-in from " + e.Device + " in " + e.Location
//		},
//	})
//	if err != nil { ... }
//	a.Attach()             // before the Manager serves requests
//	a.StartCleaner(ctx)    // deletes events older than Retention, hourly
//	// pages.Config{Events: log, ...} shows the notice and the list
//
// # What is logged
//
// Every sign-in, sign-out and revoke of a signed-in user's session, with the
// cause of a revoke (the user from another session, the app, an admin, the
// per-user cap, the CLI, an ent delete) and the asking session, the IP
// address, the User-Agent, the device's name (device.Info.Label), and the
// place ("City, Country" and the ISO country code when a Locator is set;
// "Local network" for private and loopback addresses). A change of IP
// address mid-session is logged only when it moves the session to another
// country (a "location change"): both addresses must have a known country.
// Changes within a country, or to or from an address with no known country,
// are dropped, so a dual-stack client that alternates between two
// addresses writes nothing; a session that flips between two countries is
// logged and notified once per country a day.
//
// # What "new" means
//
// A sign-in is from a new device when no other session of the user, live or
// recently ended, had the same device name ("Chrome on Windows": browser
// and system, not the exact version or the machine), and from a new location
// when it has a known country none of them had. "Live" are the user's
// sessions in the session table (read with the Backend's UserSessions);
// "recently ended" are the sign-ins the log holds from the last Window
// (default 90 days), plus the countries of logged location changes: the log
// is the memory of ended sessions, so it reaches as far back as Window and
// Retention allow, and no further. Sessions the user or an administrator
// revoked do not count as known: after "this was not me", the same device
// alerts again. A user with no other live session and nothing in the log
// (the account's first sign-in, the first since alerts were installed, or
// the first after more than Retention of silence) has nothing to compare
// with: that sign-in is logged, not announced. Notify is called for sign-ins
// from a new device or location and for location changes.
//
// # Cost
//
// Everything runs in the goroutine of the change, after it was committed,
// within Timeout, and never fails the request (errors are logged at most
// once a minute per kind). Per event, in database statements:
//
//	sign-in                        3: the user's live sessions (one indexed SELECT,
//	                               at most MaxSessionsPerUser rows), the log's
//	                               newest Scan events (one SELECT on the
//	                               (user_id, created_at) index), one INSERT
//	sign-out, revoke               1 INSERT
//	IP change in the same country  0 (two GeoIP lookups, in memory)
//	change of country              2: one SELECT of the last day's events (to log
//	                               each country once a day), one INSERT
//
// plus Notify's own work, which runs in the same goroutine: hand slow work
// (mail) off to a queue. BENCHMARKS.md and docs/alerts.md give measured
// times.
//
// # Retention
//
// Cleanup deletes the events older than Retention (default 180 days) in
// batches; StartCleaner runs it every CleanupInterval. IP addresses and
// User-Agents are personal data: Retention is how long the log keeps them.
package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/device"
	"github.com/qsessions/qsessions/internal/ratelog"
	"github.com/qsessions/qsessions/location"
)

// Defaults of Options.
const (
	// DefaultWindow is how long a device or country stays known after the
	// last sign-in from it: 90 days.
	DefaultWindow = 90 * 24 * time.Hour
	// DefaultRetention is how long events are kept: 180 days, twice the
	// window, so that an account silent for longer than Window but less
	// than Retention still has a history to compare with (and alerts).
	DefaultRetention = 180 * 24 * time.Hour
	// DefaultScan is how many of a user's newest events a sign-in reads.
	DefaultScan = 200
	// DefaultTimeout bounds the log and session queries of one event.
	DefaultTimeout = 2 * time.Second
	// DefaultCleanupInterval is how often StartCleaner runs Cleanup.
	DefaultCleanupInterval = time.Hour
	// CleanupBatch is how many events one DeleteBefore call removes.
	CleanupBatch = 1000
	// LocalNetwork is the Location of private, loopback and other
	// non-routable addresses.
	LocalNetwork = "Local network"
)

// repeatWindow is how long a session's change to a country is logged once.
const repeatWindow = 24 * time.Hour

// Options configure New. Manager and Log are required.
type Options struct {
	// Manager is the session manager whose events are heard (Attach) and
	// whose Backend lists a user's live sessions; its clock (Now) and
	// Logger are the defaults here.
	Manager *qsessions.Manager
	// Log keeps the events: the generated ent New<Event>Log, MemLog, or the
	// app's own.
	Log qsessions.EventLog
	// Locator finds places and countries (location.Open); nil: no places,
	// and no sign-in is from a new location.
	Locator location.Locator
	// Window is how long a device or a country stays known after the last
	// sign-in from it (the reach of "recently ended"); default
	// DefaultWindow.
	Window time.Duration
	// Retention is how long events are kept (Cleanup); default
	// DefaultRetention. It must be at least Window.
	Retention time.Duration
	// Scan is how many of the user's newest events a sign-in reads to find
	// the known devices and countries; default DefaultScan. It bounds the
	// cost for users with many events; the oldest beyond it are not
	// compared.
	Scan int
	// Notify, when set, hears of sign-ins from a new device or location and
	// of location changes, after the log was written (or failed to be). It
	// runs in the goroutine of the request that caused the event, before
	// the response is sent, with a context that is not cancelled with the
	// request and has no deadline: queue slow work. Do not use the
	// request's qsessions.Session in it (Login holds its lock while the
	// event is reported). A panic in it is logged and never fails the
	// request.
	Notify func(ctx context.Context, e qsessions.LoggedEvent)
	// Timeout bounds the queries of one event (live sessions, log read and
	// write together); default DefaultTimeout. A log that does not answer
	// in time costs the request at most this long.
	Timeout time.Duration
	// CleanupInterval is how often StartCleaner runs Cleanup; default
	// DefaultCleanupInterval.
	CleanupInterval time.Duration
	// Logger receives failures (rate-limited); default the Manager's
	// Logger, else slog.Default().
	Logger *slog.Logger
}

// Alerts writes the security log and raises sign-in alerts from the
// Manager's events. Create it with New; it is safe for concurrent use.
type Alerts struct {
	o    Options
	logs ratelog.Limiter

	cleanerMu   sync.Mutex
	stopCleaner context.CancelFunc
}

// New checks o and returns the alerts, not yet listening: call Attach (or
// set Manager.OnEvent to Hook yourself). It errors, naming the field, when
// Manager or Log is missing, a duration or Scan is negative, or Retention
// is shorter than Window. Cost: none.
func New(o Options) (*Alerts, error) {
	switch {
	case o.Manager == nil:
		return nil, errors.New("alerts: Options.Manager is required")
	case o.Log == nil:
		return nil, errors.New("alerts: Options.Log is required (the generated New<Event>Log of the app's ent package, or alerts.NewMemLog())")
	case o.Window < 0 || o.Retention < 0 || o.Timeout < 0 || o.CleanupInterval < 0:
		return nil, errors.New("alerts: Options.Window, Retention, Timeout and CleanupInterval must not be negative (0 means the default)")
	case o.Scan < 0:
		return nil, errors.New("alerts: Options.Scan must not be negative (0 means the default)")
	}
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.Retention == 0 {
		o.Retention = max(DefaultRetention, o.Window)
	}
	if o.Retention < o.Window {
		return nil, fmt.Errorf("alerts: Options.Retention (%s) is shorter than Window (%s): the log would forget sign-ins the window still counts", o.Retention, o.Window)
	}
	if o.Scan == 0 {
		o.Scan = DefaultScan
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.CleanupInterval == 0 {
		o.CleanupInterval = DefaultCleanupInterval
	}
	return &Alerts{o: o}, nil
}

// Options returns the options with their defaults filled in.
func (a *Alerts) Options() Options { return a.o }

// Attach makes the alerts hear the Manager's events: it sets
// Manager.OnEvent to Hook, after the OnEvent already set (if any), which
// keeps being called first. Call it once, before the Manager serves
// requests (Manager fields must not change while it is in use).
func (a *Alerts) Attach() {
	m := a.o.Manager
	prev := m.OnEvent
	if prev == nil {
		m.OnEvent = a.Hook
		return
	}
	m.OnEvent = func(ctx context.Context, e qsessions.Event) {
		prev(ctx, e)
		a.Hook(ctx, e)
	}
}

func (a *Alerts) logger() *slog.Logger {
	switch {
	case a.o.Logger != nil:
		return a.o.Logger
	case a.o.Manager.Logger != nil:
		return a.o.Manager.Logger
	}
	return slog.Default()
}

func (a *Alerts) now() time.Time {
	if a.o.Manager.Now != nil {
		return backend.Time(a.o.Manager.Now())
	}
	return backend.Time(time.Now())
}

// fail logs a failure of class, at most once a minute per class.
func (a *Alerts) fail(ctx context.Context, class, msg string, args ...any) {
	a.logs.Log(ctx, a.logger(), slog.LevelError, "alerts-"+class, "alerts: "+msg, args...)
}

// Hook handles one event as Manager.OnEvent: it enriches it, judges a
// sign-in against the user's other sessions, drops an IP change that stays
// in its country, appends the rest to the log and calls Notify for new
// devices, new locations and location changes. Events of anonymous
// sessions are ignored. It never panics and returns nothing: failures are
// logged (rate-limited). Cost: see the package documentation.
func (a *Alerts) Hook(ctx context.Context, e qsessions.Event) {
	if e.UserID == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			a.fail(ctx, "panic", "handling a session event panicked; the change stands", "panic", r, "event", string(e.Kind))
		}
	}()
	if e.Time.IsZero() {
		e.Time = a.now()
	}
	qctx, cancel := context.WithTimeout(ctx, a.o.Timeout)
	defer cancel()
	le := a.Enrich(e)
	notify := false
	switch e.Kind {
	case qsessions.EventSignIn:
		notify = a.judge(qctx, &le)
	case qsessions.EventIPChange:
		if !a.moved(qctx, le) {
			return
		}
		notify = true
	}
	if err := a.o.Log.Append(qctx, le); err != nil {
		if userGone(e, err) {
			a.logger().DebugContext(ctx, "alerts: not logging the end of a deleted user's session", "err", err)
		} else {
			a.fail(ctx, "append", "writing the security log failed; the change stands", "event", string(e.Kind), "err", err)
		}
	}
	if notify && a.o.Notify != nil {
		a.notify(ctx, le)
	}
}

// userGone reports whether err is the log refusing the end of a session
// whose user was deleted: ent reports the sessions a user delete cascaded
// away (CauseEnt), and the log's foreign key to the user, gone too,
// refuses them. Those ends have no one to be shown to.
func userGone(e qsessions.Event, err error) bool {
	return e.Cause == qsessions.CauseEnt && strings.Contains(strings.ToLower(err.Error()), "foreign key")
}

func (a *Alerts) notify(ctx context.Context, le qsessions.LoggedEvent) {
	defer func() {
		if r := recover(); r != nil {
			a.fail(ctx, "notify", "Options.Notify panicked; the change stands", "panic", r, "event", string(le.Kind))
		}
	}()
	a.o.Notify(ctx, le)
}

// Enrich returns e with what can be known without a query: the device's
// name from the User-Agent (empty without one) and the place of the IP
// address (Location and Country; LocalNetwork for addresses that are not
// routable; empty without a Locator or when the lookup knows nothing).
// NewDevice and NewLocation are left false. Cost: one User-Agent parse and
// at most one Locator lookup.
func (a *Alerts) Enrich(e qsessions.Event) qsessions.LoggedEvent {
	le := qsessions.LoggedEvent{Event: e, Device: deviceName(e.UserAgent)}
	le.Location, le.Country = a.place(e.IP)
	return le
}

// deviceName is the device a sign-in is compared by: the label people see.
func deviceName(ua string) string {
	if ua == "" {
		return ""
	}
	return device.Parse(ua).Label()
}

// place returns the place and country code of ip (see Enrich).
func (a *Alerts) place(ip string) (where, country string) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return "", ""
	}
	addr = addr.Unmap().WithZone("")
	if !location.Routable(addr) {
		return LocalNetwork, ""
	}
	if a.o.Locator == nil {
		return "", ""
	}
	info, err := a.o.Locator.Lookup(addr)
	if err != nil {
		a.fail(context.Background(), "locate", "looking an address up failed", "err", err)
		return "", ""
	}
	return info.String(), info.CountryCode
}

// distrusts reports whether a revoke with this cause says the session was
// not wanted: the user ended it from another session, or an administrator
// ended that one session (AdminRevoke, the admin pages). Its device and
// place then do not count as known. Bulk ends (RevokeUser by the app or
// the CLI, the cap, ent deletes) say nothing about the device.
func distrusts(c qsessions.Cause) bool {
	return c == qsessions.CauseOwner || c == qsessions.CauseAdmin
}

// judge sets le.NewDevice and le.NewLocation for a sign-in (see the package
// documentation) and reports whether the user should hear of it. A failed
// query leaves both false: the sign-in is logged, not announced.
func (a *Alerts) judge(ctx context.Context, le *qsessions.LoggedEvent) bool {
	now := le.Time
	live, err := a.o.Manager.Backend.UserSessions(ctx, le.UserID, now)
	if err != nil {
		a.fail(ctx, "sessions", "listing the user's sessions for a sign-in failed; no alert", "err", err)
		return false
	}
	evs, err := a.o.Log.Recent(ctx, le.UserID, now.Add(-a.o.Retention), a.o.Scan)
	if err != nil {
		a.fail(ctx, "recent", "reading the security log for a sign-in failed; no alert", "err", err)
		return false
	}
	devices := map[string]bool{}
	countries := map[string]bool{}
	history := len(evs) > 0
	placed := map[string]string{} // country by IP, one lookup per address
	for _, r := range live {
		if backend.PublicID(r.Key) == le.SessionID {
			continue
		}
		history = true
		devices[deviceName(r.UserAgent)] = true
		cc, ok := placed[r.IP]
		if !ok {
			_, cc = a.place(r.IP)
			placed[r.IP] = cc
		}
		if cc != "" {
			countries[cc] = true
		}
	}
	distrusted := map[string]bool{}
	for _, ev := range evs {
		if ev.Kind == qsessions.EventRevoke && distrusts(ev.Cause) {
			distrusted[ev.SessionID] = true
		}
	}
	since := now.Add(-a.o.Window)
	for _, ev := range evs {
		if ev.Time.Before(since) || distrusted[ev.SessionID] || ev.SessionID == le.SessionID {
			continue
		}
		switch ev.Kind {
		case qsessions.EventSignIn:
			devices[ev.Device] = true
			if ev.Country != "" {
				countries[ev.Country] = true
			}
		case qsessions.EventIPChange:
			if ev.Country != "" {
				countries[ev.Country] = true
			}
		}
	}
	if !history {
		return false
	}
	le.NewDevice = !devices[le.Device]
	le.NewLocation = le.Country != "" && !countries[le.Country]
	return le.NewDevice || le.NewLocation
}

// moved reports whether an IP change took the session to another country
// that it has not been logged moving to in the last day. A failed read of
// the log counts as not logged: better a repeated alert than a lost one.
func (a *Alerts) moved(ctx context.Context, le qsessions.LoggedEvent) bool {
	if le.Country == "" {
		return false
	}
	if _, prev := a.place(le.PreviousIP); prev == "" || prev == le.Country {
		return false
	}
	evs, err := a.o.Log.Recent(ctx, le.UserID, le.Time.Add(-repeatWindow), a.o.Scan)
	if err != nil {
		a.fail(ctx, "recent", "reading the security log for a location change failed", "err", err)
		return true
	}
	for _, ev := range evs {
		if ev.Kind == qsessions.EventIPChange && ev.SessionID == le.SessionID && ev.Country == le.Country {
			return false
		}
	}
	return true
}

// Cleanup deletes the events older than Retention, CleanupBatch at a time
// (each batch one SELECT of ids on the created_at index and one DELETE, for
// the generated log), until none is left, and returns how many went. It
// stops at the first error, returning the count so far. Run it from a
// scheduler of your own, or let StartCleaner run it.
func (a *Alerts) Cleanup(ctx context.Context) (int, error) {
	before := a.now().Add(-a.o.Retention)
	total := 0
	for {
		n, err := a.o.Log.DeleteBefore(ctx, before, CleanupBatch)
		total += n
		if err != nil {
			return total, fmt.Errorf("alerts: deleting events older than %s: %w", before.Format(time.RFC3339), err)
		}
		if n < CleanupBatch {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// StartCleaner runs Cleanup at once and then every CleanupInterval in a
// goroutine until ctx ends or StopCleaner is called; errors are logged.
// Calling it again restarts it.
func (a *Alerts) StartCleaner(ctx context.Context) {
	a.cleanerMu.Lock()
	defer a.cleanerMu.Unlock()
	if a.stopCleaner != nil {
		a.stopCleaner()
	}
	ctx, cancel := context.WithCancel(ctx)
	a.stopCleaner = cancel
	go func() {
		t := time.NewTicker(a.o.CleanupInterval)
		defer t.Stop()
		for {
			if n, err := a.Cleanup(ctx); err != nil && ctx.Err() == nil {
				a.fail(ctx, "cleanup", "deleting old security events failed", "deleted", n, "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// StopCleaner stops the goroutine StartCleaner started, if any.
func (a *Alerts) StopCleaner() {
	a.cleanerMu.Lock()
	defer a.cleanerMu.Unlock()
	if a.stopCleaner != nil {
		a.stopCleaner()
		a.stopCleaner = nil
	}
}
