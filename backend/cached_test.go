package backend_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/ent/session"
	"github.com/qsessions/qsessions/internal/testutil"
)

// countingCache wraps a Cache, counts its calls and lets a test hold or
// delay a call (hook runs before the call is passed on).
type countingCache struct {
	backend.Cache
	gets, adds, sets, cass, dels atomic.Int64
	hook                         atomic.Pointer[func(op, key string)]
}

func (c *countingCache) before(op, key string) {
	if h := c.hook.Load(); h != nil {
		(*h)(op, key)
	}
}

func (c *countingCache) setHook(h func(op, key string)) {
	if h == nil {
		c.hook.Store(nil)
		return
	}
	c.hook.Store(&h)
}

func (c *countingCache) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	c.gets.Add(1)
	c.before("get", key)
	return c.Cache.Get(ctx, key)
}

func (c *countingCache) Add(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	c.adds.Add(1)
	c.before("add", key)
	return c.Cache.Add(ctx, key, v, ttl)
}

func (c *countingCache) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	c.sets.Add(1)
	c.before("set", key)
	return c.Cache.Set(ctx, key, v, ttl)
}

func (c *countingCache) CompareAndSwap(ctx context.Context, key string, v []byte, cas uint64, ttl time.Duration) error {
	c.cass.Add(1)
	c.before("cas", key)
	return c.Cache.CompareAndSwap(ctx, key, v, cas, ttl)
}

func (c *countingCache) Delete(ctx context.Context, key string) error {
	c.dels.Add(1)
	c.before("delete", key)
	return c.Cache.Delete(ctx, key)
}

func (c *countingCache) calls() int64 {
	return c.gets.Load() + c.adds.Load() + c.sets.Load() + c.cass.Load() + c.dels.Load()
}

func (c *countingCache) reset() {
	c.gets.Store(0)
	c.adds.Store(0)
	c.sets.Store(0)
	c.cass.Store(0)
	c.dels.Store(0)
}

// Backend kinds of the shared suite.
const (
	kindDB       = "db"
	kindMemcache = "cached_db+memcache"
	kindLocal    = "cached_db+local"
)

var allKinds = []string{kindDB, kindMemcache, kindLocal}

// env is one backend over a fresh ent client of a test database.
type env struct {
	kind   string
	drv    *testutil.CountingDriver
	client *ent.Client
	store  *ent.SessionStore
	clock  *testutil.Clock
	b      backend.Backend
	cached *backend.CachedDB // nil for kindDB
	cache  *countingCache    // nil for kindDB
	prefix string
}

// newClient opens an ent client (with the generated Store) on db, creating
// the schema when create is set.
func newClient(t *testing.T, db *testutil.DB, clock *testutil.Clock, create bool) (*ent.Client, *ent.SessionStore, *testutil.CountingDriver) {
	t.Helper()
	drv := testutil.NewCountingDriver(db.Driver())
	client := ent.NewClient(ent.Driver(drv))
	if create {
		if err := client.Schema.Create(context.Background()); err != nil {
			t.Fatalf("creating the schema: %v", err)
		}
	}
	return client, ent.NewSessionStore(client, backend.WithClock(clock.Now)), drv
}

// newEnv builds a backend of kind over db. A memcache env uses the shared
// server unless cache is given.
func newEnv(t *testing.T, db *testutil.DB, kind string, cache backend.Cache, opts backend.CachedOptions) *env {
	t.Helper()
	e := &env{kind: kind, clock: testutil.NewClock()}
	e.client, e.store, e.drv = newClient(t, db, e.clock, true)
	e.attach(t, kind, cache, opts)
	return e
}

