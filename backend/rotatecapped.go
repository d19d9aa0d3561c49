package backend

import (
	"context"
	"errors"
	"time"
)

// ErrCapNotEnforced is what a CappingStore or CappingRotateStore returns,
// wrapping the cause, when the session was written (committed) but ending
// the user's sessions past the cap then failed: on databases where the
// two are separate statements (MySQL, SQLite), a failure of the second
// (a lost connection, a deadlock retried too often). DB's CreateCapped and
// RotateCapped then report success with ok false, so that the Manager
// enforces the cap itself, as for a store that cannot, and a login that
// was written is never reported as failed.
var ErrCapNotEnforced = errors.New("qsessions: the session was written, the per-user cap was not enforced")

// CappingRotateStore is a Store that rotates a session to a new key and
// ends its user's oldest other sessions past a per-user cap in one go (one
// statement where the database allows: the generated Store on Postgres),
// so that the login of a session that already has a row (a visitor who
// put something in the session before signing in) costs one round trip,
// as a login without one does (CappingStore). DB and CachedDB use it when
// their Store has it.
type CappingRotateStore interface {
	Store
	// RotateCapped does what Rotate does (rec replaces the live row oldKey:
	// ErrKeyExists if rec.Key is taken, ErrSessionInterrupted and nothing
	// written if oldKey is not live) and, when rec's user then has more
	// than keep other live sessions (expiring after now), deletes the
	// oldest of them by last activity, returning their keys (keys only,
	// never session_data); keep < 0 caps nothing.
	RotateCapped(ctx context.Context, oldKey string, rec *Record, now time.Time, keep int) (ended []string, err error)
}

// CappingRotator is a Backend whose Rotate can also enforce the per-user
// cap in the same step (DB, CachedDB); the Manager uses it at a login of a
// session that has a row. Wrappers forward it when they can.
type CappingRotator interface {
	// RotateCapped is Rotate that also ends the user's oldest other live
	// sessions past the newest keep, returning their keys. ok is false
	// when the Store cannot do both in one step: then it only rotated, and
	// the caller enforces the cap itself.
	RotateCapped(ctx context.Context, oldKey string, rec *Record, now time.Time, keep int) (token string, ended []string, ok bool, err error)
}

var (
	_ CappingRotator = (*DB)(nil)
	_ CappingRotator = (*CachedDB)(nil)
)

// RotateCapped is Rotate that also ends the user's oldest other live
// sessions past the newest keep, returning their keys. With a
// CappingRotateStore it is one round trip on Postgres (the generated
// Store); without one it is Rotate, and ok is false.
func (b *DB) RotateCapped(ctx context.Context, oldKey string, rec *Record, now time.Time, keep int) (token string, ended []string, ok bool, err error) {
	rs, ok := b.Store.(CappingRotateStore)
	if !ok {
		token, err := b.Rotate(ctx, oldKey, rec, now)
		return token, nil, false, err
	}
	return b.writeCapped(rec, func() ([]string, error) { return rs.RotateCapped(ctx, oldKey, rec, now, keep) })
}

// RotateCapped moves the session to a fresh token and ends the user's
// sessions past the cap in the database (one round trip on Postgres), then
// tombstones the old key and the ended ones (one Set each) and adds the
// new entry (one Add), as Rotate and CreateCapped do.
func (c *CachedDB) RotateCapped(ctx context.Context, oldKey string, rec *Record, now time.Time, keep int) (string, []string, bool, error) {
	c.maybePurge()
	start := time.Now()
	token, ended, ok, err := c.db.RotateCapped(ctx, oldKey, rec, now, keep)
	if err != nil {
		return "", nil, ok, err
	}
	wctx := context.WithoutCancel(ctx)
	c.tombstone(wctx, oldKey)
	for _, k := range ended {
		c.tombstone(wctx, k)
	}
	c.fill(ctx, rec, now, start, 0)
	return token, ended, ok, nil
}
