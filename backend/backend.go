// Package backend is the storage engine of qsessions: the Store interface
// that an app's generated ent code implements, the Invalidator that ent hooks
// call when sessions end outside the session API, and the backends built on a
// Store: DB (the database only) and, with a Cache in front, cached_db.
//
// The engine never imports generated code: an app's ent package implements
// Store (entschema/entcext generates it), and a Manager uses a Backend.
package backend

import (
	"context"
	"errors"
	"time"
)

// Errors a Store or Backend returns; test with errors.Is.
var (
	// ErrNotFound: no live session has the key (missing, revoked or expired).
	ErrNotFound = errors.New("qsessions: session not found")
	// ErrKeyExists: an Insert met a row with the same key. DB.Create draws a
	// new token and retries; anything else reports it.
	ErrKeyExists = errors.New("qsessions: session key already exists")
	// ErrSessionInterrupted: a save found no live row for the session: it was
	// revoked or expired while the request ran. The request's changes are
	// dropped and the session is not recreated (Django's SessionInterrupted).
	ErrSessionInterrupted = errors.New("qsessions: session was revoked or expired while the request ran")
)

// Record is one stored session: a row of qsessions_session.
type Record struct {
	// Key is the lowercase hex SHA-256 of the cookie token (the primary key).
	Key string
	// Data is the encoded session values.
	Data []byte
	// ExpireDate is when the session ends (absolute or idle, the earlier).
	ExpireDate time.Time
	// UserID is the owner's ID in the app's ID type (int, int64, string,
	// uuid.UUID, ...), or nil for an anonymous session.
	UserID any
	// UserAgent is the client's User-Agent, valid UTF-8, at most 300
	// characters; "" is stored as NULL.
	UserAgent string
	// IP is the client address normalised by net/netip; "" is stored as NULL.
	IP string
	// CreatedAt is set on insert and never changes.
	CreatedAt time.Time
	// UpdatedAt is set on every save.
	UpdatedAt time.Time
	// LastActivity is the last request that used the session, written at
	// most once per activity interval.
	LastActivity time.Time
}

// Clone returns a deep copy of r; nil gives nil.
func (r *Record) Clone() *Record {
	if r == nil {
		return nil
	}
	c := *r
	if r.Data != nil {
		c.Data = append([]byte(nil), r.Data...)
	}
	return &c
}

// Store is the persistent table of sessions. The database is the truth: a
// Store always reads from the primary, never a replica. Its writes do not
// call the Invalidator (the backends keep their cache themselves); only
// changes made through ent outside the Store do.
//
// Implementations: the Store generated into an app's ent package
// (NewSessionStore), and MemStore for tests. Both are safe for concurrent use.
type Store interface {
	// Get returns the session with key if it expires after now, else
	// ErrNotFound. One indexed SELECT.
	Get(ctx context.Context, key string, now time.Time) (*Record, error)
	// Insert adds rec as a new row; ErrKeyExists if the key is taken. It
	// never overwrites (no upsert).
	Insert(ctx context.Context, rec *Record) error
	// Update writes rec over the row with rec.Key if that row expires after
	// now, keeping created_at; ErrSessionInterrupted when there is none. One
	// UPDATE.
	Update(ctx context.Context, rec *Record, now time.Time) error
	// Rotate replaces the live row oldKey by rec (a new key) in one
	// transaction: ErrKeyExists if rec.Key is taken, ErrSessionInterrupted
	// (and nothing written) if oldKey is no longer live.
	Rotate(ctx context.Context, oldKey string, rec *Record, now time.Time) error
	// Delete removes the rows with these keys and returns how many went.
	// Missing keys are not an error.
	Delete(ctx context.Context, keys ...string) (int, error)
	// DeleteExpired removes at most limit rows expired at now (select a batch
	// of keys, delete by key: no long lock, portable) and returns how many.
	DeleteExpired(ctx context.Context, now time.Time, limit int) (int, error)
	// UserSessions returns the live sessions of userID, newest last activity
	// first. One query on the (user_id, expire_date) index.
	UserSessions(ctx context.Context, userID any, now time.Time) ([]*Record, error)
	// SetInvalidator sets who hears of sessions that end through ent outside
	// the Store (deletes by predicate, updates that end sessions, deleted
	// users). nil turns it off.
	SetInvalidator(Invalidator)
}

// Invalidator hears of live sessions that ended through ent outside the
// session API, so a cache drops them. The generated hooks call it with the
// keys after the statement, and again on commit inside a transaction. It
// must not fail the caller: it records failures itself.
type Invalidator interface {
	Invalidate(ctx context.Context, keys []string)
}

// InvalidatorFunc adapts a function to Invalidator.
type InvalidatorFunc func(ctx context.Context, keys []string)

// Invalidate calls f.
func (f InvalidatorFunc) Invalidate(ctx context.Context, keys []string) { f(ctx, keys) }