func (e *env) attach(t *testing.T, kind string, cache backend.Cache, opts backend.CachedOptions) {
	t.Helper()
	if kind == kindDB {
		e.b = backend.NewDB(e.store)
		return
	}
	if cache == nil {
		if kind == kindMemcache {
			mc, p := sharedMemcache(t)
			cache, opts.Prefix = mc, p
		} else {
			cache = backend.NewLocalCache(0)
		}
	}
	if opts.Prefix == "" {
		opts.Prefix = testutil.MemcachedPrefix(t)
	}
	e.prefix = opts.Prefix
	e.cache = &countingCache{Cache: cache}
	if opts.Keys == nil && !opts.UnauthenticatedCache {
		opts.Keys = testutil.CacheKeys
	}
	c, err := backend.NewCachedDB(e.store, e.cache, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.cached, e.b = c, c
}

var ctx = context.Background()

func (e *env) newUser(t *testing.T, name string) int {
	t.Helper()
	u, err := e.client.User.Create().SetUsername(name + "-" + testutil.MemcachedPrefix(t)[4:16]).Save(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// rec is a new session record starting now, of uid (nil: anonymous).
func (e *env) rec(uid any, ua string, life time.Duration) *backend.Record {
	now := e.clock.Now()
	return &backend.Record{
		Data:         []byte("data:" + ua),
		ExpireDate:   now.Add(life),
		UserID:       uid,
		UserAgent:    ua,
		IP:           "::ffff:192.0.2.7",
		CreatedAt:    now,
		UpdatedAt:    now,
		LastActivity: now,
	}
}

func (e *env) create(t *testing.T, r *backend.Record) string {
	t.Helper()
	tok, err := e.b.Create(ctx, r, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !backend.ValidToken(tok) || r.Key != backend.KeyOf(tok) {
		t.Fatalf("Create returned token %q, key %q", tok, r.Key)
	}
	return r.Key
}

func (e *env) load(t *testing.T, key string) (*backend.Record, error) {
	t.Helper()
	return e.b.Load(ctx, key, e.clock.Now())
}

func (e *env) mustLoad(t *testing.T, key string) *backend.Record {
	t.Helper()
	r, err := e.load(t, key)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return r
}

func (e *env) gone(t *testing.T, key, why string) {
	t.Helper()
	for range 2 { // twice: a wrong fill would show on the second
		if r, err := e.load(t, key); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("%s: Load = %+v, %v; want ErrNotFound", why, r, err)
		}
	}
}

// fromDB reads key from the database, bypassing any cache.
func (e *env) fromDB(t *testing.T, key string) *backend.Record {
	t.Helper()
	r, err := e.store.Get(ctx, key, e.clock.Now())
	if err != nil {
		t.Fatalf("store.Get: %v", err)
	}
	return r
}

// rawEntry returns the cache entry of key as the cache holds it.
func (e *env) rawEntry(t *testing.T, key string) ([]byte, error) {
	t.Helper()
	v, _, err := e.cache.Cache.Get(ctx, e.prefix+key)
	return v, err
}

func (e *env) isTombstone(t *testing.T, key string) bool {
	t.Helper()
	v, err := e.rawEntry(t, key)
	return err == nil && (len(v) == 1 || len(v) == 1+backend.MACLen) && v[0] == 0
}

func sameRecord(t *testing.T, what string, got, want *backend.Record) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %#v\nwant %#v", what, got, want)
	}
}

// eachBackend runs f for every backend kind on every dialect, each on a
// fresh database.
func eachBackend(t *testing.T, kinds []string, f func(t *testing.T, e *env)) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			for _, k := range kinds {
				t.Run(k, func(t *testing.T) {
					f(t, newEnv(t, testutil.Open(t, d), k, nil, backend.CachedOptions{}))
				})
			}
		})
	}
}

// missingKey is a valid key no session has.
var missingKey = backend.KeyOf("no-such-token")

