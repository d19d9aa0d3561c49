package dbsc_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dbsc"
	"github.com/qsessions/qsessions/dbsc/dbsctest"
	"github.com/qsessions/qsessions/internal/testutil"
)

// ttlCache records the TTLs of Adds and can fail them.
type ttlCache struct {
	backend.Cache
	mu   sync.Mutex
	keys []string
	ttls []time.Duration
	fail error
}

func (c *ttlCache) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c.mu.Lock()
	c.keys, c.ttls = append(c.keys, key), append(c.ttls, ttl)
	fail := c.fail
	c.mu.Unlock()
	if fail != nil {
		return fail
	}
	return c.Cache.Add(ctx, key, value, ttl)
}

func TestCacheReplayGuard(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	cache := &ttlCache{Cache: backend.NewLocalCache(0)}
	g, err := dbsc.NewCacheReplayGuard(cache, "", clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	exp := clock.Now().Add(65*time.Second + 300*time.Millisecond)
	if ok, err := g.Use(ctx, "AAAAAAAAAAAAAAAAAAAAAA", exp); !ok || err != nil {
		t.Fatalf("first use: %v %v", ok, err)
	}
	if ok, err := g.Use(ctx, "AAAAAAAAAAAAAAAAAAAAAA", exp); ok || err != nil {
		t.Fatalf("second use: %v %v", ok, err)
	}
	if ok, _ := g.Use(ctx, "BBBBBBBBBBBBBBBBBBBBBB", exp); !ok {
		t.Fatal("another id refused")
	}
	// The TTL covers the rest of the challenge's life, in whole seconds,
	// plus one: 65.3 s -> 67 s.
	if cache.keys[0] != dbsc.DefaultCacheGuardPrefix+"AAAAAAAAAAAAAAAAAAAAAA" || cache.ttls[0] != 67*time.Second {
		t.Errorf("Add(%q, ttl %v)", cache.keys[0], cache.ttls[0])
	}
	// An expired challenge needs no marker.
	n := len(cache.keys)
	if ok, err := g.Use(ctx, "CCCCCCCCCCCCCCCCCCCCCC", clock.Now().Add(-time.Second)); !ok || err != nil || len(cache.keys) != n {
		t.Errorf("expired: %v %v, %d adds", ok, err, len(cache.keys)-n)
	}
	// A cache that cannot answer is an error, never "unused".
	cache.fail = errors.New("connection refused")
	if ok, err := g.Use(ctx, "DDDDDDDDDDDDDDDDDDDDDD", exp); ok || err == nil {
		t.Errorf("failing cache: %v %v", ok, err)
	}
	for _, bad := range []string{"has space", "ctl\x01", strings.Repeat("p", 201)} {
		if _, err := dbsc.NewCacheReplayGuard(cache, bad, nil); err == nil {
			t.Errorf("prefix %q accepted", bad)
		}
	}
	if _, err := dbsc.NewCacheReplayGuard(nil, "", nil); err == nil {
		t.Error("nil cache accepted")
	}
}

// TestCacheReplayGuardFailureAnswers500: the handlers answer 500 (the
// browser keeps its session and retries) when the guard cannot tell.
func TestCacheReplayGuardFailureAnswers500(t *testing.T) {
	cache := &ttlCache{Cache: backend.NewLocalCache(0), fail: errors.New("down")}
	var g dbsc.ReplayGuard
	e := newEnv(t, func(c *dbsc.Config) {
		var err error
		if g, err = dbsc.NewCacheReplayGuard(cache, "p:", c.Now); err != nil {
			t.Fatal(err)
		}
		c.ReplayGuard = g
	})
	c := e.client(func(c *dbsctest.Client) { c.NoAutoRegister = true })
	e.login(c)
	u := mustURL(t, e.ts.URL)
	if err := c.Register(context.Background(), c.LastRegistration(), u); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("registration with the cache down: %v", err)
	}
}

