package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of CachedOptions.
const (
	// DefaultCacheTTL is the longest a cache entry (a session or a
	// tombstone) lives. It bounds how long a stale entry can outlive a lost
	// invalidation (a failed write, an evicted tombstone), so it is the
	// guarantee's backstop; shorter costs more database reads (one per
	// active session per TTL at least).
	DefaultCacheTTL = 5 * time.Minute
	// DefaultCachePrefix starts every cache key. Give each app (or each
	// server list, see the README) its own.
	DefaultCachePrefix = "qsessions:"
	// DefaultCacheLogInterval: cache failures are logged at most once per
	// minute, with the number suppressed since the last line.
	DefaultCacheLogInterval = time.Minute
	// DefaultMaxPurge bounds the purge list: about 100 bytes of memory per
	// key, 10 MB when full. Past it the whole cache is distrusted for a TTL.
	DefaultMaxPurge = 100000
	// DefaultPurgeInterval is how often the purge list is retried while it
	// is not empty (by a background goroutine started from a session call).
	DefaultPurgeInterval = time.Second
	// StaleTTL is the life of a conflict marker, the entry two racing saves
	// of one session leave: memcached's smallest TTL. Loads replace it
	// sooner.
	StaleTTL = time.Second
)

// CachedOptions configures NewCachedDB. The zero value gives the defaults.
type CachedOptions struct {
	// TTL bounds the life of every cache entry (and is never longer than the
	// session's own expiry); 0 means DefaultCacheTTL. A value of 30 days or
	// more is capped by Memcache.
	TTL time.Duration
	// Prefix starts every cache key, followed by the session's stored key
	// (the hex SHA-256 of the token; the token never reaches the cache).
	// "" means DefaultCachePrefix. At most 186 bytes, no spaces or control
	// characters (memcached keys are at most 250 bytes).
	Prefix string
	// Logger receives cache failures (rate-limited); nil means
	// slog.Default(). Keys and tokens are never logged.
	Logger *slog.Logger
	// LogInterval is the least time between two failure log lines; 0 means
	// DefaultCacheLogInterval.
	LogInterval time.Duration
	// MaxPurge bounds the purge list; 0 means DefaultMaxPurge.
	MaxPurge int
	// PurgeInterval is the least time between two attempts to work off the
	// purge list; 0 means DefaultPurgeInterval.
	PurgeInterval time.Duration
	// UserIDCodec encodes user IDs of types CachedDB does not know (see
	// UserIDCodec); nil means only the built-in types are cached.
	UserIDCodec UserIDCodec
	// Keys authenticate every cache entry (sessions, tombstones, conflict
	// markers) with HMAC-SHA256 over the cache key and the entry: someone
	// who can write to memcached cannot forge a session or move one to
	// another key. The first key signs, every key verifies, so keys rotate
	// without a cold cache: add the new key second, deploy, move it first,
	// deploy, drop the old one after a TTL. Each key is at least MinKeyLen
	// random bytes, the same in every process of the app. Required for a
	// network cache (anything but LocalCache) unless UnauthenticatedCache;
	// optional for LocalCache. Cost: one HMAC of the entry per cache read and
	// write (about a microsecond for a typical session).
	Keys [][]byte
	// UnauthenticatedCache lets a network cache run without Keys: entries
	// are then trusted as they are, as Django's cached_db does. Only for a
	// cache no one else can write to.
	UnauthenticatedCache bool
	// Rand, BatchSize and Progress are those of DB: the token source (nil:
	// crypto/rand), the cleanup batch size (0: DefaultBatchSize) and the
	// cleanup progress callback.
	Rand      io.Reader
	BatchSize int
	Progress  func(deleted int)
}

// CacheStats are CachedDB's counters since it was made. Reading them costs
// a few atomic loads.
type CacheStats struct {
	// Hits: loads answered by the cache (zero database queries).
	Hits uint64
	// Misses: loads that found no entry, a tombstone or an expired entry
	// and asked the database.
	Misses uint64
	// Errors: cache calls that failed (down, slow, refused, breaker open,
	// unencodable entry); each was absorbed by the database.
	Errors uint64
	// Fallbacks: loads answered by the database without trusting the cache:
	// the cache failed, the key awaits a purge, or the cache is distrusted.
	Fallbacks uint64
	// Conflicts: saves that found a concurrent save's entry in the cache
	// and left a conflict marker (StaleTTL) for the next load to replace.
	Conflicts uint64
	// BadEntries: cache values whose tag no key verified (forged, copied
	// from another key, cut short, or written with a key since dropped):
	// never served and never filled over; each is also in Misses. Logged
	// as a possible attack.
	BadEntries uint64
	// Purges: keys worked off the purge list (tombstoned after a failure).
	Purges uint64
	// PurgePending is the purge list's current length.
	PurgePending int
	// Distrusted reports that the purge list overflowed less than a TTL ago
	// and loads skip the cache.
	Distrusted bool
}