// suite is the behaviour both backends share, run against backend.DB and
// CachedDB (memcached and the local cache) on every dialect.
var suite = []struct {
	name string
	f    func(t *testing.T, e *env)
}{
	{"CreateLoad", func(t *testing.T, e *env) {
		uid := e.newUser(t, "ann")
		r := e.rec(uid, "Mozilla/5.0 "+strings.Repeat("é", 400), 14*24*time.Hour)
		key := e.create(t, r)
		want := e.fromDB(t, key)
		sameRecord(t, "first load", e.mustLoad(t, key), want)
		sameRecord(t, "second load", e.mustLoad(t, key), want)
		if want.IP != "192.0.2.7" || len([]rune(want.UserAgent)) != backend.MaxUserAgent || want.UserID != uid {
			t.Fatalf("stored record not normalised: %+v", want)
		}
		// Anonymous, no data, no user agent, no IP.
		a := e.rec(nil, "", time.Hour)
		a.Data, a.IP = []byte{}, ""
		akey := e.create(t, a)
		want = e.fromDB(t, akey)
		sameRecord(t, "anonymous load", e.mustLoad(t, akey), want)
		sameRecord(t, "anonymous second load", e.mustLoad(t, akey), want)
	}},
	{"Save", func(t *testing.T, e *env) {
		uid := e.newUser(t, "bob")
		key := e.create(t, e.rec(nil, "UA1", time.Hour))
		orig := e.mustLoad(t, key)
		e.clock.Advance(time.Minute)
		now := e.clock.Now()
		r := orig.Clone()
		r.Data, r.UserID, r.UserAgent, r.IP = []byte("changed"), uid, "UA2", "2001:DB8::1"
		r.UpdatedAt, r.LastActivity, r.ExpireDate = now, now, now.Add(2*time.Hour)
		r.CreatedAt = now // the row keeps its created_at whatever the record says
		if err := e.b.Save(ctx, r, now); err != nil {
			t.Fatal(err)
		}
		want := e.fromDB(t, key)
		if string(want.Data) != "changed" || want.UserID != uid || want.IP != "2001:db8::1" || !want.CreatedAt.Equal(orig.CreatedAt) {
			t.Fatalf("saved row: %+v", want)
		}
		sameRecord(t, "load after save", e.mustLoad(t, key), want)
		sameRecord(t, "second load after save", e.mustLoad(t, key), want)
		// Logout on the same session: user cleared.
		r.UserID, r.Data = nil, []byte("anon")
		if err := e.b.Save(ctx, r, now); err != nil {
			t.Fatal(err)
		}
		sameRecord(t, "load after clearing the user", e.mustLoad(t, key), e.fromDB(t, key))
	}},
	{"SaveInterrupted", func(t *testing.T, e *env) {
		key := e.create(t, e.rec(nil, "UA", time.Hour))
		r := e.mustLoad(t, key)
		if _, err := e.b.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		if err := e.b.Save(ctx, r, e.clock.Now()); !errors.Is(err, backend.ErrSessionInterrupted) {
			t.Fatalf("Save after Delete: %v, want ErrSessionInterrupted", err)
		}
		e.gone(t, key, "after an interrupted save")
		// Expired while the request ran.
		key = e.create(t, e.rec(nil, "UA", time.Minute))
		r = e.mustLoad(t, key)
		e.clock.Advance(2 * time.Minute)
		r.ExpireDate = e.clock.Now().Add(time.Hour)
		if err := e.b.Save(ctx, r, e.clock.Now()); !errors.Is(err, backend.ErrSessionInterrupted) {
			t.Fatalf("Save of an expired session: %v, want ErrSessionInterrupted", err)
		}
		e.gone(t, key, "an expired session after a save")
		// Never created.
		r.Key = missingKey
		if err := e.b.Save(ctx, r, e.clock.Now()); !errors.Is(err, backend.ErrSessionInterrupted) {
			t.Fatalf("Save of a missing session: %v, want ErrSessionInterrupted", err)
		}
	}},
	{"Rotate", func(t *testing.T, e *env) {
		uid := e.newUser(t, "cid")
		old := e.create(t, e.rec(nil, "UA", time.Hour))
		r := e.mustLoad(t, old)
		r.Data, r.UserID = []byte("rotated"), uid
		tok, err := e.b.Rotate(ctx, old, r, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if r.Key != backend.KeyOf(tok) || r.Key == old {
			t.Fatalf("Rotate: key %q, token %q", r.Key, tok)
		}
		e.gone(t, old, "old key after rotate")
		want := e.fromDB(t, r.Key)
		if string(want.Data) != "rotated" || want.UserID != uid {
			t.Fatalf("rotated row: %+v", want)
		}
		sameRecord(t, "new key", e.mustLoad(t, r.Key), want)
		sameRecord(t, "new key again", e.mustLoad(t, r.Key), want)
		if _, err := e.b.Rotate(ctx, old, r.Clone(), e.clock.Now()); !errors.Is(err, backend.ErrSessionInterrupted) {
			t.Fatalf("Rotate of a gone key: %v, want ErrSessionInterrupted", err)
		}
	}},
	{"Delete", func(t *testing.T, e *env) {
		k1 := e.create(t, e.rec(nil, "a", time.Hour))
		k2 := e.create(t, e.rec(nil, "b", time.Hour))
		k3 := e.create(t, e.rec(nil, "c", time.Hour))
		for _, k := range []string{k1, k2, k3} {
			e.mustLoad(t, k)
		}
		n, err := e.b.Delete(ctx, k1, k2, missingKey)
		if err != nil || n != 2 {
			t.Fatalf("Delete = %d, %v; want 2", n, err)
		}
		e.gone(t, k1, "deleted k1")
		e.gone(t, k2, "deleted k2")
		sameRecord(t, "untouched k3", e.mustLoad(t, k3), e.fromDB(t, k3))
		if n, err := e.b.Delete(ctx); n != 0 || err != nil {
			t.Fatalf("Delete() = %d, %v", n, err)
		}
	}},
	{"UserSessions", func(t *testing.T, e *env) {
		uid, other := e.newUser(t, "dan"), e.newUser(t, "eve")
		t0 := e.clock.Now()
		var keys []string
		for i, d := range []time.Duration{time.Second, 3 * time.Second, 2 * time.Second} {
			r := e.rec(uid, fmt.Sprint("ua", i), time.Hour)
			r.LastActivity = t0.Add(d)
			keys = append(keys, e.create(t, r))
		}
		e.create(t, e.rec(other, "x", time.Hour))
		e.create(t, e.rec(nil, "y", time.Hour))
		short := e.create(t, e.rec(uid, "short", time.Minute))
		e.mustLoad(t, short)
		e.clock.Advance(2 * time.Minute)
		got, err := e.b.UserSessions(ctx, uid, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		var gotKeys []string
		for _, r := range got {
			gotKeys = append(gotKeys, r.Key)
			sameRecord(t, "listed session", r, e.fromDB(t, r.Key))
		}
		if want := []string{keys[1], keys[2], keys[0]}; !slices.Equal(gotKeys, want) {
			t.Fatalf("UserSessions = %v, want %v (newest activity first, no expired)", gotKeys, want)
		}
		if got, err := e.b.UserSessions(ctx, e.newUser(t, "fay"), e.clock.Now()); err != nil || len(got) != 0 {
			t.Fatalf("UserSessions of a user without sessions = %v, %v", got, err)
		}
	}},
	{"ClearExpired", func(t *testing.T, e *env) {
		a := e.create(t, e.rec(nil, "a", time.Hour))
		b := e.create(t, e.rec(nil, "b", time.Hour))
		c := e.create(t, e.rec(nil, "c", 48*time.Hour))
		for _, k := range []string{a, b, c} {
			e.mustLoad(t, k)
		}
		e.clock.Advance(2 * time.Hour)
		e.gone(t, a, "expired a, though cached")
		n, err := e.b.ClearExpired(ctx, e.clock.Now())
		if err != nil || n < 2 {
			t.Fatalf("ClearExpired = %d, %v; want at least 2", n, err)
		}
		for _, k := range []string{a, b} {
			if _, err := e.store.Get(ctx, k, e.clock.Now().Add(-3*time.Hour)); !errors.Is(err, backend.ErrNotFound) {
				t.Fatalf("expired row still in the database: %v", err)
			}
		}
		e.gone(t, b, "cleared b")
		sameRecord(t, "live c", e.mustLoad(t, c), e.fromDB(t, c))
	}},
	{"NotFound", func(t *testing.T, e *env) {
		e.gone(t, missingKey, "a key no session has")
		e.gone(t, "not-a-key", "a malformed key")
		if _, err := e.b.Rotate(ctx, missingKey, e.rec(nil, "", time.Hour), e.clock.Now()); !errors.Is(err, backend.ErrSessionInterrupted) {
			t.Fatalf("Rotate of a missing key: %v, want ErrSessionInterrupted", err)
		}
	}},
}

// TestBackendSuite runs the same behaviour against the db backend and
// cached_db (memcached, and the local cache) on every dialect.
func TestBackendSuite(t *testing.T) {
	eachBackend(t, allKinds, func(t *testing.T, e *env) {
		for _, c := range suite {
			t.Run(c.name, func(t *testing.T) { c.f(t, e) })
		}
		if e.cached != nil {
			s := e.cached.Stats()
			if s.Hits == 0 || s.Misses == 0 || s.Errors != 0 || s.Fallbacks != 0 || s.PurgePending != 0 {
				t.Fatalf("stats after the suite: %+v", s)
			}
		}
	})
}

var cachedKinds = []string{kindMemcache, kindLocal}

// TestCachedHitCost: a hit is one cache Get and no database query; a miss
// is one SELECT, one Get and one Add.
func TestCachedHitCost(t *testing.T) {
	eachBackend(t, cachedKinds, func(t *testing.T, e *env) {
		key := e.create(t, e.rec(e.newUser(t, "hit"), "UA", time.Hour))
		want := e.fromDB(t, key)
		e.drv.Reset()
		e.cache.reset()
		sameRecord(t, "hit", e.mustLoad(t, key), want)
		if n := e.drv.Count(); n != 0 {
			t.Fatalf("a cache hit made %d database queries: %v", n, e.drv.Queries())
		}
		if n, g := e.cache.calls(), e.cache.gets.Load(); n != 1 || g != 1 {
			t.Fatalf("a cache hit made %d cache calls (%d gets), want exactly 1 Get", n, g)
		}
		// A miss: the entry is gone from the cache.
		if err := e.cache.Cache.Delete(ctx, e.prefix+key); err != nil {
			t.Fatal(err)
		}
		e.drv.Reset()
		e.cache.reset()
		sameRecord(t, "miss", e.mustLoad(t, key), want)
		if n := e.drv.Count(); n != 1 {
			t.Fatalf("a miss made %d database queries, want 1: %v", n, e.drv.Queries())
		}
		if g, a, n := e.cache.gets.Load(), e.cache.adds.Load(), e.cache.calls(); g != 1 || a != 1 || n != 2 {
			t.Fatalf("a miss made %d gets, %d adds, %d calls; want 1, 1, 2", g, a, n)
		}
		// Latency, for the record (not asserted).
		const n = 200
		start := time.Now()
		for range n {
			e.mustLoad(t, key)
		}
		hit := time.Since(start) / n
		start = time.Now()
		for range n {
			_ = e.cache.Cache.Delete(ctx, e.prefix+key)
			e.mustLoad(t, key)
		}
		miss := time.Since(start) / n
		s := e.cached.Stats()
		t.Logf("%s: hit %v, miss (incl. a cache delete) %v per load; stats %+v", e.kind, hit, miss, s)
	})
}

// TestCachedEntDeletes: the parity with django-qsessions' Session.delete()
// and QuerySet.delete(): sessions deleted through ent (one, by predicate,
// with their user) are gone from the cache and the database; the others are
// untouched and still served from the cache.
func TestCachedEntDeletes(t *testing.T) {
	eachBackend(t, cachedKinds, func(t *testing.T, e *env) {
		u1, u2 := e.newUser(t, "u1"), e.newUser(t, "u2")
		s1 := e.create(t, e.rec(u1, "X", time.Hour))
		s2 := e.create(t, e.rec(u1, "X", time.Hour))
		s3 := e.create(t, e.rec(u1, "Y", time.Hour))
		s4 := e.create(t, e.rec(u2, "X", time.Hour))
		s5 := e.create(t, e.rec(u2, "Z", time.Hour))
		all := []string{s1, s2, s3, s4, s5}
		for _, k := range all {
			e.mustLoad(t, k)
		}
		alive := func(keys ...string) {
			t.Helper()
			for _, k := range keys {
				e.drv.Reset()
				sameRecord(t, "untouched session", e.mustLoad(t, k), e.fromDB(t, k))
				if n := e.drv.Count(); n != 1 { // fromDB's own SELECT only
					t.Fatalf("untouched session not served from the cache: %d queries", n)
				}
			}
		}
		dead := func(why string, keys ...string) {
			t.Helper()
			for _, k := range keys {
				if !e.isTombstone(t, k) {
					v, err := e.rawEntry(t, k)
					t.Fatalf("%s: cache entry is %q, %v; want a tombstone", why, v, err)
				}
				if _, err := e.store.Get(ctx, k, e.clock.Now()); !errors.Is(err, backend.ErrNotFound) {
					t.Fatalf("%s: still in the database: %v", why, err)
				}
				e.gone(t, k, why)
			}
		}
		if err := e.client.Session.DeleteOneID(s1).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		dead("Session.DeleteOneID", s1)
		alive(s2, s3, s4, s5)

		n, err := e.client.Session.Delete().Where(session.UserAgent("X")).Exec(ctx)
		if err != nil || n != 2 {
			t.Fatalf("bulk delete = %d, %v; want 2", n, err)
		}
		dead("Session.Delete().Where(UserAgent X)", s2, s4)
		alive(s3, s5)

		if err := e.client.User.DeleteOneID(u2).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		dead("User.DeleteOneID", s5)
		alive(s3)

		// Inside a transaction: tombstoned after the statement and again on
		// commit.
		tx, err := e.client.Tx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Session.DeleteOneID(s3).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if !e.isTombstone(t, s3) {
			t.Fatal("no tombstone after the statement inside a transaction")
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		dead("delete in a transaction", s3)
	})
}

// holdCache makes the first op on key wait until release is closed, after
// closing reached.
type holdCache struct {
	reached, release chan struct{}
	once, freeOnce   sync.Once
}

// free lets the held call go on (once).
func (h *holdCache) free() { h.freeOnce.Do(func() { close(h.release) }) }

// wait returns once the held call arrived; it fails t after 5 s.
func (h *holdCache) wait(t *testing.T) {
	t.Helper()
	select {
	case <-h.reached:
	case <-time.After(2 * time.Second):
		t.Fatal("the cache call to hold never came")
	}
}

func hold(e *env, op, key string) *holdCache {
	h := &holdCache{reached: make(chan struct{}), release: make(chan struct{})}
	ck := e.prefix + key
	e.cache.setHook(func(o, k string) {
		if o == op && k == ck {
			first := false
			h.once.Do(func() { first = true })
			if first {
				close(h.reached)
				<-h.release
			}
		}
	})
	return h
}

// TestCachedRevokeDuringFill forces the dangerous order: a request loads a
// session from the database, then the session is revoked (in every way
// there is), and only then does the request's fill reach the cache. The
// revoked session must not be served afterwards.
func TestCachedRevokeDuringFill(t *testing.T) {
	type revoke func(t *testing.T, e *env, key string, uid int)
	revokes := []struct {
		name string
		f    revoke
	}{
		{"Backend.Delete", func(t *testing.T, e *env, key string, _ int) {
			if n, err := e.b.Delete(ctx, key); err != nil || n != 1 {
				t.Fatalf("Delete = %d, %v", n, err)
			}
		}},
		{"Session.DeleteOneID", func(t *testing.T, e *env, key string, _ int) {
			if err := e.client.Session.DeleteOneID(key).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}},
		{"Session.Delete.Where", func(t *testing.T, e *env, key string, uid int) {
			if _, err := e.client.Session.Delete().Where(session.UserID(uid)).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}},
		{"User.DeleteOneID", func(t *testing.T, e *env, _ string, uid int) {
			if err := e.client.User.DeleteOneID(uid).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}},
		{"Rotate", func(t *testing.T, e *env, key string, _ int) {
			r := e.fromDB(t, key)
			if _, err := e.b.Rotate(ctx, key, r, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}},
		{"Session.Update.ExpireDate", func(t *testing.T, e *env, key string, _ int) {
			if err := e.client.Session.UpdateOneID(key).SetExpireDate(e.clock.Now().Add(-time.Second)).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}},
	}
	eachBackend(t, cachedKinds, func(t *testing.T, e *env) {
		for _, rv := range revokes {
			ok := t.Run("fill/"+rv.name, func(t *testing.T) {
				uid := e.newUser(t, "victim")
				key := e.create(t, e.rec(uid, "UA", time.Hour))
				_ = e.cache.Cache.Delete(ctx, e.prefix+key) // the next load misses
				h := hold(e, "add", key)
				defer e.cache.setHook(nil)
				defer h.free()
				done := make(chan error, 1)
				go func() {
					_, err := e.b.Load(ctx, key, e.clock.Now())
					done <- err // it began before the revoke: it may return the session
				}()
				h.wait(t) // loaded from the database, fill not yet sent
				rv.f(t, e, key, uid)
				h.free() // the revoke has returned; now the fill lands
				if err := <-done; err != nil {
					t.Fatalf("the load that began before the revoke: %v", err)
				}
				e.gone(t, key, "after the revoke, with a late fill")
				if !e.isTombstone(t, key) {
					t.Fatal("the late fill replaced the tombstone")
				}
			})
			ok = ok && t.Run("save/"+rv.name, func(t *testing.T) {
				uid := e.newUser(t, "saver")
				key := e.create(t, e.rec(uid, "UA", time.Hour))
				r := e.mustLoad(t, key) // cached
				r.Data = []byte("saved before the revoke")
				h := hold(e, "cas", key)
				defer e.cache.setHook(nil)
				defer h.free()
				done := make(chan error, 1)
				go func() { done <- e.b.Save(ctx, r, e.clock.Now()) }()
				h.wait(t) // UPDATE done, cache write not yet sent
				rv.f(t, e, key, uid)
				h.free()
				if err := <-done; err != nil {
					t.Fatalf("the save whose UPDATE preceded the revoke: %v", err)
				}
				e.gone(t, key, "after the revoke, with a late save")
			})
			if !ok {
				return // one broken order is enough; the rest would repeat it
			}
		}
	})
}

// slowStore is a Store whose Get can be held after it read the row, like a
// request that stalls between its database read and its fill.
type slowStore struct {
	backend.Store
	hook atomic.Pointer[func()]
}

func (s *slowStore) Get(ctx context.Context, key string, now time.Time) (*backend.Record, error) {
	r, err := s.Store.Get(ctx, key, now)
	if h := s.hook.Load(); h != nil {
		(*h)()
	}
	return r, err
}

// TestCachedFillGuard: when a tombstone is gone before a straggling fill
// lands (here: it expired; in memcached also: evicted), the fill is dropped
// because it began more than TTL/2 ago.
func TestCachedFillGuard(t *testing.T) {
	t.Parallel()
	store := &slowStore{Store: backend.NewMemStore()}
	lc := backend.NewLocalCache(10)
	clock := testutil.NewClock()
	c, err := backend.NewCachedDB(store, lc, backend.CachedOptions{TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	r := &backend.Record{Data: []byte("x"), ExpireDate: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, LastActivity: now}
	if _, err := c.Create(ctx, r, clock.Now()); err != nil {
		t.Fatal(err)
	}
	key := r.Key
	_ = lc.Delete(ctx, backend.DefaultCachePrefix+key) // the next load misses
	var once sync.Once
	reached, release := make(chan struct{}), make(chan struct{})
	h := func() { once.Do(func() { close(reached); <-release }) }
	store.hook.Store(&h)
	done := make(chan error, 1)
	go func() { _, err := c.Load(ctx, key, now); done <- err }()
	select {
	case <-reached: // read from the database, not yet filled
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("the load never read the database")
	}
	store.hook.Store(nil)
	if _, err := c.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the tombstone expires
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the straggling load: %v", err)
	}
	if v, _, err := lc.Get(ctx, backend.DefaultCachePrefix+key); !errors.Is(err, backend.ErrCacheMiss) {
		t.Fatalf("a fill that began over TTL/2 ago was written: %x, %v", v, err)
	}
	if _, err := c.Load(ctx, key, now); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Load after the revoke: %v", err)
	}
}

type appID int64

type appIDCodec struct{}

func (appIDCodec) EncodeUserID(id any) ([]byte, error) {
	v, ok := id.(appID)
	if !ok {
		return nil, fmt.Errorf("not an appID: %T", id)
	}
	return []byte(fmt.Sprint(int64(v))), nil
}

func (appIDCodec) DecodeUserID(b []byte) (any, error) {
	var v int64
	_, err := fmt.Sscan(string(b), &v)
	return appID(v), err
}

// TestCachedUserIDTypes: user IDs come back from the cache with their Go
// type; an unknown type without a codec is simply not cached.
func TestCachedUserIDTypes(t *testing.T) {
	t.Parallel()
	u := uuid.MustParse("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
	ids := []any{nil, 42, int8(-8), int16(-16), int32(-32), int64(-1 << 60), uint(7), uint8(8), uint16(16), uint32(32), uint64(1 << 63),
		"", "user-ü", u, [16]byte(u), appID(99)}
	var logs bytes.Buffer
	store := backend.NewMemStore()
	cc := &countingCache{Cache: backend.NewLocalCache(100)}
	clock := testutil.NewClock()
	c, err := backend.NewCachedDB(store, cc, backend.CachedOptions{Keys: testutil.CacheKeys, UserIDCodec: appIDCodec{},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	for _, id := range ids {
		r := &backend.Record{Data: []byte("d"), ExpireDate: now.Add(time.Hour), UserID: id, CreatedAt: now, UpdatedAt: now, LastActivity: now}
		if _, err := c.Create(ctx, r, clock.Now()); err != nil {
			t.Fatal(err)
		}
		before := c.Stats().Hits
		got, err := c.Load(ctx, r.Key, now)
		if err != nil {
			t.Fatal(err)
		}
		if c.Stats().Hits != before+1 {
			t.Fatalf("user ID %T(%v) was not served from the cache", id, id)
		}
		if got.UserID != id || reflect.TypeOf(got.UserID) != reflect.TypeOf(id) {
			t.Fatalf("user ID %T(%v) came back as %T(%v)", id, id, got.UserID, got.UserID)
		}
	}
	// Without the codec: appID is not cached, the database serves it, and
	// the failure is logged once.
	store2 := backend.NewMemStore()
	c2, err := backend.NewCachedDB(store2, backend.NewLocalCache(100), backend.CachedOptions{
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	r := &backend.Record{Data: []byte("d"), ExpireDate: now.Add(time.Hour), UserID: appID(5), CreatedAt: now, UpdatedAt: now, LastActivity: now}
	if _, err := c2.Create(ctx, r, clock.Now()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		got, err := c2.Load(ctx, r.Key, now)
		if err != nil || got.UserID != appID(5) {
			t.Fatalf("Load = %+v, %v", got, err)
		}
	}
	if s := c2.Stats(); s.Hits != 0 || s.Misses != 3 || s.Errors != 4 {
		t.Fatalf("stats without a codec: %+v; want 0 hits, 3 misses, 4 errors (create and 3 fills)", s)
	}
	if n := strings.Count(logs.String(), "set CachedOptions.UserIDCodec"); n != 1 {
		t.Fatalf("the unencodable user ID was logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestCachedForeignEntries: an entry CachedDB cannot read (corrupt, or of a
// newer format) is not trusted: the database answers and nothing is filled.
func TestCachedForeignEntries(t *testing.T) {
	t.Parallel()
	store := backend.NewMemStore()
	lc := backend.NewLocalCache(10)
	clock := testutil.NewClock()
	c, err := backend.NewCachedDB(store, lc, backend.CachedOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	r := &backend.Record{Data: []byte("d"), ExpireDate: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, LastActivity: now}
	if _, err := c.Create(ctx, r, clock.Now()); err != nil {
		t.Fatal(err)
	}
	ck := backend.DefaultCachePrefix + r.Key
	for _, v := range [][]byte{{0x01, 0x05, 'a'}, {0x7f, 1, 2, 3}, {}} {
		_ = lc.Set(ctx, ck, v, time.Minute)
		got, err := c.Load(ctx, r.Key, now)
		if err != nil || string(got.Data) != "d" {
			t.Fatalf("entry %x: Load = %+v, %v", v, got, err)
		}
		if cur, _, _ := lc.Get(ctx, ck); !bytes.Equal(cur, v) {
			t.Fatalf("entry %x was replaced by a fill: %x", v, cur)
		}
	}
	if s := c.Stats(); s.Hits != 0 || s.Misses != 3 || s.Errors != 1 {
		t.Fatalf("stats: %+v; want 3 misses and 1 error (the corrupt entry)", s)
	}
}

func TestNewCachedDBOptions(t *testing.T) {
	store, lc := backend.NewMemStore(), backend.NewLocalCache(1)
	bad := map[string]backend.CachedOptions{
		"prefix with a space":    {Prefix: "my app:"},
		"prefix too long":        {Prefix: strings.Repeat("p", 187)},
		"TTL under a second":     {TTL: 500 * time.Millisecond},
		"negative TTL":           {TTL: -time.Second},
		"negative MaxPurge":      {MaxPurge: -1},
		"negative LogInterval":   {LogInterval: -1},
		"negative PurgeInterval": {PurgeInterval: -1},
	}
	for name, o := range bad {
		if _, err := backend.NewCachedDB(store, lc, o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := backend.NewCachedDB(nil, lc, backend.CachedOptions{}); err == nil {
		t.Error("nil store: no error")
	}
	if _, err := backend.NewCachedDB(store, nil, backend.CachedOptions{}); err == nil {
		t.Error("nil cache: no error")
	}
	if _, err := backend.NewCachedDB(store, lc, backend.CachedOptions{Prefix: strings.Repeat("p", 186)}); err != nil {
		t.Errorf("a 186-byte prefix: %v", err)
	}
}

// TestCachedRememberMe: a 90-day session is cached for the configured TTL
// (5 minutes by default), and with a TTL over 30 days memcached still keeps
// it (the TTL is capped at 30 days instead of being read as a 1970 date).
func TestCachedRememberMe(t *testing.T) {
	addr := testutil.Memcached(t)
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		for _, ttl := range []time.Duration{0, 90 * 24 * time.Hour} {
			t.Run(fmt.Sprint("TTL=", ttl), func(t *testing.T) {
				mc, p := sharedMemcache(t)
				e := newEnv(t, db, kindMemcache, mc, backend.CachedOptions{TTL: ttl, Prefix: p})
				key := e.create(t, e.rec(e.newUser(t, "rm"), "UA", 90*24*time.Hour))
				want := min(max(ttl, backend.DefaultCacheTTL), backend.MaxMemcacheTTL)
				if exp := metaExpiry(t, addr, e.prefix+key); exp < int(want.Seconds())-2 || exp > int(want.Seconds()) {
					t.Fatalf("entry expires in %d s, want about %v", exp, want)
				}
				e.drv.Reset()
				sameRecord(t, "90-day session", e.mustLoad(t, key), e.fromDB(t, key))
				if n := e.drv.Count(); n != 1 {
					t.Fatalf("the 90-day session was not served from the cache (%d queries)", n)
				}
			})
		}
	})
}

// TestCachedSaveAfterHit: a save of a session the request loaded from the
// cache reads the entry and swaps its own in (one Get, one
// CompareAndSwap); when another save wrote the entry since, the cache then
// holds what the database holds, or a conflict marker the next load
// replaces; a revoke between the load and the save wins.
func TestCachedSaveAfterHit(t *testing.T) {
	eachBackend(t, cachedKinds, func(t *testing.T, e *env) {
		key := e.create(t, e.rec(e.newUser(t, "saver"), "UA", time.Hour))
		// next is the session's next version, a copy of the loaded Record.
		next := func(r *backend.Record, data string) *backend.Record {
			n := *r
			n.Data = []byte(data)
			n.UpdatedAt = e.clock.Now()
			n.LastActivity = n.UpdatedAt
			return &n
		}
		// cached reports the entry's data, read through the backend, and
		// whether that load was a hit.
		cached := func(what string) (string, bool) {
			t.Helper()
			e.drv.Reset()
			r := e.mustLoad(t, key)
			hit := e.drv.Count() == 0
			if db := e.fromDB(t, key); string(db.Data) != string(r.Data) {
				t.Fatalf("%s: the backend serves %q, the database holds %q", what, r.Data, db.Data)
			}
			return string(r.Data), hit
		}

		e.clock.Advance(time.Second)
		r := e.mustLoad(t, key)
		e.cache.reset()
		v2 := next(r, "v2")
		if err := e.b.Save(ctx, v2, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if g, c, n := e.cache.gets.Load(), e.cache.cass.Load(), e.cache.calls(); g != 1 || c != 1 || n != 2 {
			t.Fatalf("a save after a hit made %d gets, %d cas, %d cache calls; want 1, 1, 2", g, c, n)
		}
		if d, hit := cached("after the save"); d != "v2" || !hit {
			t.Fatalf("after the save the cache serves %q (hit %v), want v2 from the cache", d, hit)
		}

		// Two requests loaded the same entry and both save.
		for _, secondNewer := range []bool{true, false} {
			e.clock.Advance(time.Second)
			a, b := e.mustLoad(t, key), e.mustLoad(t, key)
			e.clock.Advance(time.Second)
			bv := next(b, "b") // b's version is stamped first ...
			e.clock.Advance(time.Second)
			av := next(a, "a") // ... a's later
			if secondNewer {
				bv.UpdatedAt = e.clock.Now().Add(time.Second)
			}
			if err := e.b.Save(ctx, av, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			e.cache.reset()
			if err := e.b.Save(ctx, bv, e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			d, hit := cached("after two saves of one entry")
			switch {
			case d != "b":
				t.Fatalf("the last UPDATE wrote b; the backend serves %q", d)
			case secondNewer && !hit:
				t.Fatalf("b is newer than the entry a wrote: b's entry should be cached, the load went to the database")
			case !secondNewer && hit:
				t.Fatalf("b is older than a's entry: a conflict marker should have sent the load to the database")
			}
		}

		// A revoke between the load and the save: the save fails (its row
		// is gone) and the cache keeps the tombstone.
		e.clock.Advance(time.Second)
		r = e.mustLoad(t, key)
		if n, err := e.b.Delete(ctx, key); err != nil || n != 1 {
			t.Fatalf("Delete: %d, %v", n, err)
		}
		if err := e.b.Save(ctx, next(r, "after the revoke"), e.clock.Now()); !errors.Is(err, backend.ErrSessionInterrupted) {
			t.Fatalf("a save after the revoke: %v, want ErrSessionInterrupted", err)
		}
		if !e.isTombstone(t, key) {
			t.Fatal("the tombstone is gone after a save of the revoked session")
		}
		e.gone(t, key, "after the revoke")
	})
}
