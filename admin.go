package qsessions

import (
	"context"
	"time"

	"github.com/qsessions/qsessions/backend"
)

// AdminState selects sessions by expiry in an AdminFilter.
type AdminState string

// The states an AdminFilter selects.
const (
	// StateActive: sessions that expire after AdminFilter.Now (the default).
	StateActive AdminState = "active"
	// StateExpired: sessions that expired at or before AdminFilter.Now and
	// were not yet cleared.
	StateExpired AdminState = "expired"
	// StateAll: both.
	StateAll AdminState = "all"
)

// AdminFilter is what an admin listing asks an AdminSource for.
type AdminFilter struct {
	// State selects active, expired or all sessions.
	State AdminState
	// OwnerID, when not nil, keeps only the sessions of that user (the
	// "Owner = me" filter passes the admin's own ID), in the app's ID type.
	OwnerID any
	// Search, when not empty, keeps the sessions whose IP starts with it or
	// whose owner's name (the user field the source searches) contains it,
	// case-insensitive. The pages pass it trimmed, valid UTF-8 without NUL,
	// at most 100 characters.
	Search string
	// Offset and Limit select one page of the matching sessions, ordered by
	// last activity, newest first (then by key, so pages are stable).
	Offset, Limit int
	// Now is the boundary between active and expired.
	Now time.Time
}

// AdminSession is one row of an admin listing.
type AdminSession struct {
	// Info describes the session; Info.ID is the public id of its key.
	Info Info
	// OwnerName is the owner's display name; "" lets the pages ask the
	// app (pages.Config.UserName).
	OwnerName string
}

// AdminSource lists every session for admin pages, over the app's own ent
// schema. The entc extension generates one into the app's ent package
// (NewAdminSource); the pages use it read-only and revoke through the
// Manager.
type AdminSource interface {
	// List returns one page of the sessions that match f (Offset, Limit),
	// newest activity first, and how many match in all, without reading
	// session_data.
	List(ctx context.Context, f AdminFilter) (sessions []AdminSession, total int, err error)
	// Get returns the stored row, Data included, of the session whose public
	// id is publicID, live or expired, or an error wrapping
	// backend.ErrNotFound.
	Get(ctx context.Context, publicID string) (*backend.Record, error)
}