// CachedDB is the `cached_db` backend: a Cache in front of the Store, the
// database staying the truth.
//
// Reads: Load is one cache Get of one key; a hit costs no database query.
// On a miss it loads from the database and fills the cache with Add. Writes
// go to the database first, then to the cache. Listing a user's sessions and
// clearing expired ones go to the database only (expired entries are never
// served: their TTL ends with the session, and a hit is checked against now).
//
// Cache entries are a session (a version byte and a compact binary
// Record), a tombstone or a conflict marker, under Prefix + key, each
// authenticated with Keys (HMAC-SHA256 over the cache key and the entry): a
// value that does not verify is never served and never filled over, so
// write access to memcached is not enough to become a user. Every entry has
// a TTL of at most TTL and never past the session's expiry. CachedDB is one
// of the Store's Invalidators (NewCachedDB adds it), so sessions ended
// through ent outside the session API (deletes by predicate, updates,
// deleted users) get tombstones too.
//
// # A revoked session is never served once the revoke has returned
//
// A revoke (Delete, Rotate's old key, or Invalidate from the ent hooks) first
// deletes the row, then writes a tombstone under the session's own key with
// Set (unconditional) for TTL. No write can replace a tombstone while it
// lives:
//   - a fill uses Add, which fails on any entry, the tombstone included, or
//     CompareAndSwap against the conflict marker its own Get returned (a
//     tombstone written after that Get changes the cas token);
//   - Save updates the cache only with CompareAndSwap against the entry its
//     own Get returned, or with Add when its Get found nothing, and leaves
//     a tombstone (or a marker) it finds alone; a conflict of either kind
//     makes it write a conflict marker, again by CompareAndSwap;
//   - Set is only ever used to write tombstones.
//
// So after the revoke returned, a Load finds the tombstone (and asks the
// database, which no longer has the row, and does not fill), or finds
// nothing (and asks the database). The dangerous order, a request that
// loaded the row before the revoke filling the cache after it, meets the
// tombstone and its Add or swap fails. A Save whose UPDATE comes after the
// revoke's DELETE fails with ErrSessionInterrupted and writes nothing to the
// cache; one whose UPDATE came first either wrote its entry before the
// tombstone (which overwrites it) or fails its swap or Add against the
// tombstone. A conflict marker holds no session: a load that finds one asks
// the database first, so it can never revive a revoked session.
//
// What the tombstone cannot cover is bounded by the TTL:
//   - memcached may evict a tombstone early under memory pressure (and a
//     tombstone ends after TTL). A fill whose database read preceded the
//     revoke could then land; so every cache write of a session (fill,
//     create, rotate, save) is dropped when TTL/2 or more passed since its
//     database step began (Save swaps in a conflict marker instead), and
//     any entry lives at most TTL.
//   - a cache that is down, slow or refusing loses the tombstone. The key
//     goes on this process's purge list: its loads skip the cache (database
//     only) until the tombstone has been written, which a background
//     goroutine retries every PurgeInterval. Other processes may serve the
//     stale entry if the server comes back with it (e.g. after SIGSTOP or a
//     network partition, not after a restart, which empties it) until the
//     purge succeeds or, at the latest, until the entry's TTL ends. A
//     failed Save write goes on the purge list the same way.
//   - the purge list holds at most MaxPurge keys. When it overflows, the
//     dropped keys cannot be tracked, so this process distrusts the whole
//     cache (every load asks the database, Stats().Distrusted) until a TTL
//     has passed since the last dropped key: by then any entry written
//     before has expired.
//
// # Failures
//
// A cache that is down, slow or refusing is not an error: every operation
// succeeds from the database. Failures are counted (Stats) and logged at
// most once per LogInterval. Memcache bounds each call by its Timeout and
// stops calling a dead server for a while (its breaker), so a dead cache
// costs a request at most a Timeout or so, and nothing once the breaker is
// open.
//
// Concurrent saves of one session: the database keeps the last UPDATE.
// A save that finds another save's write in the cache (a cas conflict, or an
// entry whose UpdatedAt is newer than its own) cannot tell which UPDATE came
// last, so it leaves a conflict marker: the next load reads the database and
// replaces the marker (by CompareAndSwap, so a revoke's tombstone written
// meanwhile still wins), and the marker expires after StaleTTL anyway. The
// cache stays warm. When two processes' clocks disagree by more than the
// gap between their saves, the cache may hold the earlier save's version
// until that session's next save or the TTL.
//
// Safe for concurrent use. Its only goroutine is the purge retry, started
// when there is something to purge and ending when a pass is done.
type CachedDB struct {
	db     DB
	cache  Cache
	ttl    time.Duration
	prefix string
	log    *slog.Logger
	logInt time.Duration
	maxPur int
	purInt time.Duration
	codec  UserIDCodec
	mac    *macer
	epoch  time.Time
	remove func() // removes c from the Store's Invalidators

	hits, misses, errs, fallbacks, purges, conflicts, bad atomic.Uint64
	badLog                                                atomic.Int64 // monotonic ns of the last bad-entry log line

	pmu       sync.Mutex
	purge     map[string]struct{}
	purgeLen  atomic.Int64
	distrust  atomic.Int64 // monotonic ns (since epoch) until which the cache is distrusted
	lastPurge atomic.Int64 // monotonic ns of the last purge pass started
	purging   atomic.Bool

	lastLog    atomic.Int64 // monotonic ns of the last log line
	suppressed atomic.Int64

	obs atomic.Pointer[CacheObserver] // Observe
}

