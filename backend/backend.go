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
	// ErrNotFound: no live session has the key or public id (missing,
	// revoked, expired, or another user's). The one not-found error of
	// qsessions: the Manager and the pages return it too.
	ErrNotFound = errors.New("qsessions: session not found")
	// ErrKeyExists: an Insert met a row with the same key. DB.Create draws a
	// new token and retries; anything else reports it.
	ErrKeyExists = errors.New("qsessions: session key already exists")
	// ErrUserID: a user ID that is not of the app's ID type (or, for a
	// store with opaque IDs, does not fit the user_id column). A bug or bad
	// input, never an outage: it reaches no database.
	ErrUserID = errors.New("qsessions: user ID does not fit the user_id column")
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
	// DeviceKey is the public key (canonical JWK JSON) a device-bound
	// session (DBSC) is bound to; "" when not bound.
	DeviceKey string
	// DeviceSecret is a bound session's secret (the key of its short
	// cookie's MAC); nil when not bound.
	DeviceSecret []byte
}

// Bound reports whether the session is device-bound (DBSC).
func (r *Record) Bound() bool { return r != nil && r.DeviceKey != "" }

// Clone returns a deep copy of r; nil gives nil.
func (r *Record) Clone() *Record {
	if r == nil {
		return nil
	}
	c := *r
	if r.Data != nil {
		c.Data = append([]byte(nil), r.Data...)
	}
	if r.DeviceSecret != nil {
		c.DeviceSecret = append([]byte(nil), r.DeviceSecret...)
	}
	return &c
}

// Store is the persistent table of sessions. The database is the truth: a
// Store always reads from the primary, never a replica. Its writes do not
// call the Invalidators (the backends keep their cache themselves); only
// changes made through ent outside the Store do.
//
// Implementations: the Store generated into an app's ent package
// (NewSessionStore), sqlstore.Store over database/sql for tools that work on
// any app's table (the CLI), and MemStore for tests. All pass the same
// conformance suite and are safe for concurrent use.
type Store interface {
	// Get returns the session with key if it expires after now, else
	// ErrNotFound. One indexed SELECT.
	Get(ctx context.Context, key string, now time.Time) (*Record, error)
	// Insert adds rec (its device binding included) as a new row;
	// ErrKeyExists if the key is taken. It never overwrites (no upsert).
	Insert(ctx context.Context, rec *Record) error
	// Update writes rec over the row with rec.Key if that row expires after
	// now, keeping created_at and the device binding (only Bind writes
	// it, so a request that loaded the row before a binding cannot undo
	// it); ErrSessionInterrupted when there is none. One UPDATE.
	Update(ctx context.Context, rec *Record, now time.Time) error
	// Touch records activity without rewriting the data: it sets
	// last_activity, expire_date, updated_at, ip and user_agent from rec on
	// the row with rec.Key, only if that row expires after now and its
	// last_activity is before cutoff. It reports whether it wrote: false
	// means another request (of any process) recorded activity since cutoff,
	// or the session ended. One conditional UPDATE; concurrent touches of a
	// session within one interval write once.
	Touch(ctx context.Context, rec *Record, cutoff, now time.Time) (bool, error)
	// Bind stores a device binding (DBSC) on the live row key: the device
	// key and secret, or "" and nil to unbind. ErrNotFound when the row is
	// not live (never recreated). One UPDATE of the two columns.
	Bind(ctx context.Context, key, deviceKey string, secret []byte, now time.Time) error
	// Rotate replaces the live row oldKey by rec (a new key) in one
	// transaction: ErrKeyExists if rec.Key is taken, ErrSessionInterrupted
	// (and nothing written) if oldKey is no longer live.
	Rotate(ctx context.Context, oldKey string, rec *Record, now time.Time) error
	// Delete removes the rows with these keys and returns how many went.
	// Missing keys are not an error.
	Delete(ctx context.Context, keys ...string) (int, error)
	// DeleteExpired removes at most limit rows with from <= expire_date <=
	// now, in expire_date order (select a batch of keys on the expire_date
	// index, delete by key: no long lock, portable), and returns how many
	// went and the latest expire_date of the batch, the from of the next
	// one. Starting each batch where the last ended keeps a cleanup linear
	// where deleted index entries linger (InnoDB's purge lag).
	DeleteExpired(ctx context.Context, from, now time.Time, limit int) (n int, last time.Time, err error)
	// UserSessions returns the live sessions of userID, newest last activity
	// first. One query on the (user_id, expire_date) index.
	UserSessions(ctx context.Context, userID any, now time.Time) ([]*Record, error)
	// ExcessKeys returns the keys of userID's live sessions past the newest
	// keep of them by last activity (a per-user cap): keys only, never
	// session_data. One query on the (user_id, expire_date) index; it
	// returns nothing for a user under the cap.
	ExcessKeys(ctx context.Context, userID any, now time.Time, keep int) ([]string, error)
	// Find returns the sessions, live or expired, whose key starts with
	// publicID (a PublicID: 16 lowercase hex digits): a range scan of the
	// primary key, at most a few rows. Callers check liveness and owner.
	Find(ctx context.Context, publicID string) ([]*Record, error)
	// Check verifies that the session table and every column the Store uses
	// exist, so a missing migration is one clear error at start-up rather
	// than SQL errors per request. The error names what is missing. One or
	// two catalog queries.
	Check(ctx context.Context) error
	// AddInvalidator adds inv to those who hear of sessions that end through
	// ent outside the Store (deletes by predicate, updates that end
	// sessions, deleted users) and returns a func that removes it. Several
	// may listen (each cached backend over the store adds itself).
	AddInvalidator(inv Invalidator) (remove func())
}

// CappingStore is a Store that inserts a session and ends its user's
// oldest other sessions past a per-user cap in one go (one round trip where
// the database allows: the generated Store on Postgres), so a login costs
// one statement whether or not the user is at the cap. DB and CachedDB use
// it when their Store has it.
type CappingStore interface {
	Store
	// InsertCapped inserts rec as Insert does and, when rec's user has more
	// than keep other live sessions (expiring after now), deletes the
	// oldest of them by last activity, returning their keys (keys only,
	// never session_data); keep < 0 caps nothing.
	InsertCapped(ctx context.Context, rec *Record, now time.Time, keep int) (ended []string, err error)
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
