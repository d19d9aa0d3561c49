// Package qsessions gives ent-based web apps server-side sessions that know
// who owns them (a foreign key to the app's user), where they come from (IP)
// and on what (User-Agent), with django-qsessions' behaviour: list a user's
// sessions, revoke one, sign out everywhere else.
//
// A Manager holds the settings and the Backend (backend.DB or
// backend.CachedDB over the Store generated into the app's ent package).
// The middleware package puts a lazy *Session into each request's context;
// handlers get it with FromContext. A request that never touches its session
// costs no backend call.
package qsessions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/internal/ratelog"
)

// Defaults of a Manager's settings.
const (
	// DefaultLifetime is Django's SESSION_COOKIE_AGE: two weeks.
	DefaultLifetime = 14 * 24 * time.Hour
	// DefaultActivityInterval bounds last_activity writes to one a minute
	// per session, so a busy session costs no write per request.
	DefaultActivityInterval = time.Minute
	// DefaultMaxSize is the largest encoded session accepted: 64 KiB.
	DefaultMaxSize = 64 << 10
	// DefaultCleanupBatch is how many expired rows one cleanup statement
	// deletes.
	DefaultCleanupBatch = 1000
	// DefaultMaxSessionsPerUser is how many live sessions one user keeps
	// (GitLab's limit); a login past it ends the oldest.
	DefaultMaxSessionsPerUser = 100
	// DefaultTimeout bounds each backend call the Manager and its sessions
	// make (a load, a save, a login, a revoke, a listing): a database that
	// stops answering costs a request this long, not forever.
	DefaultTimeout = 3 * time.Second
)

// Errors of the session API; test with errors.Is. Errors about stored
// sessions are the backend's: backend.ErrNotFound (no such session, or not
// that user's) and backend.ErrSessionInterrupted (revoked or expired while
// the request ran).
var (
	// ErrTooLarge: the encoded session would pass Manager.MaxSize.
	ErrTooLarge = errors.New("qsessions: session data too large")
	// ErrHeadersWritten: a change after the response headers were sent, when
	// the session can no longer be saved or its cookie set.
	ErrHeadersWritten = errors.New("qsessions: session changed after the response headers were written")
	// ErrUnavailable wraps every failure of the backend (database or
	// cache) that the session API returns: it was down, refused, or slower
	// than Manager.Timeout. The session may be intact: answer 503 and let
	// the client retry; never treat it as "signed out".
	ErrUnavailable = errors.New("qsessions: the session store could not answer")
)

// unavailable wraps a backend failure of the step what in ErrUnavailable;
// the backend's answers (not found, interrupted) pass unchanged.
func unavailable(what string, err error) error {
	if err == nil || errors.Is(err, backend.ErrNotFound) || errors.Is(err, backend.ErrSessionInterrupted) ||
		errors.Is(err, backend.ErrUserID) || errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
}

// Manager creates, loads and saves sessions and manages a user's sessions.
// Create it with New and change its fields before first use; it is safe for
// concurrent use afterwards.
type Manager struct {
	// Backend stores the sessions: backend.NewDB(store) or a CachedDB.
	Backend backend.Backend

	// Lifetime is the absolute lifetime of a session from its creation;
	// default 14 days (Django's). Logins keep the deadline unless the
	// handler calls Session.Renew.
	Lifetime time.Duration
	// RememberMeLifetime is the absolute lifetime of a session whose
	// handler called SetRememberMe(true); 0 means Lifetime.
	RememberMeLifetime time.Duration
	// IdleTimeout ends a session that has seen no request for this long;
	// 0 (the default) turns it off. Its granularity is ActivityInterval.
	IdleTimeout time.Duration
	// ActivityInterval is the most often last_activity (and the idle
	// expiry) is written for a session nothing else changed; default one
	// minute.
	ActivityInterval time.Duration
	// MaxSize is the largest encoded session Set accepts, in bytes; default
	// 64 KiB (MySQL's blob would stop there; the column is mediumblob).
	MaxSize int
	// MaxSessionsPerUser caps a user's live sessions: a login past it ends
	// the ones with the oldest activity. Default 100; negative turns it off.
	MaxSessionsPerUser int
	// CleanupInterval is how often the background cleaner started by
	// StartCleaner runs ClearExpired; default one hour.
	CleanupInterval time.Duration
	// Timeout bounds each backend call made for a request: the lazy load,
	// the save, Login, Logout, listings and revokes. Default
	// DefaultTimeout (3 s): a database that holds a lock or stops answering
	// fails the request fast and visibly (the middleware answers 503)
	// instead of tying up a connection and the request for as long as the
	// database takes. A negative value turns the bound off (the caller's
	// context alone decides). ClearExpired is not bounded by it.
	Timeout time.Duration
	// OnEvent, when set, hears of sign-ins, sign-outs, revokes (with their
	// Cause) and address changes after each was committed, for sign-in
	// alerts and a security log (package alerts builds both on it). It runs
	// in the goroutine of the change, with a context that is not cancelled
	// with the request but ends at its deadline (or after Timeout); keep it
	// quick or hand off. It may call the Manager (UserSessions, say). A
	// panic in it is logged and never fails the request. Revokes through
	// ent outside the session API are reported when the Backend is
	// backend.DB or CachedDB over a generated Store (one SELECT of keys and
	// owners per ent delete).
	OnEvent func(ctx context.Context, e Event)
	// Legacy, when set, accepts the cookies of another session system
	// during a move to qsessions (see LegacyTokens; django.Tokens for
	// Django's). Default nil: only qsessions tokens are sessions.
	Legacy LegacyTokens
	// Now is the clock, UTC; default time.Now. Tests pass a fake clock.
	Now func() time.Time
	// Logger receives errors that have no caller to return to (background
	// cleanup); default slog.Default().
	Logger *slog.Logger

	cleanerMu   sync.Mutex
	stopCleaner context.CancelFunc
	logs        logLimiter
}

