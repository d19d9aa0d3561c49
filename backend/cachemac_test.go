package backend_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/internal/testutil"
)

// forgeEnv is a signed-in user's session cached in real memcached, and an
// attacker's raw client to the same server.
type forgeEnv struct {
	c       *backend.CachedDB
	prefix  string
	raw     *memcache.Client
	token   string // the victim's cookie
	key     string
	clock   *testutil.Clock
	logs    *bytes.Buffer
	manager *qsessions.Manager
}

func newForgeEnv(t *testing.T, opts backend.CachedOptions) *forgeEnv {
	t.Helper()
	addr := testutil.Memcached(t)
	db := testutil.Open(t, testutil.SQLite)
	clock := testutil.NewClock()
	client, store, _ := newClient(t, db, clock, true)
	mc, err := backend.NewMemcache([]string{addr}, backend.MemcacheOptions{Timeout: testutil.MemcacheTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	e := &forgeEnv{prefix: testutil.MemcachedPrefix(t), raw: memcache.New(addr), clock: clock, logs: &bytes.Buffer{}}
	opts.Prefix = e.prefix
	opts.Logger = slog.New(slog.NewTextHandler(e.logs, nil))
	if e.c, err = backend.NewCachedDB(store, mc, opts); err != nil {
		t.Fatal(err)
	}
	e.manager = qsessions.New(e.c)
	e.manager.Now = clock.Now
	admin := client.User.Create().SetUsername("admin").SetIsAdmin(true).SaveX(context.Background())
	s := e.manager.Start(context.Background(), "", "192.0.2.1", "victim")
	if err := s.Login(context.Background(), admin.ID); err != nil {
		t.Fatal(err)
	}
	commit, err := s.Save(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.token, e.key = commit.Token, backend.KeyOf(commit.Token)
	if _, err := e.c.Load(context.Background(), e.key, clock.Now()); err != nil { // cached
		t.Fatal(err)
	}
	return e
}

// copyEntry is the attack: read the victim's entry and store the same
// bytes under the key of a token the attacker made up.
func (e *forgeEnv) copyEntry(t *testing.T) (token string) {
	t.Helper()
	it, err := e.raw.Get(e.prefix + e.key)
	if err != nil {
		t.Fatalf("reading the victim's entry: %v", err)
	}
	token, key, err := backend.NewToken(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.raw.Set(&memcache.Item{Key: e.prefix + key, Value: it.Value, Expiration: 300}); err != nil {
		t.Fatal(err)
	}
	return token
}

func (e *forgeEnv) userOf(token string) any {
	return e.manager.Start(context.Background(), token, "198.51.100.9", "attacker").UserID()
}

func TestForgedCacheEntryGivesNoSession(t *testing.T) {
	e := newForgeEnv(t, backend.CachedOptions{Keys: testutil.CacheKeys})
	forged := e.copyEntry(t)
	before := e.c.Stats()
	if uid := e.userOf(forged); uid != nil {
		t.Fatalf("a copied cache entry under a made-up token signed the attacker in as user %v", uid)
	}
	st := e.c.Stats()
	if st.BadEntries != 1 || st.Hits != before.Hits {
		t.Fatalf("stats %+v; want 1 bad entry and no hit", st)
	}
	if !strings.Contains(e.logs.String(), "possible attack") {
		t.Errorf("no log line about the bad entry: %q", e.logs.String())
	}
	// The forged entry was not replaced by a fill: it stays bad.
	if it, err := e.raw.Get(e.prefix + backend.KeyOf(forged)); err != nil || len(it.Value) == 0 {
		t.Errorf("the forged entry was touched: %v", err)
	}
	// A second bad entry within the log interval is counted, not logged.
	lines := strings.Count(e.logs.String(), "possible attack")
	e.userOf(e.copyEntry(t))
	if n := strings.Count(e.logs.String(), "possible attack"); n != lines || e.c.Stats().BadEntries != 2 {
		t.Errorf("second bad entry: %d log lines (want %d), stats %+v", n, lines, e.c.Stats())
	}
	// The victim keeps their session, from the cache.
	if uid := e.userOf(e.token); uid == nil {
		t.Fatal("the victim lost their session")
	}
}

// TestTamperedEntryServedFromDatabase: flipping bytes of the victim's own
// entry (say, to another user ID) makes it a bad entry; the database
// answers with the truth.
func TestTamperedEntryServedFromDatabase(t *testing.T) {
	e := newForgeEnv(t, backend.CachedOptions{Keys: testutil.CacheKeys})
	it, err := e.raw.Get(e.prefix + e.key)
	if err != nil {
		t.Fatal(err)
	}
	it.Value[len(it.Value)/2] ^= 1
	if err := e.raw.Set(it); err != nil {
		t.Fatal(err)
	}
	before := e.c.Stats()
	rec, err := e.c.Load(context.Background(), e.key, e.clock.Now())
	if err != nil || rec.Key != e.key {
		t.Fatalf("Load of a tampered entry: %v", err)
	}
	if st := e.c.Stats(); st.BadEntries != before.BadEntries+1 || st.Hits != before.Hits {
		t.Fatalf("stats %+v after %+v; want one more bad entry, no hit", st, before)
	}
}

// TestUnauthenticatedCacheIsForgeable shows the attack the keys stop: a
// cache without keys (as Django's cached_db) serves the copied entry.
func TestUnauthenticatedCacheIsForgeable(t *testing.T) {
	e := newForgeEnv(t, backend.CachedOptions{UnauthenticatedCache: true})
	if uid := e.userOf(e.copyEntry(t)); uid == nil {
		t.Fatal("without keys the copied entry was not served: the attack test does not model the attack")
	}
}

func TestCacheKeyRotation(t *testing.T) {
	a := []byte("key A: thirty-two bytes or more...")
	b := []byte("key B: thirty-two bytes or more...")
	lc := backend.NewLocalCache(100)
	store := backend.NewMemStore()
	ctx := context.Background()
	now := time.Now()
	mk := func(keys ...[]byte) *backend.CachedDB {
		c, err := backend.NewCachedDB(store, lc, backend.CachedOptions{Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	r := &backend.Record{Data: []byte("x"), ExpireDate: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, LastActivity: now}
	if _, err := mk(a).Create(ctx, r, now); err != nil { // written (Add) under A
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		keys [][]byte
		hit  bool
	}{
		{"new key first, old key verifies", [][]byte{b, a}, true},
		{"old key dropped", [][]byte{b}, false},
	} {
		c := mk(tc.keys...)
		if _, err := c.Load(ctx, r.Key, now); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if st := c.Stats(); (st.Hits == 1) != tc.hit || (st.BadEntries == 1) == tc.hit {
			t.Errorf("%s: stats %+v, want hit=%v", tc.name, st, tc.hit)
		}
	}
}

func TestCacheKeysRequired(t *testing.T) {
	store := backend.NewMemStore()
	mc, err := backend.NewMemcache([]string{"127.0.0.1:1"}, backend.MemcacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	if _, err := backend.NewCachedDB(store, mc, backend.CachedOptions{}); !errors.Is(err, backend.ErrNoCacheKeys) ||
		!strings.Contains(err.Error(), "openssl rand -hex 32") {
		t.Errorf("memcache without keys: %v, want ErrNoCacheKeys saying how to make one", err)
	}
	if _, err := backend.NewCachedDB(store, mc, backend.CachedOptions{Keys: [][]byte{[]byte("short")}}); err == nil ||
		!strings.Contains(err.Error(), "Keys[0] has 5 bytes") {
		t.Errorf("a short key: %v", err)
	}
	if _, err := backend.NewCachedDB(store, mc, backend.CachedOptions{UnauthenticatedCache: true}); err != nil {
		t.Errorf("explicit opt-out: %v", err)
	}
	if _, err := backend.NewCachedDB(store, backend.NewLocalCache(10), backend.CachedOptions{}); err != nil {
		t.Errorf("the in-process cache needs no keys: %v", err)
	}
}

func TestParseCacheKeys(t *testing.T) {
	k1, k2 := strings.Repeat("ab", 32), strings.Repeat("0F", 40)
	keys, err := backend.ParseCacheKeys(" " + k1 + " , " + k2)
	if err != nil || len(keys) != 2 || len(keys[0]) != 32 || len(keys[1]) != 40 || keys[1][0] != 0x0f {
		t.Fatalf("ParseCacheKeys = %v, %v", keys, err)
	}
	if keys, err := backend.ParseCacheKeys(""); err != nil || keys != nil {
		t.Fatalf("empty: %v %v", keys, err)
	}
	for _, bad := range []string{"zz", strings.Repeat("ab", 31), k1 + ",", "secret-value-" + k1} {
		_, err := backend.ParseCacheKeys(bad)
		if err == nil || strings.Contains(err.Error(), "secret-value") {
			t.Errorf("ParseCacheKeys(%.12q...) = %v; want an error that does not echo the key", bad, err)
		}
	}
}
