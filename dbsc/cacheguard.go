package dbsc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/qsessions/qsessions/backend"
)

// DefaultCacheGuardPrefix starts the keys of a [CacheReplayGuard] when it
// is given no prefix.
const DefaultCacheGuardPrefix = "qsessions-dbsc:"

// maxCacheGuardPrefix keeps prefix plus id (22 characters) within
// memcached's 250-byte keys.
const maxCacheGuardPrefix = 200

// CacheReplayGuard is a [ReplayGuard] shared by every process that talks to
// the same cache: it marks a challenge used with the cache's Add (memcached's
// "add" stores only when the key holds nothing, atomically on the server
// that owns the key), under Prefix plus the challenge's id, for as long as
// the challenge could still be accepted. Of any number of concurrent uses
// of one challenge, in any process, exactly one Add succeeds. Create it
// with [NewCacheReplayGuard]; safe for concurrent use.
//
// Over backend.Memcache, give it the app's memcached servers (the client
// the app's cached_db uses will do; the keys do not collide with session
// entries, which are a prefix plus 64 hex digits). Over backend.LocalCache
// it is in-process like [MemoryReplayGuard].
//
// The markers carry no MAC, unlike cached_db's entries (CachedOptions.Keys):
// a marker's only effect is to refuse a challenge, and its value is never
// read. Someone who can write to memcached can therefore add markers, which
// only makes browsers sign a fresh challenge (they cannot guess the ids of
// challenges not yet issued), or delete them, which a MAC would not stop
// either; deleting or evicting a marker reopens that one challenge for the
// rest of its life (at most ChallengeTTL plus ClockSkew, 65 s by default;
// 5 minutes for a registration challenge), and only to someone who also
// holds the proof the device signed over it. memcached evicts under memory
// pressure and forgets everything on a restart, so this guard is as strict
// as the cache is durable; that is the trade for needing no table.
//
// While the cache does not answer, Use returns the error and the handlers
// answer 500: the browser keeps its device-bound session and retries, but
// its requests go without a fresh bound cookie, so a user of a bound
// session looks signed out until the cache is back. (The sessions
// themselves do not depend on the cache: cached_db falls back to the
// database.)
type CacheReplayGuard struct {
	cache  backend.Cache
	prefix string
	now    func() time.Time
}

// NewCacheReplayGuard returns a guard over cache whose keys start with
// prefix ("" means [DefaultCacheGuardPrefix]; at most 200 bytes, no spaces
// or control characters, as memcached wants). now is the clock the TTLs are
// computed with, the Server's (Config.Now); nil means time.Now.
func NewCacheReplayGuard(cache backend.Cache, prefix string, now func() time.Time) (*CacheReplayGuard, error) {
	if cache == nil {
		return nil, errors.New("dbsc: NewCacheReplayGuard needs a cache")
	}
	if prefix == "" {
		prefix = DefaultCacheGuardPrefix
	}
	if len(prefix) > maxCacheGuardPrefix {
		return nil, fmt.Errorf("dbsc: cache guard prefix of %d bytes, at most %d", len(prefix), maxCacheGuardPrefix)
	}
	for i := 0; i < len(prefix); i++ {
		if c := prefix[i]; c <= ' ' || c == 0x7f {
			return nil, fmt.Errorf("dbsc: cache guard prefix %q holds a space or control character", prefix)
		}
	}
	if now == nil {
		now = time.Now
	}
	return &CacheReplayGuard{cache: cache, prefix: prefix, now: now}, nil
}

// Use implements [ReplayGuard]: one Add of a 1-byte value with a TTL from
// now until expires, rounded up to whole seconds plus one (memcached counts
// in seconds and may end an entry up to a second early). Cost: one cache
// round trip.
func (g *CacheReplayGuard) Use(ctx context.Context, id string, expires time.Time) (bool, error) {
	left := expires.Sub(g.now())
	if left <= 0 {
		// Already expired: the caller refuses it anyway; nothing to keep.
		return true, nil
	}
	ttl := (left+time.Second-1)/time.Second*time.Second + time.Second
	switch err := g.cache.Add(ctx, g.prefix+id, []byte{'1'}, ttl); {
	case err == nil:
		return true, nil
	case errors.Is(err, backend.ErrNotStored):
		return false, nil
	default:
		return false, fmt.Errorf("dbsc: marking a challenge used in the cache: %w", err)
	}
}