var (
	_ Backend     = (*CachedDB)(nil)
	_ Invalidator = (*CachedDB)(nil)
)

// NewCachedDB returns the cached_db backend over store and cache and adds
// itself to store's Invalidators, next to any others (two CachedDBs over one
// Store both hear of ent deletes; Close takes it off). It errors only on an
// invalid option, naming it.
func NewCachedDB(store Store, cache Cache, opts CachedOptions) (*CachedDB, error) {
	if store == nil || cache == nil {
		return nil, errors.New("qsessions: NewCachedDB needs a Store and a Cache")
	}
	if opts.TTL < 0 || opts.LogInterval < 0 || opts.PurgeInterval < 0 || opts.MaxPurge < 0 {
		return nil, errors.New("qsessions: CachedOptions: TTL, LogInterval, PurgeInterval and MaxPurge must not be negative")
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultCacheTTL
	}
	if opts.TTL < time.Second {
		return nil, fmt.Errorf("qsessions: CachedOptions.TTL %v is under a second, the cache's granularity", opts.TTL)
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultCachePrefix
	}
	if !validCacheKey(opts.Prefix + "0000000000000000000000000000000000000000000000000000000000000000") {
		return nil, fmt.Errorf("qsessions: CachedOptions.Prefix %q: at most 186 bytes, no spaces or control characters", opts.Prefix)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LogInterval == 0 {
		opts.LogInterval = DefaultCacheLogInterval
	}
	if opts.MaxPurge == 0 {
		opts.MaxPurge = DefaultMaxPurge
	}
	if opts.PurgeInterval == 0 {
		opts.PurgeInterval = DefaultPurgeInterval
	}
	if _, local := cache.(*LocalCache); len(opts.Keys) == 0 && !local && !opts.UnauthenticatedCache {
		return nil, ErrNoCacheKeys
	}
	mac, err := newMacer(opts.Keys)
	if err != nil {
		return nil, err
	}
	c := &CachedDB{
		db:     DB{Store: store, Rand: opts.Rand, BatchSize: opts.BatchSize, Progress: opts.Progress},
		cache:  cache,
		ttl:    opts.TTL,
		prefix: opts.Prefix,
		log:    opts.Logger,
		logInt: opts.LogInterval,
		maxPur: opts.MaxPurge,
		purInt: opts.PurgeInterval,
		codec:  opts.UserIDCodec,
		mac:    mac,
		epoch:  time.Now(),
		purge:  map[string]struct{}{},
	}
	c.lastLog.Store(-int64(c.logInt)) // the first failure is logged at once
	c.badLog.Store(-int64(c.logInt))
	c.remove = store.AddInvalidator(c)
	return c, nil
}

// SessionStore returns the Store under the cache, for the Manager to hear
// of sessions ended through ent.
func (c *CachedDB) SessionStore() Store { return c.db.Store }

// Close takes c off its Store's Invalidators. It does not close the Cache
// (the caller opened it) and does not wait for a purge pass.
func (c *CachedDB) Close() error {
	c.remove()
	return nil
}

// mono is the monotonic time since c was made.
func (c *CachedDB) mono() int64 { return int64(time.Since(c.epoch)) }

func (c *CachedDB) cacheKey(key string) string { return c.prefix + key }

// Stats returns the counters.
func (c *CachedDB) Stats() CacheStats {
	return CacheStats{
		Hits:         c.hits.Load(),
		Misses:       c.misses.Load(),
		Errors:       c.errs.Load(),
		Fallbacks:    c.fallbacks.Load(),
		Conflicts:    c.conflicts.Load(),
		BadEntries:   c.bad.Load(),
		Purges:       c.purges.Load(),
		PurgePending: int(c.purgeLen.Load()),
		Distrusted:   c.mono() < c.distrust.Load(),
	}
}

// trusted reports whether a load of key may use the cache: the cache is not
// distrusted and key awaits no purge.
func (c *CachedDB) trusted(key string) bool {
	if c.mono() < c.distrust.Load() {
		return false
	}
	return !c.awaitsPurge(key)
}

// awaitsPurge reports whether key is on the purge list.
func (c *CachedDB) awaitsPurge(key string) bool {
	if c.purgeLen.Load() == 0 {
		return false
	}
	c.pmu.Lock()
	_, in := c.purge[key]
	c.pmu.Unlock()
	return in
}

// failed counts a failed cache call and logs it, at most once per
// LogInterval. Cancellations are the caller's and are not logged.
func (c *CachedDB) failed(ctx context.Context, op string, err error) {
	c.errs.Add(1)
	c.observe(ctx, op, CacheError, err)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	now := c.mono()
	last := c.lastLog.Load()
	if now-last < int64(c.logInt) || !c.lastLog.CompareAndSwap(last, now) {
		c.suppressed.Add(1)
		return
	}
	c.log.Warn("qsessions: session cache failed; serving from the database",
		"op", op, "error", err, "suppressed", c.suppressed.Swap(0))
}

// Load returns the live session with key: one cache Get on a hit; on a
// miss one database SELECT and one cache Add (a CompareAndSwap over a
// conflict marker).
func (c *CachedDB) Load(ctx context.Context, key string, now time.Time) (*Record, error) {
	c.maybePurge()
	if !ValidKey(key) {
		c.observe(ctx, "load", CacheBypass, nil)
		return c.db.Load(ctx, key, now)
	}
	if !c.trusted(key) {
		c.fallbacks.Add(1)
		c.observe(ctx, "load", CacheBypass, nil)
		return c.db.Load(ctx, key, now)
	}
	start := time.Now()
	ck := c.cacheKey(key)
	val, cas, err := c.cache.Get(ctx, ck)
	switch {
	case err == nil:
		val, ok := c.mac.open(ck, val)
		if !ok {
			// Forged or corrupt: the database answers, nothing is filled
			// over it.
			c.badEntry(ctx, "load")
			c.misses.Add(1)
			c.observe(ctx, "load", CacheBadEntry, nil)
			return c.db.Load(ctx, key, now)
		}
		result := CacheTombstone
		if len(val) > 0 && val[0] == entryRecordV1 {
			rec, derr := decodeRecord(key, val[1:], c.codec)
			if derr != nil {
				c.failed(ctx, "decode", derr)
				result = CacheError
			} else if rec.ExpireDate.After(now) {
				c.hits.Add(1)
				c.observe(ctx, "load", CacheHit, nil)
				return rec, nil
			} else {
				result = CacheMiss
			}
		}
		c.misses.Add(1)
		if len(val) == 1 && val[0] == entryStale {
			// A save conflict's marker: the database answers and the
			// entry replaces the marker, unless a revoke's tombstone
			// replaced it first.
			c.observe(ctx, "load", CacheMiss, nil)
			rec, err := c.db.Load(ctx, key, now)
			if err != nil {
				return nil, err
			}
			c.fill(ctx, rec, now, start, cas)
			return rec, nil
		}
		// A tombstone, an entry we cannot read, or an expired session: the
		// database answers, and nothing is filled.
		c.observe(ctx, "load", result, nil)
		return c.db.Load(ctx, key, now)
	case errors.Is(err, ErrCacheMiss):
		c.misses.Add(1)
		c.observe(ctx, "load", CacheMiss, nil)
		rec, err := c.db.Load(ctx, key, now)
		if err != nil {
			return nil, err
		}
		c.fill(ctx, rec, now, start, 0)
		return rec, nil
	default:
		c.failed(ctx, "get", err)
		c.fallbacks.Add(1)
		c.observe(ctx, "load", CacheError, err)
		return c.db.Load(ctx, key, now)
	}
}

// entryTTL is the TTL of rec's entry: TTL, but never past its expiry.
func (c *CachedDB) entryTTL(rec *Record, now time.Time) time.Duration {
	return min(c.ttl, rec.ExpireDate.Sub(now))
}

// stale reports whether a write whose database step began at start is too
// late for the cache: a tombstone written after that step may already have
// expired (or been evicted), so the write could outlive a revoke.
func (c *CachedDB) stale(start time.Time) bool { return time.Since(start) >= c.ttl/2 }

// fill puts rec in the cache where a load or a create found nothing (cas
// 0: Add) or a conflict marker (its cas: CompareAndSwap); start is when the
// database step began (a fill later than TTL/2 after it is dropped). A
// failure costs nothing: neither call can overwrite a tombstone, so a lost
// or late fill is harmless.
func (c *CachedDB) fill(ctx context.Context, rec *Record, now, start time.Time, cas uint64) {
	ttl := c.entryTTL(rec, now)
	if ttl <= 0 || !ValidKey(rec.Key) || c.stale(start) {
		return
	}
	val, err := encodeRecord(cacheRecord(rec), c.codec)
	if err != nil {
		c.failed(ctx, "encode", err)
		return
	}
	ck := c.cacheKey(rec.Key)
	val = c.mac.seal(ck, val)
	ctx = context.WithoutCancel(ctx)
	if cas != 0 {
		err = c.cache.CompareAndSwap(ctx, ck, val, cas, ttl)
	} else {
		err = c.cache.Add(ctx, ck, val, ttl)
	}
	if !cacheAnswer(err) {
		c.failed(ctx, "add", err)
	}
}

// cacheRecord is rec as the database stores it: user agent and IP
// normalised, times in UTC microseconds.
func cacheRecord(rec *Record) *Record {
	r := rec.Clone()
	r.UserAgent = NormalizeUserAgent(r.UserAgent)
	if r.IP != "" {
		r.IP = NormalizeIP(r.IP)
	}
	r.ExpireDate, r.CreatedAt = Time(r.ExpireDate), Time(r.CreatedAt)
	r.UpdatedAt, r.LastActivity = Time(r.UpdatedAt), Time(r.LastActivity)
	return r
}

// tombstone writes the tombstone of key; if the cache fails, key goes on
// the purge list. A tombstone that lands removes key from the list.
func (c *CachedDB) tombstone(ctx context.Context, key string) {
	if !ValidKey(key) {
		return
	}
	if err := c.setTombstone(ctx, key); err != nil {
		c.failed(ctx, "tombstone", err)
		c.addPurge(key)
		return
	}
	if c.purgeLen.Load() > 0 {
		c.pmu.Lock()
		if _, in := c.purge[key]; in {
			delete(c.purge, key)
			c.purgeLen.Store(int64(len(c.purge)))
			c.purges.Add(1)
		}
		c.pmu.Unlock()
	}
}

// setTombstone writes the (sealed) tombstone of key for a TTL.
func (c *CachedDB) setTombstone(ctx context.Context, key string) error {
	ck := c.cacheKey(key)
	return c.cache.Set(ctx, ck, c.mac.seal(ck, slices.Clone(tombstone)), c.ttl)
}

// badEntry counts a value whose tag did not verify and logs it, at most
// once per LogInterval, as a possible attack.
func (c *CachedDB) badEntry(ctx context.Context, op string) {
	if op != "load" {
		c.observe(ctx, op, CacheBadEntry, nil)
	}
	n := c.bad.Add(1)
	now := c.mono()
	last := c.badLog.Load()
	if now-last < int64(c.logInt) || !c.badLog.CompareAndSwap(last, now) {
		return
	}
	c.log.Error("qsessions: a session cache entry failed authentication; not served (forged or corrupt entry, or a cache key not in CachedOptions.Keys): possible attack on the cache",
		"op", op, "bad_entries_total", n)
}

// addPurge puts key on the purge list; when the list is full, the whole
// cache is distrusted for a TTL instead.
func (c *CachedDB) addPurge(key string) {
	c.pmu.Lock()
	_, in := c.purge[key]
	full := !in && len(c.purge) >= c.maxPur
	if !in && !full {
		c.purge[key] = struct{}{}
		c.purgeLen.Store(int64(len(c.purge)))
	}
	c.pmu.Unlock()
	if !full {
		return
	}
	c.errs.Add(1)
	now := c.mono()
	until := now + int64(c.ttl)
	for {
		cur := c.distrust.Load()
		if cur >= until || c.distrust.CompareAndSwap(cur, until) {
			if cur <= now { // a new episode: always logged
				c.log.Error("qsessions: session cache purge list full: distrusting the whole cache; every load reads the database",
					"max_purge", c.maxPur, "for", c.ttl)
			}
			return
		}
	}
}

// maybePurge starts a background pass over the purge list when it is not
// empty, no pass runs and the last began at least PurgeInterval ago. Cost
// when there is nothing to purge: one atomic load.
func (c *CachedDB) maybePurge() {
	if c.purgeLen.Load() == 0 {
		return
	}
	now := c.mono()
	last := c.lastPurge.Load()
	if now-last < int64(c.purInt) || !c.lastPurge.CompareAndSwap(last, now) {
		return
	}
	if !c.purging.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer c.purging.Store(false)
		c.Purge(context.Background())
	}()
}