// memcachedGuards returns n guards over n separate memcached clients (as n
// processes have) sharing one key prefix.
func memcachedGuards(t *testing.T, n int, now func() time.Time) []*dbsc.CacheReplayGuard {
	t.Helper()
	addr := testutil.Memcached(t)
	prefix := testutil.MemcachedPrefix(t)
	var out []*dbsc.CacheReplayGuard
	for range n {
		mc, err := backend.NewMemcache([]string{addr}, backend.MemcacheOptions{Timeout: testutil.MemcacheTimeout})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mc.Close() })
		g, err := dbsc.NewCacheReplayGuard(mc, prefix, now)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, g)
	}
	return out
}

// TestCacheReplayGuardMemcached: with a real memcached, of many concurrent
// uses of one challenge from several "processes", exactly one wins; the
// marker ends with its TTL.
func TestCacheReplayGuardMemcached(t *testing.T) {
	ctx := context.Background()
	guards := memcachedGuards(t, 4, nil)
	for round := range 20 {
		id := strings.Repeat(string(rune('a'+round)), 22)
		var wins atomic.Int64
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := guards[i%len(guards)].Use(ctx, id, time.Now().Add(time.Minute))
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d of 40 concurrent uses won, want 1", round, wins.Load())
		}
	}
	// A marker lives until the challenge expires (rounded up, plus a
	// second), then goes: memcached holds nothing for long.
	if ok, err := guards[0].Use(ctx, "short-lived-marker-id0", time.Now().Add(500*time.Millisecond)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, _ := guards[1].Use(ctx, "short-lived-marker-id0", time.Now().Add(500*time.Millisecond)); ok {
		t.Fatal("replayed at once on another process")
	}
	time.Sleep(3 * time.Second)
	if ok, err := guards[1].Use(ctx, "short-lived-marker-id0", time.Now().Add(time.Minute)); !ok || err != nil {
		t.Fatalf("the marker outlived its TTL: %v %v", ok, err)
	}
}

// TestSeveralProcessesMemcached: two servers (processes) sharing challenge
// keys and a memcached guard; a proof accepted by one is refused by the
// other, and a refresh proof replayed anywhere is refused.
func TestSeveralProcessesMemcached(t *testing.T) {
	keys := [][]byte{[]byte(strings.Repeat("k", 32))}
	clock := &fakeClock{t: time.Now()} // memcached's TTLs are real time
	guards := memcachedGuards(t, 2, clock.Now)
	store := dbsctest.NewMemStore()
	var servers []*httptest.Server
	for i := range 2 {
		srv, err := dbsc.New(dbsc.Config{Store: store, ChallengeKeys: keys, ReplayGuard: guards[i], Now: clock.Now, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewTLSServer(dbsctest.NewApp(srv, store))
		t.Cleanup(ts.Close)
		servers = append(servers, ts)
	}
	ctx := context.Background()
	c, _ := dbsctest.NewClient(servers[0].URL, servers[0].Client())
	c.Now, c.NoAutoRegister = clock.Now, true
	if code, _, err := c.Get(ctx, "/login"); err != nil || code != 200 {
		t.Fatal(code, err)
	}
	c1, _ := dbsctest.NewClient(servers[1].URL, servers[1].Client())
	c1.Now = clock.Now
	for n, v := range c.Cookies() {
		c1.SetCookie(n, v)
	}
	if err := c1.Register(ctx, c.LastRegistration(), mustURL(t, servers[1].URL)); err != nil {
		t.Fatalf("registration on process 1: %v", err)
	}
	if resp, _ := c.PostRegistration(ctx, "/dbsc/register", c1.LastProof()); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("registration proof replayed on process 0: %d", resp.StatusCode)
	}
	// A refresh on process 1, then its proof replayed on process 0.
	clock.Advance(dbsc.DefaultCredentialTTL + 6*time.Second)
	if err := c1.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	proof := c1.LastProof()
	r0, _ := dbsctest.NewClient(servers[0].URL, servers[0].Client())
	for n, v := range c1.Cookies() {
		r0.SetCookie(n, v)
	}
	resp, err := r0.PostRefresh(ctx, c1.Session().ID, proof)
	if err != nil || resp.StatusCode != http.StatusForbidden || resp.Header.Get(dbsc.HeaderChallenge) == "" {
		t.Fatalf("refresh proof replayed on process 0: %v %v", resp, err)
	}
}
