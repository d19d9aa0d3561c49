package backend_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/internal/testutil"
)

// Fault settings: a short timeout and cool-down keep the tests fast.
var faultMemcache = backend.MemcacheOptions{
	Timeout: 100 * time.Millisecond,
	Breaker: backend.BreakerOptions{Failures: 2, CoolDown: 300 * time.Millisecond},
}

// opBound is the most one session operation may take with the cache dead
// or stalled: a cache timeout or two plus the database, generously, for
// -race on a small machine.
const opBound = 800 * time.Millisecond

// slowest records the slowest timed operation per test, for the log.
var slowest sync.Map // test name -> time.Duration

func timed(t *testing.T, what string, f func() error) {
	t.Helper()
	start := time.Now()
	if err := f(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	d := time.Since(start)
	if d > opBound {
		t.Fatalf("%s took %v with the cache failing, want under %v", what, d, opBound)
	}
	if old, loaded := slowest.LoadOrStore(t.Name(), d); loaded && old.(time.Duration) < d {
		slowest.Store(t.Name(), d)
	} else if !loaded {
		t.Cleanup(func() {
			v, _ := slowest.LoadAndDelete(t.Name())
			t.Logf("slowest session operation with the cache failing: %v", v)
		})
	}
}

func newRec(clock *testutil.Clock, data string, life time.Duration) *backend.Record {
	now := clock.Now()
	return &backend.Record{Data: []byte(data), ExpireDate: now.Add(life), UserAgent: "UA", IP: "192.0.2.1",
		CreatedAt: now, UpdatedAt: now, LastActivity: now}
}

func loadData(t *testing.T, b backend.Backend, key string, now time.Time) string {
	t.Helper()
	r, err := b.Load(ctx, key, now)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return string(r.Data)
}

func saveData(t *testing.T, b backend.Backend, key, data string, clock *testutil.Clock) {
	t.Helper()
	now := clock.Now()
	r, err := b.Load(ctx, key, now)
	if err != nil {
		t.Fatalf("Load before Save: %v", err)
	}
	r.Data, r.UpdatedAt, r.LastActivity = []byte(data), now, now
	timed(t, "Save", func() error { return b.Save(ctx, r, now) })
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCachedMemcachedKilled: memcached dies mid-run; every request keeps
// succeeding from the database within the timeout, and after a restart the
// cache is used again (sessions saved meanwhile once their purge is done).
func TestCachedMemcachedKilled(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		mcd := testutil.StartMemcached(t)
		clock := testutil.NewClock()
		p := newProc(t, db, clock, true, []string{mcd.Addr}, faultMemcache,
			backend.CachedOptions{PurgeInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		var keys []string
		for i := range 6 {
			r := newRec(clock, fmt.Sprint("v0-", i), time.Hour)
			if _, err := p.c.Create(ctx, r, clock.Now()); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, r.Key)
			loadData(t, p.c, r.Key, clock.Now())
		}
		saved, loaded := keys[:3], keys[3:]
		mcd.Kill()
		for round := range 4 {
			for i, k := range keys {
				var got string
				timed(t, "Load", func() error {
					r, err := p.c.Load(ctx, k, clock.Now())
					if err == nil {
						got = string(r.Data)
					}
					return err
				})
				want := fmt.Sprint("v0-", i)
				if i < len(saved) && round > 0 {
					want = fmt.Sprint("v", round, "-", i)
				}
				if got != want {
					t.Fatalf("round %d: session %d = %q, want %q", round, i, got, want)
				}
			}
			for i, k := range saved {
				saveData(t, p.c, k, fmt.Sprint("v", round+1, "-", i), clock)
			}
		}
		timed(t, "Create", func() error { _, err := p.c.Create(ctx, newRec(clock, "new", time.Hour), clock.Now()); return err })
		s := p.c.Stats()
		if s.Errors == 0 || s.Fallbacks == 0 || s.PurgePending != len(saved) {
			t.Fatalf("stats with memcached dead: %+v; want errors, fallbacks and %d keys to purge", s, len(saved))
		}

		mcd.Restart()
		waitFor(t, "purge list worked off after the restart", 3*time.Second, func() bool {
			_, _ = p.c.Load(ctx, loaded[0], clock.Now()) // session calls start the purge
			return p.c.Stats().PurgePending == 0
		})
		// Sessions only read meanwhile are cached again: a miss fills, then hits.
		for i, k := range loaded {
			loadData(t, p.c, k, clock.Now())
			p.drv.Reset()
			if got := loadData(t, p.c, k, clock.Now()); got != fmt.Sprint("v0-", i+len(saved)) || p.drv.Count() != 0 {
				t.Fatalf("after the restart: %q with %d queries; want a hit", got, p.drv.Count())
			}
		}
		// Saved ones are right (their tombstone sends them to the database).
		for i, k := range saved {
			if got := loadData(t, p.c, k, clock.Now()); got != fmt.Sprint("v4-", i) {
				t.Fatalf("saved session after the restart = %q", got)
			}
		}
		r := newRec(clock, "after", time.Hour)
		if _, err := p.c.Create(ctx, r, clock.Now()); err != nil {
			t.Fatal(err)
		}
		p.drv.Reset()
		loadData(t, p.c, r.Key, clock.Now())
		if p.drv.Count() != 0 {
			t.Fatal("a session created after the restart is not served from the cache")
		}
	})
}

// TestCachedOneOfThreeKilled: with one of three servers dead nothing fails
// and nothing is lost; revokes hold; the server comes back empty.
func TestCachedOneOfThreeKilled(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		srv := []*testutil.MemcachedProc{testutil.StartMemcached(t), testutil.StartMemcached(t), testutil.StartMemcached(t)}
		clock := testutil.NewClock()
		p := newProc(t, db, clock, true, []string{srv[0].Addr, srv[1].Addr, srv[2].Addr}, faultMemcache,
			backend.CachedOptions{PurgeInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		var keys []string
		for i := range 30 {
			r := newRec(clock, fmt.Sprint("v0-", i), time.Hour)
			if _, err := p.c.Create(ctx, r, clock.Now()); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, r.Key)
		}
		onDead := 0
		for _, k := range keys {
			if p.mc.BreakerOpen(k) {
				t.Fatal("breaker open before any failure")
			}
		}
		srv[1].Kill()
		for i, k := range keys {
			if got := loadData(t, p.c, k, clock.Now()); got != fmt.Sprint("v0-", i) {
				t.Fatalf("session %d = %q", i, got)
			}
			saveData(t, p.c, k, fmt.Sprint("v1-", i), clock)
			if got := loadData(t, p.c, k, clock.Now()); got != fmt.Sprint("v1-", i) {
				t.Fatalf("session %d after save = %q", i, got)
			}
			if p.mc.BreakerOpen(k) {
				onDead++
			}
		}
		if onDead == 0 || onDead == len(keys) {
			t.Fatalf("%d of %d keys on the dead server; want some, not all", onDead, len(keys))
		}
		revoked, kept := keys[:6], keys[6:]
		timed(t, "Delete", func() error { _, err := p.c.Delete(ctx, revoked...); return err })
		check := func(when string) {
			t.Helper()
			for _, k := range revoked {
				if _, err := p.c.Load(ctx, k, clock.Now()); !errors.Is(err, backend.ErrNotFound) {
					t.Fatalf("%s: revoked session: %v", when, err)
				}
			}
			for i, k := range kept {
				if got := loadData(t, p.c, k, clock.Now()); got != fmt.Sprint("v1-", i+len(revoked)) {
					t.Fatalf("%s: session %d = %q (lost a save)", when, i+len(revoked), got)
				}
			}
		}
		check("one server dead")
		if s := p.c.Stats(); s.Errors == 0 || s.Hits == 0 {
			t.Fatalf("stats: %+v; want errors (dead server) and hits (live ones)", s)
		}
		srv[1].Restart()
		waitFor(t, "purge list worked off", 3*time.Second, func() bool { return p.c.Purge(ctx) == 0 })
		check("after the restart")
	})
}

