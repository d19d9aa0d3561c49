package qsessions

import (
	"context"
	"time"

	"github.com/qsessions/qsessions/backend"
)

// EventKind names what happened to a session.
type EventKind string

// The kinds of Event.
const (
	// EventSignIn: Login stored a signed-in session.
	EventSignIn EventKind = "sign-in"
	// EventSignOut: a session was signed out from itself (Logout).
	EventSignOut EventKind = "sign-out"
	// EventRevoke: a session was ended by someone or something else; Cause
	// says who.
	EventRevoke EventKind = "revoke"
	// EventIPChange: a session's requests came from a new address, recorded
	// with its activity (at most once per ActivityInterval); PreviousIP is
	// the old one. The alerts package turns it into a change of country.
	EventIPChange EventKind = "ip-change"
)

// Cause says who ended a session (EventRevoke).
type Cause string

// The causes of a revoke.
const (
	// CauseOwner: the owner, from another of their sessions (Revoke,
	// RevokeOthers); Event.ByID is that session.
	CauseOwner Cause = "owner"
	// CauseApp: the app, for the user (RevokeUser, e.g. after a password
	// change).
	CauseApp Cause = "app"
	// CauseAdmin: an administrator (AdminRevoke, the admin pages).
	CauseAdmin Cause = "admin"
	// CauseCap: a login past MaxSessionsPerUser ended the oldest session.
	CauseCap Cause = "cap"
	// CauseCLI: the qsessions command-line tool.
	CauseCLI Cause = "cli"
	// CauseEnt: a delete or update through ent outside the session API,
	// a deleted user included.
	CauseEnt Cause = "ent"
)

// Event is a change to a user's sessions, reported to Manager.OnEvent
// after it was committed: sign-ins, sign-outs, revokes and address
// changes, for sign-in alerts and a security log (see package alerts).
type Event struct {
	// Kind is what happened; Cause who did it, for EventRevoke.
	Kind  EventKind
	Cause Cause
	// Time is the Manager's clock at the change.
	Time time.Time
	// UserID is the session's owner in the app's ID type (nil for an
	// anonymous session).
	UserID any
	// SessionID is the public id of the session concerned; ByID that of the
	// session whose request asked for it, when it is another one.
	SessionID, ByID string
	// IP and UserAgent are the session's (for a sign-in, the request's);
	// empty when a revoke did not read them (RevokeOthers, ent deletes).
	IP, UserAgent string
	// PreviousIP is the address before an EventIPChange.
	PreviousIP string
}

type causeKey struct{}

// WithCause labels the revokes made with ctx as cause, for Event.Cause:
// an admin tool calling RevokeUser passes CauseAdmin, the CLI CauseCLI.
func WithCause(ctx context.Context, c Cause) context.Context {
	return context.WithValue(ctx, causeKey{}, c)
}

func causeOf(ctx context.Context, def Cause) Cause {
	if c, ok := ctx.Value(causeKey{}).(Cause); ok && c != "" {
		return c
	}
	return def
}

// emit reports e to OnEvent, which runs in the caller's goroutine with a
// context that is not cancelled with the request but ends at its deadline
// (or after Timeout); a panic in it is recovered and logged, never failing
// the request.
func (m *Manager) emit(ctx context.Context, e Event) {
	if m.OnEvent == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = m.now()
	}
	defer func() {
		if r := recover(); r != nil {
			m.logs.log(m.logger(), "event", "qsessions: Manager.OnEvent panicked; the change stands", "panic", r, "event", string(e.Kind))
		}
	}()
	ectx, cancel := m.eventContext(ctx)
	defer cancel()
	m.OnEvent(ectx, e)
}

// eventContext is ctx without its cancellation (a client that hangs up does
// not cut a security log short) but with a bound: ctx's deadline when it
// has one, so an event never stretches the request past it, else Timeout.
func (m *Manager) eventContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ectx := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ectx, dl)
	}
	return m.bounded(ectx)
}

// ending is a session a revoke ends, with what the revoke knows of it.
type ending struct {
	key, ip, ua string
	userID      any
}

// endListener hears of sessions ended through ent, for OnEvent.
type endListener struct{ m *Manager }

func (endListener) Invalidate(context.Context, []string) {}

func (l endListener) Listening() bool { return l.m.OnEvent != nil }

func (l endListener) SessionsEnded(ctx context.Context, ended []backend.Ended) {
	for _, e := range ended {
		l.m.emit(ctx, Event{Kind: EventRevoke, Cause: CauseEnt, UserID: e.UserID, SessionID: backend.PublicID(e.Key)})
	}
}

// storeOf returns the Store under a backend that tells it.
func storeOf(b backend.Backend) backend.Store {
	if s, ok := b.(interface{ SessionStore() backend.Store }); ok {
		return s.SessionStore()
	}
	return nil
}

// LoggedEvent is an Event as a security log keeps it, with what package
// alerts worked out about it: the device's name, the place, and whether
// either is new for the user.
type LoggedEvent struct {
	Event
	// Device is the device's name for people ("Safari on iPhone").
	Device string
	// Location is "City, Country", "Country" or "" when unknown; Country its
	// ISO code.
	Location, Country string
	// NewDevice and NewLocation are set on a sign-in from a device or a
	// country none of the user's live or recently ended sessions had.
	NewDevice, NewLocation bool
}

// EventLog keeps LoggedEvents: the table generated from entschema.EventMixin
// (New<Event>Log in the app's ent package) or any other store. Package
// alerts writes it from Manager.OnEvent; pages read it.
type EventLog interface {
	// Append stores e. One INSERT.
	Append(ctx context.Context, e LoggedEvent) error
	// Recent returns userID's events at or after since, newest first, at
	// most limit. One query on the (user_id, created_at) index.
	Recent(ctx context.Context, userID any, since time.Time, limit int) ([]LoggedEvent, error)
	// DeleteBefore deletes at most limit events older than t and returns
	// how many went (retention; call it until it returns less than limit).
	DeleteBefore(ctx context.Context, t time.Time, limit int) (int, error)
}
