package backend

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Cache is a shared key-value cache with memcached's semantics, which
// CachedDB puts in front of the database. Implementations: Memcache (one or
// several memcached servers) and LocalCache (in process, one process only).
//
// The outcomes of the conditional writes are what CachedDB's revocation
// guarantee is built on, so an implementation must keep them exactly:
//   - Add stores only when the key holds nothing (ErrNotStored otherwise);
//   - CompareAndSwap stores only when the entry is still the one Get returned
//     with that cas token (ErrCASConflict when it changed, ErrNotStored when
//     it is gone);
//   - Set stores unconditionally; CachedDB uses it only for tombstones.
//
// Every write carries a TTL, which must be positive: a cache entry never
// lives forever. Implementations may round it up to their granularity (a
// second for memcached) and cap it (30 days for memcached).
//
// ErrCacheMiss, ErrNotStored and ErrCASConflict are answers, not failures;
// any other error means the cache could not answer (down, slow, refused) and
// CachedDB serves from the database instead. All methods must be safe for
// concurrent use.
type Cache interface {
	// Get returns the value under key and its cas token, or ErrCacheMiss.
	Get(ctx context.Context, key string) (value []byte, cas uint64, err error)
	// Add stores value under key for ttl if the key holds nothing, else
	// returns ErrNotStored.
	Add(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Set stores value under key for ttl, whatever the key held.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// CompareAndSwap stores value under key for ttl if the entry is still
	// the one a Get returned with cas: ErrCASConflict if it was changed since,
	// ErrNotStored if it is gone.
	CompareAndSwap(ctx context.Context, key string, value []byte, cas uint64, ttl time.Duration) error
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Answers and failures of a Cache; test with errors.Is.
var (
	// ErrCacheMiss: Get found no entry.
	ErrCacheMiss = errors.New("qsessions: cache miss")
	// ErrNotStored: an Add found the key taken, or a CompareAndSwap found
	// the entry gone.
	ErrNotStored = errors.New("qsessions: cache entry not stored: add found the key taken, or cas found it gone")
	// ErrCASConflict: a CompareAndSwap found the entry changed since its Get.
	ErrCASConflict = errors.New("qsessions: cache entry changed since it was read (cas conflict)")
	// ErrCacheUnavailable: the call was not sent because the server's
	// circuit breaker is open after consecutive failures. It costs nothing.
	ErrCacheUnavailable = errors.New("qsessions: cache server skipped: circuit breaker open after consecutive failures")
	// ErrValueTooLarge: the value exceeds the cache's item size limit; it was
	// not sent.
	ErrValueTooLarge = errors.New("qsessions: cache value too large")
	// ErrBadCacheKey: the key is not a valid cache key (memcached: at most
	// 250 bytes, no spaces or control characters).
	ErrBadCacheKey = errors.New("qsessions: invalid cache key: more than 250 bytes or a space or control character")
	// ErrBadTTL: a write was asked for with a TTL that is not positive; an
	// entry without expiry is never written.
	ErrBadTTL = errors.New("qsessions: cache TTL must be positive")
)

// cacheAnswer reports whether err is one of the Cache's answers (or nil)
// rather than a failure.
func cacheAnswer(err error) bool {
	return err == nil || errors.Is(err, ErrCacheMiss) || errors.Is(err, ErrNotStored) || errors.Is(err, ErrCASConflict)
}

// validCacheKey reports whether key is a legal memcached key: 1 to 250
// bytes, no spaces, no control characters.
func validCacheKey(key string) bool {
	if len(key) == 0 || len(key) > 250 {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] == 0x7f {
			return false
		}
	}
	return true
}

// Defaults of BreakerOptions.
const (
	// DefaultBreakerFailures is how many consecutive failures open a
	// server's breaker: one failure may be a glitch, three are a dead or
	// stalled server, and each costs up to a Timeout before the breaker opens.
	DefaultBreakerFailures = 3
	// DefaultBreakerCoolDown is how long an open breaker sends nothing to its
	// server before it lets one probe call through. A recovered server stays
	// unused that long; a dead one costs one Timeout per cool-down.
	DefaultBreakerCoolDown = 5 * time.Second
)

// BreakerOptions configures the circuit breaker Memcache keeps per server.
type BreakerOptions struct {
	// Failures is how many consecutive failed calls open the breaker;
	// 0 means DefaultBreakerFailures.
	Failures int
	// CoolDown is how long the open breaker fails calls at once (with
	// ErrCacheUnavailable) before one probe call goes through: success
	// closes it, failure opens it for another CoolDown. 0 means
	// DefaultBreakerCoolDown.
	CoolDown time.Duration
}

func (o BreakerOptions) withDefaults() BreakerOptions {
	if o.Failures <= 0 {
		o.Failures = DefaultBreakerFailures
	}
	if o.CoolDown <= 0 {
		o.CoolDown = DefaultBreakerCoolDown
	}
	return o
}

// breaker is a circuit breaker: closed (calls go through), open (calls fail
// at once until openUntil), half-open (one probe call is in flight; the
// others fail at once).
type breaker struct {
	opts      BreakerOptions
	mu        sync.Mutex
	failures  int
	open      bool
	probing   bool
	openUntil time.Time
}

// allow reports whether a call may go to the server now. When it returns
// true the caller must report the outcome with done.
func (b *breaker) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return true
	}
	if b.probing || now.Before(b.openUntil) {
		return false
	}
	b.probing = true
	return true
}

// done records the outcome of an allowed call: ok means the server
// answered. It reports whether the call opened the breaker (or failed its
// probe): the caller then drops its idle connections to the server, which
// may all be dead (a restarted server resets them), so that the next probe
// dials afresh instead of failing on a stale connection.
func (b *breaker) done(now time.Time, ok bool) (opened bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		b.failures, b.open, b.probing = 0, false, false
		return false
	}
	b.failures++
	if b.probing || (!b.open && b.failures >= b.opts.Failures) {
		b.open, b.probing = true, false
		b.openUntil = now.Add(b.opts.CoolDown)
		return true
	}
	return false
}

// isOpen reports whether the breaker currently refuses calls.
func (b *breaker) isOpen(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open && (b.probing || now.Before(b.openUntil))
}