// Purge works off the purge list now: it writes the tombstone of every key
// on it, removes those that landed, and returns how many keys remain. Session
// calls start it in the background every PurgeInterval while the list is not
// empty; call it yourself to hurry, e.g. at shutdown. One cache Set per key.
func (c *CachedDB) Purge(ctx context.Context) int {
	c.pmu.Lock()
	keys := make([]string, 0, len(c.purge))
	for k := range c.purge {
		keys = append(keys, k)
	}
	c.pmu.Unlock()
	for _, k := range keys {
		if ctx.Err() != nil {
			break
		}
		if err := c.setTombstone(ctx, k); err != nil {
			c.failed(ctx, "purge", err)
			continue
		}
		c.pmu.Lock()
		if _, in := c.purge[k]; in {
			delete(c.purge, k)
			c.purges.Add(1)
		}
		c.purgeLen.Store(int64(len(c.purge)))
		c.pmu.Unlock()
	}
	return int(c.purgeLen.Load())
}

// Create inserts rec under a fresh token (one INSERT), then adds it to the
// cache (one Add), so the next request is a hit.
func (c *CachedDB) Create(ctx context.Context, rec *Record, now time.Time) (string, error) {
	c.maybePurge()
	start := time.Now()
	token, err := c.db.Create(ctx, rec, now)
	if err != nil {
		return "", err
	}
	c.fill(ctx, rec, now, start, 0)
	return token, nil
}

