package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Backend is what a session Manager stores sessions through. DB talks to the
// database only; CachedDB puts a Cache in front of it. Times are passed in
// from the Manager's clock, never taken from the database. Wrappers (for
// tracing, say) implement it around another Backend.
type Backend interface {
	// Load returns the live session with key, or ErrNotFound.
	Load(ctx context.Context, key string, now time.Time) (*Record, error)
	// Create stores rec under a fresh token, sets rec.Key and returns the
	// token. A key conflict draws a new token.
	Create(ctx context.Context, rec *Record, now time.Time) (token string, err error)
	// Save writes an existing session; ErrSessionInterrupted when it is no
	// longer live.
	Save(ctx context.Context, rec *Record, now time.Time) error
	// Touch records activity, IP and user agent of an unchanged session
	// when no request did since cutoff (Store.Touch); it reports whether it
	// wrote.
	Touch(ctx context.Context, rec *Record, cutoff, now time.Time) (bool, error)
	// Bind stores or removes a device binding (Store.Bind).
	Bind(ctx context.Context, key, deviceKey string, secret []byte, now time.Time) error
	// Rotate moves the live session oldKey to a fresh token holding rec, sets
	// rec.Key and returns the token; ErrSessionInterrupted when oldKey is no
	// longer live.
	Rotate(ctx context.Context, oldKey string, rec *Record, now time.Time) (token string, err error)
	// Delete removes sessions by key and returns how many rows went.
	Delete(ctx context.Context, keys ...string) (int, error)
	// UserSessions lists userID's live sessions, newest activity first.
	UserSessions(ctx context.Context, userID any, now time.Time) ([]*Record, error)
	// ExcessKeys returns the keys of userID's live sessions past the newest
	// keep (Store.ExcessKeys).
	ExcessKeys(ctx context.Context, userID any, now time.Time, keep int) ([]string, error)
	// Find returns the sessions, live or expired, with this public id
	// (Store.Find).
	Find(ctx context.Context, publicID string) ([]*Record, error)
	// ClearExpired deletes every session expired at now, in batches, and
	// returns how many went.
	ClearExpired(ctx context.Context, now time.Time) (int, error)
}

// DefaultBatchSize is how many expired rows one cleanup statement deletes.
const DefaultBatchSize = 1000

// createAttempts bounds the redraws on key conflicts. With 256-bit tokens a
// single conflict is already a sign of a broken random source.
const createAttempts = 4

// DB is the `db` backend: every operation goes to the Store.
type DB struct {
	// Store is the session table. Required.
	Store Store
	// Rand is the source of tokens; nil means crypto/rand. Tests set it to
	// force key conflicts.
	Rand io.Reader
	// BatchSize is how many expired rows one cleanup statement deletes;
	// 0 means DefaultBatchSize. Small batches hold locks briefly.
	BatchSize int
	// Progress, when set, is called after each cleanup batch with the total
	// so far.
	Progress func(deleted int)
}

// NewDB returns the db backend over store.
func NewDB(store Store) *DB { return &DB{Store: store} }

// SessionStore returns the Store, for the Manager to hear of sessions
// ended through ent.
func (b *DB) SessionStore() Store { return b.Store }

// Load is one indexed SELECT, tried once more when it failed on a stale
// pooled connection (after a database restart, say).
func (b *DB) Load(ctx context.Context, key string, now time.Time) (*Record, error) {
	return readOnce(ctx, func() (*Record, error) { return b.Store.Get(ctx, key, now) })
}

// Create inserts rec under a fresh token; on a key conflict it draws another
// (as Django does), at most a few times. One INSERT in the normal case.
func (b *DB) Create(ctx context.Context, rec *Record, _ time.Time) (string, error) {
	for range createAttempts {
		token, key, err := NewToken(b.Rand)
		if err != nil {
			return "", err
		}
		rec.Key = key
		err = b.Store.Insert(ctx, rec)
		if errors.Is(err, ErrKeyExists) {
			continue
		}
		if err != nil {
			return "", err
		}
		return token, nil
	}
	return "", fmt.Errorf("qsessions: %d session keys in a row were taken: %w", createAttempts, ErrKeyExists)
}

// CreateCapped is Create that also ends the user's oldest other live
// sessions past the newest keep, returning their keys. ok is false when
// the Store cannot do both in one step (then nothing was capped: the
// caller enforces the cap itself). With a CappingStore it is one round
// trip on Postgres (the generated Store).
func (b *DB) CreateCapped(ctx context.Context, rec *Record, now time.Time, keep int) (token string, ended []string, ok bool, err error) {
	cs, ok := b.Store.(CappingStore)
	if !ok {
		token, err := b.Create(ctx, rec, now)
		return token, nil, false, err
	}
	return b.writeCapped(rec, func() ([]string, error) { return cs.InsertCapped(ctx, rec, now, keep) })
}