// New returns a Manager over b with the defaults above. When b tells its
// Store (backend.DB, CachedDB), the Manager listens on it for sessions
// ended through ent, reported to OnEvent once that is set; until then the
// listening costs nothing.
func New(b backend.Backend) *Manager {
	m := &Manager{
		Backend:            b,
		Lifetime:           DefaultLifetime,
		ActivityInterval:   DefaultActivityInterval,
		MaxSize:            DefaultMaxSize,
		MaxSessionsPerUser: DefaultMaxSessionsPerUser,
		CleanupInterval:    time.Hour,
		Timeout:            DefaultTimeout,
	}
	if s := storeOf(b); s != nil {
		s.AddInvalidator(endListener{m})
	}
	return m
}

// bounded returns ctx with the Manager's Timeout, and its cancel func.
func (m *Manager) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	d := m.Timeout
	if d == 0 {
		d = DefaultTimeout
	}
	if d < 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

func (m *Manager) now() time.Time {
	if m.Now != nil {
		return backend.Time(m.Now())
	}
	return backend.Time(time.Now())
}

func (m *Manager) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.Default()
}

func (m *Manager) maxSize() int {
	if m.MaxSize > 0 {
		return m.MaxSize
	}
	return DefaultMaxSize
}

func (m *Manager) lifetime(persist Persistence) time.Duration {
	if persist == PersistRemember && m.RememberMeLifetime > 0 {
		return m.RememberMeLifetime
	}
	if m.Lifetime > 0 {
		return m.Lifetime
	}
	return DefaultLifetime
}

// Info describes one live session for a "your active sessions" page.
type Info struct {
	// ID is the public id (backend.PublicID), never the token or the
	// stored key.
	ID string
	// Current marks the session of the request that asked.
	Current bool
	// UserID is the owner, in the app's ID type; nil for anonymous.
	UserID       any
	UserAgent    string
	IP           string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	LastActivity time.Time
	ExpireDate   time.Time
	// DeviceBound marks a device-bound session (DBSC): its cookie is worth
	// nothing without the device's key.
	DeviceBound bool

	key string
}

// InfoOf describes the stored session r for a listing (Current false).
// Cost: a struct copy.
func InfoOf(r *backend.Record) Info { return infoOf(r, "") }

func infoOf(r *backend.Record, current string) Info {
	return Info{
		ID: backend.PublicID(r.Key), Current: r.Key == current && current != "",
		UserID: r.UserID, UserAgent: r.UserAgent, IP: r.IP,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, LastActivity: r.LastActivity,
		ExpireDate: r.ExpireDate, DeviceBound: r.Bound(), key: r.Key,
	}
}

// currentKey returns the stored key of the session in ctx, if any.
func currentKey(ctx context.Context) string {
	s := FromContext(ctx)
	if s == nil {
		return ""
	}
	if k := s.cur.Load(); k != nil {
		return *k // known: no lock (Login and Logout hold it while OnEvent runs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rec != nil {
		return s.rec.Key
	}
	if s.token != "" {
		return backend.KeyOf(s.token)
	}
	return ""
}

// UserSessions returns userID's live sessions, newest activity first, the
// one of the request in ctx (if any) marked Current. One indexed query (or
// the cache's, per backend).
func (m *Manager) UserSessions(ctx context.Context, userID any) ([]Info, error) {
	if userID == nil {
		return nil, nil
	}
	bctx, cancel := m.bounded(ctx)
	defer cancel()
	rs, err := m.Backend.UserSessions(bctx, userID, m.now())
	if err != nil {
		return nil, unavailable("listing the user's sessions", err)
	}
	cur := currentKey(ctx)
	out := make([]Info, len(rs))
	for i, r := range rs {
		out[i] = infoOf(r, cur)
	}
	return out, nil
}