// CreateCapped is Create with the per-user cap enforced in the same
// database step (DB.CreateCapped); the ended sessions get their tombstones
// (one Set each) as any revoke, then the new one is added (one Add).
func (c *CachedDB) CreateCapped(ctx context.Context, rec *Record, now time.Time, keep int) (string, []string, bool, error) {
	c.maybePurge()
	start := time.Now()
	token, ended, ok, err := c.db.CreateCapped(ctx, rec, now, keep)
	if err != nil {
		return "", nil, ok, err
	}
	wctx := context.WithoutCancel(ctx)
	for _, k := range ended {
		c.tombstone(wctx, k)
	}
	c.fill(ctx, rec, now, start, 0)
	return token, ended, ok, nil
}

// Save updates the row (one UPDATE), then the cache: one Get and one
// CompareAndSwap (or Add). When a concurrent save of the same session wrote
// the cache in between, or holds a newer entry, which UPDATE the database
// kept last is unknown here: Save then leaves a conflict marker (StaleTTL,
// replaced by the next load from the database) instead of its own entry. A
// failure of the cache puts the key on the purge list; the Save still
// succeeds.
func (c *CachedDB) Save(ctx context.Context, rec *Record, now time.Time) error {
	c.maybePurge()
	start := time.Now()
	if err := c.db.Save(ctx, rec, now); err != nil {
		return err
	}
	c.afterWrite(ctx, rec, now, start, false)
	return nil
}