// TestCachedStalledServer: memcached is frozen (SIGSTOP) while a session is
// revoked, then resumes (SIGCONT) possibly still holding the session. The
// revoking process never serves it (the key is on its purge list until the
// tombstone lands); another process serves it at most until the purge
// (bounded by the TTL, see TestCachedStalledServerTTL).
func TestCachedStalledServer(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		mcd := testutil.StartMemcached(t)
		clock := testutil.NewClock()
		co := backend.CachedOptions{Prefix: testutil.MemcachedPrefix(t), PurgeInterval: 50 * time.Millisecond,
			Logger: slog.New(slog.DiscardHandler)}
		a := newProc(t, db, clock, true, []string{mcd.Addr}, faultMemcache, co)
		b := newProc(t, db, clock, false, []string{mcd.Addr}, faultMemcache, co)
		var keys []string
		for i := range 3 {
			r := newRec(clock, fmt.Sprint("s", i), time.Hour)
			if _, err := a.c.Create(ctx, r, clock.Now()); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, r.Key)
			loadData(t, b.c, r.Key, clock.Now()) // cached, seen by b
		}
		k1, k2, other := keys[0], keys[1], keys[2]

		mcd.Stop()
		timed(t, "Delete while memcached is stopped", func() error { _, err := a.c.Delete(ctx, k1); return err })
		timed(t, "ent delete while memcached is stopped", func() error { return a.client.Session.DeleteOneID(k2).Exec(ctx) })
		for _, k := range []string{k1, k2} {
			timed(t, "Load of a revoked session", func() error {
				if _, err := a.c.Load(ctx, k, clock.Now()); !errors.Is(err, backend.ErrNotFound) {
					return fmt.Errorf("revoking process: %v, want ErrNotFound", err)
				}
				return nil
			})
		}
		timed(t, "Load of a live session", func() error { _, err := a.c.Load(ctx, other, clock.Now()); return err })
		if s := a.c.Stats(); s.PurgePending == 0 && s.Purges == 0 {
			t.Fatalf("no purge recorded for tombstones that could not be written: %+v", s)
		}

		mcd.Cont()
		// At once, whatever the server holds: the revoking process does not
		// serve them.
		for _, k := range []string{k1, k2} {
			if _, err := a.c.Load(ctx, k, clock.Now()); !errors.Is(err, backend.ErrNotFound) {
				t.Fatalf("revoking process right after SIGCONT: %v", err)
			}
		}
		waitFor(t, "purge list worked off after SIGCONT", 3*time.Second, func() bool { return a.c.Purge(ctx) == 0 })
		for _, p := range []*proc{a, b} {
			for _, k := range []string{k1, k2} {
				if _, err := p.c.Load(ctx, k, clock.Now()); !errors.Is(err, backend.ErrNotFound) {
					t.Fatalf("after the purge: %v", err)
				}
			}
			if got := loadData(t, p.c, other, clock.Now()); got != "s2" {
				t.Fatalf("live session = %q", got)
			}
		}
	})
}