// Find returns the stored session, live or expired, whose public id is
// publicID (upper case accepted), for admin tools; backend.ErrNotFound when
// there is none or the id is malformed (no query then). Cost: one
// primary-key range SELECT.
func (m *Manager) Find(ctx context.Context, publicID string) (*backend.Record, error) {
	rs, err := m.find(ctx, publicID)
	if err != nil {
		return nil, err
	}
	switch len(rs) {
	case 0:
		return nil, fmt.Errorf("session %s: %w", publicID, backend.ErrNotFound)
	case 1:
		return rs[0], nil
	}
	return nil, fmt.Errorf("qsessions: %d sessions share the public id %s; end them by user or wait for one to expire", len(rs), publicID)
}

func (m *Manager) find(ctx context.Context, publicID string) ([]*backend.Record, error) {
	id, ok := backend.ParsePublicID(publicID)
	if !ok {
		return nil, nil
	}
	ctx, cancel := m.bounded(ctx)
	defer cancel()
	rs, err := m.Backend.Find(ctx, id)
	return rs, unavailable("finding the session", err)
}

// Revoke ends userID's live session with the given public id. A session of
// another user, an expired one or an unknown id is backend.ErrNotFound and
// nothing is deleted. Cost: one primary-key range SELECT and one DELETE.
func (m *Manager) Revoke(ctx context.Context, userID any, publicID string) error {
	if userID == nil {
		return backend.ErrNotFound
	}
	rs, err := m.find(ctx, publicID)
	if err != nil {
		return err
	}
	now := m.now()
	var ends []ending
	for _, r := range rs {
		if r.UserID == userID && r.ExpireDate.After(now) {
			ends = append(ends, endingOf(r))
		}
	}
	if len(ends) == 0 {
		return backend.ErrNotFound
	}
	n, err := m.revoke(ctx, causeOf(ctx, CauseOwner), ends)
	if err == nil && n == 0 {
		return backend.ErrNotFound // ended meanwhile
	}
	return err
}

func endingOf(r *backend.Record) ending {
	return ending{key: r.Key, userID: r.UserID, ip: r.IP, ua: r.UserAgent}
}

// AdminRevoke ends the session with the given public id, whoever owns it,
// live or expired, anonymous too: for admin tools and the CLI, which list
// sessions with their owners. The check that the caller may do this is the
// app's. backend.ErrNotFound when no session has that id. It takes the same
// path as every revoke (the cached backend's tombstone included). Cost: one
// primary-key range SELECT and one DELETE.
func (m *Manager) AdminRevoke(ctx context.Context, publicID string) error {
	rs, err := m.find(ctx, publicID)
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		return fmt.Errorf("session %s: %w", publicID, backend.ErrNotFound)
	}
	ends := make([]ending, len(rs))
	for i, r := range rs {
		ends[i] = endingOf(r)
	}
	n, err := m.revoke(ctx, causeOf(ctx, CauseAdmin), ends)
	if err == nil && n == 0 {
		return fmt.Errorf("session %s: %w", publicID, backend.ErrNotFound)
	}
	return err
}

// RevokeOthers ends every live session of userID except the current one of
// the request in ctx ("sign out everywhere else") and returns how many
// ended. Cost: one indexed SELECT of keys and one DELETE per pass.
func (m *Manager) RevokeOthers(ctx context.Context, userID any) (int, error) {
	return m.revokeUser(ctx, userID, currentKey(ctx), causeOf(ctx, CauseOwner))
}

// RevokeUser ends every live session of userID, the current one included
// ("sign out everywhere"; after a password change), and returns how many
// ended. Cost: as RevokeOthers.
func (m *Manager) RevokeUser(ctx context.Context, userID any) (int, error) {
	return m.revokeUser(ctx, userID, "", causeOf(ctx, CauseApp))
}

// revokeUserPasses bounds the passes of revokeUser: a login that races the
// listing adds a row the first pass missed; a pass that finds nothing new
// ends the loop, and a user who keeps logging in faster than this is not
// chased further.
const revokeUserPasses = 3