// writeCapped runs write (a capping store's InsertCapped or RotateCapped
// of rec) under a fresh token, again under another while the key is
// taken, and returns the token, the keys the store ended and whether it
// enforced the cap: false, with no error, when the session was written
// but the cap's step failed (ErrCapNotEnforced: the caller caps).
func (b *DB) writeCapped(rec *Record, write func() ([]string, error)) (token string, ended []string, ok bool, err error) {
	for range createAttempts {
		token, key, err := NewToken(b.Rand)
		if err != nil {
			return "", nil, true, err
		}
		rec.Key = key
		ended, err := write()
		if errors.Is(err, ErrKeyExists) {
			continue
		}
		if errors.Is(err, ErrCapNotEnforced) {
			return token, nil, false, nil
		}
		if err != nil {
			return "", nil, true, err
		}
		return token, ended, true, nil
	}
	return "", nil, true, fmt.Errorf("qsessions: %d session keys in a row were taken: %w", createAttempts, ErrKeyExists)
}

// CappingCreator is a Backend whose Create can also enforce the per-user
// cap in the same step (DB, CachedDB); the Manager uses it at login.
// Wrappers forward it when they can.
type CappingCreator interface {
	CreateCapped(ctx context.Context, rec *Record, now time.Time, keep int) (token string, ended []string, ok bool, err error)
}

// Save is one UPDATE.
func (b *DB) Save(ctx context.Context, rec *Record, now time.Time) error {
	return b.Store.Update(ctx, rec, now)
}

// Touch is one conditional UPDATE.
func (b *DB) Touch(ctx context.Context, rec *Record, cutoff, now time.Time) (bool, error) {
	return b.Store.Touch(ctx, rec, cutoff, now)
}

// Bind is one UPDATE.
func (b *DB) Bind(ctx context.Context, key, deviceKey string, secret []byte, now time.Time) error {
	return b.Store.Bind(ctx, key, deviceKey, secret, now)
}

// Rotate is one transaction (INSERT new, DELETE old), redrawn on a conflict.
func (b *DB) Rotate(ctx context.Context, oldKey string, rec *Record, now time.Time) (string, error) {
	for range createAttempts {
		token, key, err := NewToken(b.Rand)
		if err != nil {
			return "", err
		}
		rec.Key = key
		err = b.Store.Rotate(ctx, oldKey, rec, now)
		if errors.Is(err, ErrKeyExists) {
			continue
		}
		if err != nil {
			return "", err
		}
		return token, nil
	}
	return "", fmt.Errorf("qsessions: %d session keys in a row were taken: %w", createAttempts, ErrKeyExists)
}

// Delete is one DELETE.
func (b *DB) Delete(ctx context.Context, keys ...string) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	return b.Store.Delete(ctx, keys...)
}

// UserSessions is one indexed SELECT, retried once like Load.
func (b *DB) UserSessions(ctx context.Context, userID any, now time.Time) ([]*Record, error) {
	return readOnce(ctx, func() ([]*Record, error) { return b.Store.UserSessions(ctx, userID, now) })
}

// ExcessKeys is one indexed SELECT of keys, retried once like Load.
func (b *DB) ExcessKeys(ctx context.Context, userID any, now time.Time, keep int) ([]string, error) {
	return readOnce(ctx, func() ([]string, error) { return b.Store.ExcessKeys(ctx, userID, now, keep) })
}

// Find is one primary-key range SELECT, retried once like Load.
func (b *DB) Find(ctx context.Context, publicID string) ([]*Record, error) {
	return readOnce(ctx, func() ([]*Record, error) { return b.Store.Find(ctx, publicID) })
}

// ClearExpired deletes expired rows BatchSize at a time until none is left:
// two short statements per batch.
func (b *DB) ClearExpired(ctx context.Context, now time.Time) (int, error) {
	return ClearExpired(ctx, b.Store, now, b.BatchSize, b.Progress)
}

// ClearExpired deletes the rows of store expired at now, batch rows at a
// time (0 means DefaultBatchSize), calling progress (if not nil) with the
// running total after each batch. It stops at the first error or when ctx
// ends, returning what it deleted so far.
func ClearExpired(ctx context.Context, store Store, now time.Time, batch int, progress func(int)) (int, error) {
	if batch <= 0 {
		batch = DefaultBatchSize
	}
	total := 0
	var from time.Time
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, last, err := store.DeleteExpired(ctx, from, now, batch)
		total += n
		if !last.IsZero() {
			from = last
		}
		if err != nil {
			return total, fmt.Errorf("qsessions: clearing expired sessions: %w", err)
		}
		if progress != nil && n > 0 {
			progress(total)
		}
		if n < batch {
			return total, nil
		}
	}
}