// TestCachedStalledServerTTL: the worst case for another process. The
// revoking process could not send its tombstone (breaker open) and never
// works off its purge list (say it died); the other process may serve the
// stale entry, but no longer than the entry's TTL.
func TestCachedStalledServerTTL(t *testing.T) {
	db := testutil.Open(t, testutil.SQLite)
	mcd := testutil.StartMemcached(t)
	clock := testutil.NewClock()
	const ttl = 2 * time.Second
	co := backend.CachedOptions{TTL: ttl, Prefix: testutil.MemcachedPrefix(t), PurgeInterval: time.Hour,
		Logger: slog.New(slog.DiscardHandler)}
	mo := backend.MemcacheOptions{Timeout: 100 * time.Millisecond, Breaker: backend.BreakerOptions{Failures: 1, CoolDown: time.Hour}}
	a := newProc(t, db, clock, true, []string{mcd.Addr}, mo, co)
	b := newProc(t, db, clock, false, []string{mcd.Addr}, mo, co)
	r := newRec(clock, "stale", time.Hour)
	if _, err := a.c.Create(ctx, r, clock.Now()); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	loadData(t, b.c, r.Key, clock.Now())
	mcd.Stop()
	_, _ = a.c.Load(ctx, backend.KeyOf("x"), clock.Now()) // times out: a's breaker opens
	if _, err := a.c.Delete(ctx, r.Key); err != nil {
		t.Fatal(err)
	}
	if a.c.Stats().PurgePending != 1 {
		t.Fatalf("stats: %+v, want the key on the purge list", a.c.Stats())
	}
	mcd.Cont()
	stale := 0
	for {
		_, err := b.c.Load(ctx, r.Key, clock.Now())
		if errors.Is(err, backend.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		stale++
		if since := time.Since(written); since > ttl+1500*time.Millisecond {
			t.Fatalf("the other process still serves the revoked session %v after its entry was written (TTL %v)", since, ttl)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := a.c.Load(ctx, r.Key, clock.Now()); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("revoking process: %v", err)
	}
	t.Logf("the other process served the revoked session %d times, for at most %v after it was cached (TTL %v)",
		stale, time.Since(written).Round(100*time.Millisecond), ttl)
}

// flakyCache fails every call while down is set, like a dead server, and
// otherwise passes calls on (to a cache that may hold stale entries, like a
// server back from SIGSTOP).
type flakyCache struct {
	backend.Cache
	down atomic.Bool
}

var errDown = errors.New("dial tcp 127.0.0.1:11211: connect: connection refused (simulated)")

func (c *flakyCache) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	if c.down.Load() {
		return nil, 0, errDown
	}
	return c.Cache.Get(ctx, key)
}

func (c *flakyCache) Add(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	if c.down.Load() {
		return errDown
	}
	return c.Cache.Add(ctx, key, v, ttl)
}

func (c *flakyCache) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	if c.down.Load() {
		return errDown
	}
	return c.Cache.Set(ctx, key, v, ttl)
}