func (m *Manager) revokeUser(ctx context.Context, userID any, except string, cause Cause) (int, error) {
	if userID == nil {
		return 0, nil
	}
	total := 0
	for range revokeUserPasses {
		bctx, cancel := m.bounded(ctx)
		all, err := m.Backend.ExcessKeys(bctx, userID, m.now(), 0)
		cancel()
		if err != nil {
			return total, unavailable("listing the user's sessions", err)
		}
		var ends []ending
		for _, k := range all {
			if k != except {
				ends = append(ends, ending{key: k, userID: userID})
			}
		}
		if len(ends) == 0 {
			return total, nil
		}
		n, err := m.revoke(ctx, cause, ends)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// revoke ends the sessions: the one path every revoke takes (logout, the
// user, an admin, the cap, the CLI), so the backend's tombstones and the
// events are alike. It reports an EventRevoke per session (EventSignOut for
// a logout, cause "") once the DELETE succeeded, and returns how many rows
// went.
func (m *Manager) revoke(ctx context.Context, cause Cause, ends []ending) (int, error) {
	keys := make([]string, len(ends))
	for i, e := range ends {
		keys[i] = e.key
	}
	bctx, cancel := m.bounded(ctx)
	n, err := m.Backend.Delete(bctx, keys...)
	cancel()
	if err != nil {
		return n, unavailable("deleting sessions", err)
	}
	if n > 0 && m.OnEvent != nil {
		kind, by := EventRevoke, ""
		if cause == "" {
			kind = EventSignOut
		} else if cause == CauseOwner {
			// Revoke and RevokeOthers run outside the session's lock;
			// Login (the cap) and Logout hold it and never get here.
			if cur := currentKey(ctx); cur != "" {
				by = backend.PublicID(cur)
			}
		}
		for _, e := range ends {
			if e.userID == nil {
				continue // anonymous sessions belong to no one's security log
			}
			m.emit(ctx, Event{Kind: kind, Cause: cause, UserID: e.userID, SessionID: backend.PublicID(e.key), ByID: by, IP: e.ip, UserAgent: e.ua})
		}
	}
	return n, nil
}

// ClearExpired deletes every expired session in batches and returns how
// many went. Expired sessions are never served anyway; this reclaims space.
func (m *Manager) ClearExpired(ctx context.Context) (int, error) {
	return m.Backend.ClearExpired(ctx, m.now())
}

// StartCleaner runs ClearExpired every CleanupInterval in a goroutine until
// ctx ends or StopCleaner is called; errors go to Logger. Calling it again
// restarts it.
func (m *Manager) StartCleaner(ctx context.Context) {
	m.cleanerMu.Lock()
	defer m.cleanerMu.Unlock()
	if m.stopCleaner != nil {
		m.stopCleaner()
	}
	ctx, cancel := context.WithCancel(ctx)
	m.stopCleaner = cancel
	every := m.CleanupInterval
	if every <= 0 {
		every = time.Hour
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if n, err := m.ClearExpired(ctx); err != nil && ctx.Err() == nil {
				m.logger().Error("qsessions: clearing expired sessions", "err", err, "deleted", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// StopCleaner stops the cleaner StartCleaner started, if any.
func (m *Manager) StopCleaner() {
	m.cleanerMu.Lock()
	defer m.cleanerMu.Unlock()
	if m.stopCleaner != nil {
		m.stopCleaner()
		m.stopCleaner = nil
	}
}

// maxSessions is MaxSessionsPerUser with its default; negative: no cap.
func (m *Manager) maxSessions() int {
	if m.MaxSessionsPerUser == 0 {
		return DefaultMaxSessionsPerUser
	}
	return m.MaxSessionsPerUser
}

// enforceCap ends userID's sessions past MaxSessionsPerUser, oldest
// activity first, never keep. It runs after a login was committed, so it
// never fails the login: an error is logged (at most once a minute) and the
// cap is enforced at the user's next login. Cost: one indexed SELECT of keys
// (none returned under the cap), and one DELETE at the cap.
func (m *Manager) enforceCap(ctx context.Context, userID any, keep string) {
	limit := m.maxSessions()
	if limit < 0 {
		return
	}
	bctx, cancel := m.bounded(ctx)
	// The kept session counts against the cap: limit-1 others stay. The
	// sessions past the newest limit-1 go, minus keep when it is among
	// them; when it is not (it is among the newest), the first of them
	// stays in its place.
	keys, err := m.Backend.ExcessKeys(bctx, userID, m.now(), max(limit-1, 0))
	cancel()
	if err == nil {
		if i := slices.Index(keys, keep); i >= 0 {
			keys = slices.Delete(keys, i, i+1)
		} else if len(keys) > 0 {
			keys = keys[1:]
		}
		var ends []ending
		for _, k := range keys {
			ends = append(ends, ending{key: k, userID: userID})
		}
		if len(ends) > 0 {
			_, err = m.revoke(ctx, CauseCap, ends)
		}
	}
	if err != nil {
		m.logs.log(m.logger(), "cap", "qsessions: ending sessions past the per-user cap failed; the login stands", "err", err)
	}
}

// logLimiter writes the Manager's failure lines at most once a minute per
// class.
type logLimiter struct{ l ratelog.Limiter }

func (l *logLimiter) log(logger *slog.Logger, class, msg string, args ...any) {
	l.l.Log(context.Background(), logger, slog.LevelError, class, msg, args...)
}