// Touch records activity in the database (one conditional UPDATE) and, when
// it wrote, in the cached entry (one Get and one CompareAndSwap; nothing
// when the entry is not cached: the next load fills it). A touch that found
// the activity already recorded by another request writes no cache entry.
func (c *CachedDB) Touch(ctx context.Context, rec *Record, cutoff, now time.Time) (bool, error) {
	c.maybePurge()
	start := time.Now()
	wrote, err := c.db.Touch(ctx, rec, cutoff, now)
	if err != nil || !wrote {
		return wrote, err
	}
	c.afterWrite(ctx, rec, now, start, true)
	return true, nil
}

// afterWrite brings the cache up to date with rec, which the database now
// holds (its activity fields only when touch).
func (c *CachedDB) afterWrite(ctx context.Context, rec *Record, now, start time.Time, touch bool) {
	if !ValidKey(rec.Key) {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if c.awaitsPurge(rec.Key) {
		// A tombstone is due for this key anyway: write it now rather than
		// an entry.
		c.tombstone(ctx, rec.Key)
		return
	}
	c.writeSaved(ctx, rec, now, start, touch)
}

// writeSaved puts a saved rec in the cache without ever replacing a
// tombstone or a conflict marker: CompareAndSwap against the entry it read,
// Add where it read nothing. When another write came between (a cas
// conflict, an entry newer than rec, an entry it cannot read) or the write
// is later than TTL/2 after the UPDATE began, it writes a conflict marker
// by CompareAndSwap instead; three lost rounds leave the other writer's
// entry.
func (c *CachedDB) writeSaved(ctx context.Context, rec *Record, now, start time.Time, touch bool) {
	ck := c.cacheKey(rec.Key)
	out := cacheRecord(rec)
	conflict := c.stale(start)
	for range 3 {
		val, cas, err := c.cache.Get(ctx, ck)
		var cur *Record
		switch {
		case err == nil:
			var ok bool
			if val, ok = c.mac.open(ck, val); !ok {
				c.badEntry(ctx, "save")
				return // never written over: it expires, or a revoke's Set replaces it
			}
			if len(val) == 0 || val[0] != entryRecordV1 {
				return // a tombstone, a conflict marker (or a newer format): it stays
			}
			if cur, err = decodeRecord(rec.Key, val[1:], c.codec); err != nil {
				c.failed(ctx, "decode", err)
				cur, conflict = nil, true
			}
		case errors.Is(err, ErrCacheMiss):
			// Nothing cached: the next load fills from the database. (An
			// Add here could cache a device binding older than the row's.)
			return
		default:
			c.failed(ctx, "get", err)
			c.addPurge(rec.Key)
			return
		}
		if cur != nil && cur.UpdatedAt.After(out.UpdatedAt) {
			if touch {
				return // a newer save's entry: our activity adds nothing
			}
			conflict = true
		}
		if conflict {
			err = c.cache.CompareAndSwap(ctx, ck, c.mac.seal(ck, slices.Clone(staleMarker)), cas, StaleTTL)
		} else {
			var enc []byte
			if enc, err = c.entryFor(rec.Key, out, cur, now, touch); enc == nil {
				if err != nil {
					c.failed(ctx, "encode", err)
					c.addPurge(rec.Key)
				}
				return
			}
			enc = c.mac.seal(ck, enc)
			if cur != nil {
				err = c.cache.CompareAndSwap(ctx, ck, enc, cas, c.entryTTL(out, now))
			} else {
				err = c.cache.Add(ctx, ck, enc, c.entryTTL(out, now))
			}
		}
		switch {
		case err == nil:
			if conflict {
				c.conflicts.Add(1)
			}
			return
		case errors.Is(err, ErrCASConflict) || errors.Is(err, ErrNotStored):
			conflict = true // someone wrote in between: which write is last is unknown
		default:
			c.failed(ctx, "write", err)
			c.addPurge(rec.Key)
			return
		}
	}
	c.conflicts.Add(1)
}

// entryFor encodes the entry that replaces cur (nil: none) after a save of
// out, or after a touch (out's activity fields over cur). It returns nil
// when there is nothing to write: the session expired, or the row's
// created_at is unknown.
func (c *CachedDB) entryFor(key string, out, cur *Record, now time.Time, touch bool) ([]byte, error) {
	switch {
	case touch:
		t := cur.Clone()
		t.LastActivity, t.ExpireDate, t.UpdatedAt = out.LastActivity, out.ExpireDate, out.UpdatedAt
		t.IP, t.UserAgent = out.IP, out.UserAgent
		out = t
	case cur != nil:
		// Update keeps created_at and the device binding.
		out.CreatedAt, out.DeviceKey, out.DeviceSecret = cur.CreatedAt, cur.DeviceKey, cur.DeviceSecret
	case out.CreatedAt.IsZero():
		return nil, nil // we do not know the row's created_at
	}
	if c.entryTTL(out, now) <= 0 {
		return nil, nil
	}
	out.Key = key
	return encodeRecord(out, c.codec)
}

// Bind stores the device binding in the database (one UPDATE), then sets
// a conflict marker for the key for a whole TTL (one Set): a load that read
// the row before the binding cannot fill the cache with it afterwards (its
// Add or swap meets the marker; a fill later than TTL/2 is dropped anyway),
// while the next load reads the bound row and swaps it in, so the cache is
// warm again at once. The marker holds no session, so it can replace a
// tombstone safely: a load behind it reads the database first. A cache that
// fails puts the key on the purge list.
func (c *CachedDB) Bind(ctx context.Context, key, deviceKey string, secret []byte, now time.Time) error {
	c.maybePurge()
	if err := c.db.Bind(ctx, key, deviceKey, secret, now); err != nil {
		return err
	}
	if !ValidKey(key) {
		return nil
	}
	ck := c.cacheKey(key)
	if err := c.cache.Set(context.WithoutCancel(ctx), ck, c.mac.seal(ck, slices.Clone(staleMarker)), c.ttl); err != nil {
		c.failed(ctx, "bind", err)
		c.addPurge(key)
	}
	return nil
}

// Rotate moves the session to a fresh token in one transaction, then
// tombstones the old key and adds the new entry (one Set, one Add).
func (c *CachedDB) Rotate(ctx context.Context, oldKey string, rec *Record, now time.Time) (string, error) {
	c.maybePurge()
	start := time.Now()
	token, err := c.db.Rotate(ctx, oldKey, rec, now)
	if err != nil {
		return "", err
	}
	c.tombstone(context.WithoutCancel(ctx), oldKey)
	c.fill(ctx, rec, now, start, 0)
	return token, nil
}

// Delete removes the rows (one DELETE per batch), then writes a tombstone
// for every key (one Set each), found or not. It returns how many rows went.
//
// When the database DELETE fails before deleting anything, no tombstone is
// written: the sessions stay in the database, so the cache keeps serving
// them (a failed logout during an outage does not turn the user's reads
// into errors), and the error tells the caller that nothing was revoked.
// When it fails after some batches, every key is tombstoned. A DELETE whose
// commit reached the database but whose answer was lost (a connection cut
// at that instant) reports an error although the rows went; their entries
// then live until the cache TTL or the next revoke of the key, whichever
// comes first. The revocation guarantee is for revokes that returned nil.
func (c *CachedDB) Delete(ctx context.Context, keys ...string) (int, error) {
	c.maybePurge()
	n, err := c.db.Delete(ctx, keys...)
	if err != nil && n == 0 {
		return 0, err
	}
	wctx := context.WithoutCancel(ctx)
	for _, k := range keys {
		c.tombstone(wctx, k)
	}
	return n, err
}

// Invalidate implements Invalidator: a tombstone for every key (one Set
// each); failures go on the purge list. The generated ent hooks call it.
func (c *CachedDB) Invalidate(ctx context.Context, keys []string) {
	c.maybePurge()
	ctx = context.WithoutCancel(ctx)
	for _, k := range keys {
		c.tombstone(ctx, k)
	}
}

// UserSessions lists userID's live sessions from the database (one indexed
// SELECT); the cache is not involved.
func (c *CachedDB) UserSessions(ctx context.Context, userID any, now time.Time) ([]*Record, error) {
	return c.db.UserSessions(ctx, userID, now)
}

// ExcessKeys reads the keys past a per-user cap from the database (one
// indexed SELECT of keys); the cache is not involved.
func (c *CachedDB) ExcessKeys(ctx context.Context, userID any, now time.Time, keep int) ([]string, error) {
	return c.db.ExcessKeys(ctx, userID, now, keep)
}

// Find looks sessions up by public id in the database (one primary-key
// range SELECT); the cache is not involved.
func (c *CachedDB) Find(ctx context.Context, publicID string) ([]*Record, error) {
	return c.db.Find(ctx, publicID)
}

// ClearExpired deletes expired rows in batches, from the database only:
// their cache entries expire with them and are never served past expiry.
func (c *CachedDB) ClearExpired(ctx context.Context, now time.Time) (int, error) {
	return c.db.ClearExpired(ctx, now)
}

// Cache returns the cache in front of the database, for health checks and
// metrics (Memcache.Breakers).
func (c *CachedDB) Cache() Cache { return c.cache }