func (c *flakyCache) CompareAndSwap(ctx context.Context, key string, v []byte, cas uint64, ttl time.Duration) error {
	if c.down.Load() {
		return errDown
	}
	return c.Cache.CompareAndSwap(ctx, key, v, cas, ttl)
}

func (c *flakyCache) Delete(ctx context.Context, key string) error {
	if c.down.Load() {
		return errDown
	}
	return c.Cache.Delete(ctx, key)
}

// logCounter is a slog.Handler that keeps the records.
type logCounter struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCounter) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r)
	h.mu.Unlock()
	return nil
}
func (h *logCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCounter) WithGroup(string) slog.Handler      { return h }
func (h *logCounter) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.recs)
}

// TestCachedFailurePolicy: with the cache failing every call, everything
// succeeds from the database, failures are logged once per interval, the
// keys whose tombstone or write failed go on the purge list and are not
// trusted when the cache comes back holding stale entries, until the purge.
func TestCachedFailurePolicy(t *testing.T) {
	t.Parallel()
	store := backend.NewMemStore()
	fc := &flakyCache{Cache: backend.NewLocalCache(100)}
	cc := &countingCache{Cache: fc}
	logs := &logCounter{}
	clock := testutil.NewClock()
	c, err := backend.NewCachedDB(store, cc, backend.CachedOptions{Keys: testutil.CacheKeys, Logger: slog.New(logs),
		LogInterval: time.Hour, PurgeInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i := range 6 {
		r := newRec(clock, fmt.Sprint("v0-", i), time.Hour)
		if _, err := c.Create(ctx, r, clock.Now()); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, r.Key)
	}
	deleted, saved, untouched := keys[:2], keys[2:4], keys[4:]
	fc.down.Store(true)
	for range 10 {
		for _, k := range keys {
			loadData(t, c, k, clock.Now())
		}
	}
	for i, k := range saved {
		saveData(t, c, k, fmt.Sprint("v1-", i), clock)
	}
	if _, err := c.Delete(ctx, deleted...); err != nil {
		t.Fatal(err)
	}
	s := c.Stats()
	// 60 loads, 2 loads before the saves, 2 saves' reads, 2 tombstones.
	if s.Fallbacks != 62 || s.Errors != 66 || s.PurgePending != 4 || s.Hits != 0 {
		t.Fatalf("stats with the cache down: %+v", s)
	}
	if n := logs.count(); n != 1 {
		t.Fatalf("%d log lines for %d failures within the interval, want 1", n, s.Errors)
	}

	// The cache comes back, still holding the old entries (as a server back
	// from SIGSTOP would). Keys awaiting their purge are not read from it.
	fc.down.Store(false)
	cc.reset()
	for _, k := range deleted {
		if _, err := c.Load(ctx, k, clock.Now()); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("a deleted session from a cache back with stale entries: %v", err)
		}
	}
	for i, k := range saved {
		if got := loadData(t, c, k, clock.Now()); got != fmt.Sprint("v1-", i) {
			t.Fatalf("a saved session from a cache back with stale entries: %q", got)
		}
	}
	if g := cc.gets.Load(); g != 0 {
		t.Fatalf("%d cache reads of keys awaiting their purge", g)
	}
	for _, k := range untouched {
		loadData(t, c, k, clock.Now())
	}
	if c.Stats().Hits != 2 {
		t.Fatalf("untouched sessions not served from the cache: %+v", c.Stats())
	}
	if n := c.Purge(ctx); n != 0 {
		t.Fatalf("Purge left %d keys", n)
	}
	if s := c.Stats(); s.Purges != 4 || s.PurgePending != 0 {
		t.Fatalf("stats after the purge: %+v", s)
	}
	for _, k := range deleted {
		if _, err := c.Load(ctx, k, clock.Now()); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("deleted session after the purge: %v", err)
		}
	}
	for i, k := range saved {
		if got := loadData(t, c, k, clock.Now()); got != fmt.Sprint("v1-", i) {
			t.Fatalf("saved session after the purge: %q", got)
		}
	}
}

