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
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/qsessions/qsessions/backend"
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
)

// Errors of the session API; test with errors.Is.
var (
	// ErrNotFound: no live session of that user has that public id.
	ErrNotFound = errors.New("qsessions: no such session")
	// ErrTooLarge: the encoded session would pass Manager.MaxSize.
	ErrTooLarge = errors.New("qsessions: session data too large")
	// ErrHeadersWritten: a change after the response headers were sent, when
	// the session can no longer be saved or its cookie set.
	ErrHeadersWritten = errors.New("qsessions: session changed after the response headers were written")
	// ErrSessionInterrupted is backend.ErrSessionInterrupted: the session was
	// revoked or expired while the request ran.
	ErrSessionInterrupted = backend.ErrSessionInterrupted
)

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
	// Now is the clock, UTC; default time.Now. Tests pass a fake clock.
	Now func() time.Time
	// Logger receives errors that have no caller to return to (background
	// cleanup); default slog.Default().
	Logger *slog.Logger

	cleanerMu   sync.Mutex
	stopCleaner context.CancelFunc
}

// New returns a Manager over b with the defaults above.
func New(b backend.Backend) *Manager {
	return &Manager{
		Backend:            b,
		Lifetime:           DefaultLifetime,
		ActivityInterval:   DefaultActivityInterval,
		MaxSize:            DefaultMaxSize,
		MaxSessionsPerUser: DefaultMaxSessionsPerUser,
		CleanupInterval:    time.Hour,
	}
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

func (m *Manager) lifetime(persist int8) time.Duration {
	if persist > 0 && m.RememberMeLifetime > 0 {
		return m.RememberMeLifetime
	}
	if m.Lifetime > 0 {
		return m.Lifetime
	}
	return DefaultLifetime
}

// PublicID returns the id pages, JSON and logs show for the session stored
// under key: 16 hex digits of SHA-256 over the key. It reveals neither the
// token nor the stored key. Cost: one SHA-256.
func PublicID(key string) string {
	sum := sha256.Sum256([]byte("qsessions public id\x00" + key))
	return hex.EncodeToString(sum[:8])
}

// Info describes one live session for a "your active sessions" page.
type Info struct {
	// ID is the public id (PublicID), never the token or the stored key.
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

	key string
}

// InfoOf describes the stored session r for a listing (Current false).
// Cost: one SHA-256 for the public id.
func InfoOf(r *backend.Record) Info { return infoOf(r, "") }

func infoOf(r *backend.Record, current string) Info {
	return Info{
		ID: PublicID(r.Key), Current: r.Key == current && current != "",
		UserID: r.UserID, UserAgent: r.UserAgent, IP: r.IP,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, LastActivity: r.LastActivity,
		ExpireDate: r.ExpireDate, key: r.Key,
	}
}

// currentKey returns the stored key of the session in ctx, if any.
func currentKey(ctx context.Context) string {
	s := FromContext(ctx)
	if s == nil {
		return ""
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
	rs, err := m.Backend.UserSessions(ctx, userID, m.now())
	if err != nil {
		return nil, err
	}
	cur := currentKey(ctx)
	out := make([]Info, len(rs))
	for i, r := range rs {
		out[i] = infoOf(r, cur)
	}
	return out, nil
}

// Revoke ends userID's session with the given public id. A session of
// another user, or an unknown id, is ErrNotFound and nothing is deleted.
// Cost: the user's session list plus one DELETE.
func (m *Manager) Revoke(ctx context.Context, userID any, publicID string) error {
	if userID == nil || publicID == "" {
		return ErrNotFound
	}
	rs, err := m.Backend.UserSessions(ctx, userID, m.now())
	if err != nil {
		return err
	}
	for _, r := range rs {
		if PublicID(r.Key) == strings.ToLower(publicID) {
			n, err := m.Backend.Delete(ctx, r.Key)
			if err != nil {
				return err
			}
			if n == 0 {
				return ErrNotFound
			}
			return nil
		}
	}
	return ErrNotFound
}

// AdminRevoke ends the session with the given public id for admin tools,
// which list sessions with their owners: userID is the owner the listing
// showed. Unlike Revoke it is meant for callers acting on another user's
// behalf; the check that the caller is an admin is the app's. Anonymous
// sessions carry no account and end by expiry or cleanup. ErrNotFound when
// the user has no such session. Cost: as Revoke.
func (m *Manager) AdminRevoke(ctx context.Context, userID any, publicID string) error {
	return m.Revoke(ctx, userID, publicID)
}

// RevokeOthers ends every live session of userID except the current one of
// the request in ctx ("sign out everywhere else") and returns how many
// ended.
func (m *Manager) RevokeOthers(ctx context.Context, userID any) (int, error) {
	return m.revokeUser(ctx, userID, currentKey(ctx))
}

// RevokeUser ends every live session of userID, the current one included
// ("sign out everywhere"; after a password change), and returns how many
// ended.
func (m *Manager) RevokeUser(ctx context.Context, userID any) (int, error) {
	return m.revokeUser(ctx, userID, "")
}

func (m *Manager) revokeUser(ctx context.Context, userID any, except string) (int, error) {
	if userID == nil {
		return 0, nil
	}
	total := 0
	// A login that races the listing adds a row the first pass missed; a
	// second pass that finds nothing new ends the loop.
	for range 3 {
		rs, err := m.Backend.UserSessions(ctx, userID, m.now())
		if err != nil {
			return total, err
		}
		keys := make([]string, 0, len(rs))
		for _, r := range rs {
			if r.Key != except {
				keys = append(keys, r.Key)
			}
		}
		if len(keys) == 0 {
			return total, nil
		}
		n, err := m.Backend.Delete(ctx, keys...)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
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

// enforceCap ends userID's sessions past MaxSessionsPerUser, oldest activity
// first, keeping keep.
func (m *Manager) enforceCap(ctx context.Context, userID any, keep string) error {
	limit := m.MaxSessionsPerUser
	if limit == 0 {
		limit = DefaultMaxSessionsPerUser
	}
	if limit < 0 {
		return nil
	}
	rs, err := m.Backend.UserSessions(ctx, userID, m.now())
	if err != nil || len(rs) <= limit {
		return err
	}
	// rs is newest activity first; the kept session counts against the cap.
	var drop []string
	kept := 1
	for _, r := range rs {
		if r.Key == keep {
			continue
		}
		if kept < limit {
			kept++
			continue
		}
		drop = append(drop, r.Key)
	}
	if len(drop) == 0 {
		return nil
	}
	if _, err := m.Backend.Delete(ctx, drop...); err != nil {
		return fmt.Errorf("qsessions: ending sessions past the per-user cap: %w", err)
	}
	return nil
}
