package qsessions

import (
	"context"
	"slices"

	"github.com/qsessions/qsessions/backend"
)

// Health is what Manager.Ping found, for readiness probes.
type Health struct {
	// Database is nil when the session table answered a query, else why
	// not (wrapping ErrUnavailable, or backend.ErrNoTable when the table
	// or a column is missing).
	Database error
	// Cache is "none" (the db backend), "healthy", or "degraded": the
	// cached backend serves from the database for some or all sessions
	// (a memcached server's breaker is open, keys await a purge, or the
	// cache is distrusted after an overflow). Degraded is not down:
	// requests are served, slower.
	Cache string
	// OpenBreakers lists the memcached servers whose breaker is open.
	OpenBreakers []string
}

// Ready reports whether the Manager can serve sessions: the database
// answers (a degraded cache still serves from it).
func (h Health) Ready() bool { return h.Database == nil }

// Ping checks the session store for a readiness probe: one indexed query on
// the session table (a primary-key range that matches nothing) bounded by
// Timeout, and the cache's state from the backend's counters (no cache
// call). It returns the Health and its Database error.
func (m *Manager) Ping(ctx context.Context) (Health, error) {
	h := Health{Cache: "none"}
	ctx, cancel := m.bounded(ctx)
	defer cancel()
	if s := storeOf(m.Backend); s != nil {
		if err := s.Check(ctx); err != nil {
			h.Database = unavailable("checking the session table", err)
		}
	}
	if h.Database == nil {
		if _, err := m.Backend.Find(ctx, "0000000000000000"); err != nil {
			h.Database = unavailable("querying the session table", err)
		}
	}
	if c := backend.CachedOf(m.Backend); c != nil {
		h.Cache = "healthy"
		st := c.Stats()
		if mc, ok := c.Cache().(*backend.Memcache); ok {
			for addr, open := range mc.Breakers() {
				if open {
					h.OpenBreakers = append(h.OpenBreakers, addr)
				}
			}
		}
		slices.Sort(h.OpenBreakers)
		if st.Distrusted || st.PurgePending > 0 || len(h.OpenBreakers) > 0 {
			h.Cache = "degraded"
		}
	}
	return h, h.Database
}