// TestCachedPurgeOverflow: when the purge list is full, the whole cache is
// distrusted until a TTL has passed since the last key that did not fit.
func TestCachedPurgeOverflow(t *testing.T) {
	t.Parallel()
	store := backend.NewMemStore()
	fc := &flakyCache{Cache: backend.NewLocalCache(100)}
	cc := &countingCache{Cache: fc}
	var logs bytes.Buffer
	clock := testutil.NewClock()
	c, err := backend.NewCachedDB(store, cc, backend.CachedOptions{Keys: testutil.CacheKeys, TTL: time.Second, MaxPurge: 2,
		PurgeInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i := range 4 {
		r := newRec(clock, fmt.Sprint("v", i), time.Hour)
		if _, err := c.Create(ctx, r, clock.Now()); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, r.Key)
	}
	fc.down.Store(true)
	if _, err := c.Delete(ctx, keys[:3]...); err != nil {
		t.Fatal(err)
	}
	overflowed := time.Now()
	if s := c.Stats(); !s.Distrusted || s.PurgePending != 2 {
		t.Fatalf("after 3 failed tombstones with room for 2: %+v", s)
	}
	if !strings.Contains(logs.String(), "purge list full") {
		t.Fatalf("overflow not logged:\n%s", logs.String())
	}
	fc.down.Store(false)
	if n := c.Purge(ctx); n != 0 {
		t.Fatalf("Purge left %d", n)
	}
	cc.reset()
	for _, k := range keys[:3] {
		if _, err := c.Load(ctx, k, clock.Now()); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("deleted session while distrusted: %v", err)
		}
	}
	loadData(t, c, keys[3], clock.Now())
	if time.Since(overflowed) < 900*time.Millisecond {
		if cc.gets.Load() != 0 || !c.Stats().Distrusted {
			t.Fatalf("the cache was read while distrusted: %d gets, %+v", cc.gets.Load(), c.Stats())
		}
	}
	waitFor(t, "trusted again after the TTL", 2*time.Second, func() bool { return !c.Stats().Distrusted })
	loadData(t, c, keys[3], clock.Now())
	loadData(t, c, keys[3], clock.Now())
	if c.Stats().Hits == 0 {
		t.Fatalf("the cache is not used again after the TTL: %+v", c.Stats())
	}
}
