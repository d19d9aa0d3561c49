package qsessions

import (
	"context"
	"time"

	"github.com/qsessions/qsessions/backend"
)

// LegacyTokens lets the cookies of another session system in, during a
// move to qsessions (package django provides one for Django's sessions). A
// cookie of the other system's shape is looked up like a qsessions token,
// by its SHA-256 (so sessions imported ahead of time under that key are
// found), and, when none is stored, Import may fetch and store the other
// system's session. Login rotates such a session to a qsessions token, as
// any login does.
type LegacyTokens interface {
	// Valid reports whether token has the other system's shape. It runs
	// for every request whose cookie is not a qsessions token; it must not
	// allocate or query anything, so malformed cookies still cost nothing.
	Valid(token string) bool
	// Import is asked when a Valid token names no stored session: it
	// stores the other system's session under backend.KeyOf(token) and
	// returns it, or returns backend.ErrNotFound (nothing to import, or
	// imported before and since ended: a revoked session never returns).
	// Other errors fail the load like a database error.
	Import(ctx context.Context, token string, now time.Time) (*backend.Record, error)
}
