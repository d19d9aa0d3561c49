package backend

import "context"

// CacheResult is what a CachedDB load found in the cache, as a
// CacheObserver hears it.
type CacheResult string

// The results of a CachedDB load, and of a failed cache call.
const (
	// CacheHit: the cache held the live session; no database query.
	CacheHit CacheResult = "hit"
	// CacheMiss: no entry, an expired one, or a save conflict's marker; the
	// database answered.
	CacheMiss CacheResult = "miss"
	// CacheTombstone: a revoke's tombstone (or an entry of a format this
	// version does not read); the database answered.
	CacheTombstone CacheResult = "tombstone"
	// CacheError: the cache call failed (down, slow, breaker open, an
	// entry that does not decode); the database answered.
	CacheError CacheResult = "error"
	// CacheBadEntry: an entry whose tag no key verified; never served.
	CacheBadEntry CacheResult = "bad-entry"
	// CacheBypass: the cache was not asked: the key awaits a purge, the
	// cache is distrusted, or the key is not a valid stored key.
	CacheBypass CacheResult = "bypass"
)

// CacheObserver hears of a CachedDB's cache outcomes, for tracing and
// metrics (the qsessions otel module sets one). op is "load" for the
// result of a Load's lookup, called once per Load; otherwise a cache call
// that failed (result CacheError: "get", "add", "write", "tombstone",
// "purge", "decode", "encode") or an entry a save found forged ("save",
// CacheBadEntry). err is the cache's error, when there was one. ctx is the
// context of the operation (its span, say); keys never reach the observer.
// It runs in the caller's goroutine: keep it quick.
type CacheObserver func(ctx context.Context, op string, result CacheResult, err error)

// Observe sets the observer of c's cache outcomes, replacing any earlier
// one; nil removes it. Safe to call while c is in use. Without an observer
// the cost is one atomic load per Load.
func (c *CachedDB) Observe(f CacheObserver) {
	if f == nil {
		c.obs.Store(nil)
		return
	}
	c.obs.Store(&f)
}

// observe reports to the observer, if any.
func (c *CachedDB) observe(ctx context.Context, op string, r CacheResult, err error) {
	if o := c.obs.Load(); o != nil {
		(*o)(ctx, op, r, err)
	}
}

// CachedOf returns the CachedDB that b is or wraps, or nil: it looks
// through wrappers (tracing, say) that tell the Backend inside with an
// Unwrap() Backend method.
func CachedOf(b Backend) *CachedDB {
	for range 16 { // a bound, against a wrapper that returns itself
		switch v := b.(type) {
		case *CachedDB:
			return v
		case interface{ Unwrap() Backend }:
			b = v.Unwrap()
		default:
			return nil
		}
	}
	return nil
}
