package backend_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/internal/testutil"
)

// sharedMemcache is a Memcache on the shared test server, and a key prefix
// of this test's own.
func sharedMemcache(t *testing.T) (*backend.Memcache, string) {
	t.Helper()
	addr := testutil.Memcached(t)
	mc, err := backend.NewMemcache([]string{addr}, backend.MemcacheOptions{Timeout: testutil.MemcacheTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	return mc, testutil.MemcachedPrefix(t)
}

// TestCacheContract runs the Cache semantics CachedDB relies on against
// both implementations.
func TestCacheContract(t *testing.T) {
	impls := map[string]func(t *testing.T) (backend.Cache, string){
		"memcache": func(t *testing.T) (backend.Cache, string) { return sharedMemcache(t) },
		"local": func(t *testing.T) (backend.Cache, string) {
			return backend.NewLocalCache(100), "p:"
		},
	}
	for name, mk := range impls {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, p := mk(t)
			ctx := context.Background()
			k := p + "k"
			if _, _, err := c.Get(ctx, k); !errors.Is(err, backend.ErrCacheMiss) {
				t.Fatalf("Get of a missing key: %v, want ErrCacheMiss", err)
			}
			if err := c.CompareAndSwap(ctx, k, []byte("x"), 1, time.Minute); !errors.Is(err, backend.ErrNotStored) {
				t.Fatalf("cas of a missing key: %v, want ErrNotStored", err)
			}
			if err := c.Add(ctx, k, []byte("v1"), time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := c.Add(ctx, k, []byte("v2"), time.Minute); !errors.Is(err, backend.ErrNotStored) {
				t.Fatalf("second Add: %v, want ErrNotStored", err)
			}
			v, cas1, err := c.Get(ctx, k)
			if err != nil || string(v) != "v1" {
				t.Fatalf("Get = %q, %v", v, err)
			}
			if err := c.CompareAndSwap(ctx, k, []byte("v3"), cas1, time.Minute); err != nil {
				t.Fatalf("cas with a fresh token: %v", err)
			}
			if err := c.CompareAndSwap(ctx, k, []byte("v4"), cas1, time.Minute); !errors.Is(err, backend.ErrCASConflict) {
				t.Fatalf("cas with a stale token: %v, want ErrCASConflict", err)
			}
			_, cas3, _ := c.Get(ctx, k)
			if err := c.Set(ctx, k, []byte("tomb"), time.Minute); err != nil {
				t.Fatal(err)
			}
			// The dangerous order in miniature: a Set between a Get and a
			// cas makes the cas fail.
			if err := c.CompareAndSwap(ctx, k, []byte("v5"), cas3, time.Minute); !errors.Is(err, backend.ErrCASConflict) {
				t.Fatalf("cas over a Set: %v, want ErrCASConflict", err)
			}
			if v, _, _ := c.Get(ctx, k); string(v) != "tomb" {
				t.Fatalf("value = %q, want tomb", v)
			}
			if err := c.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
			if err := c.Delete(ctx, k); err != nil {
				t.Fatalf("Delete of a missing key: %v", err)
			}
			if _, _, err := c.Get(ctx, k); !errors.Is(err, backend.ErrCacheMiss) {
				t.Fatalf("Get after Delete: %v", err)
			}
			if err := c.Set(ctx, k, []byte("x"), 0); !errors.Is(err, backend.ErrBadTTL) {
				t.Fatalf("Set with TTL 0: %v, want ErrBadTTL", err)
			}
			if err := c.Add(ctx, k, []byte("x"), -time.Second); !errors.Is(err, backend.ErrBadTTL) {
				t.Fatalf("Add with a negative TTL: %v, want ErrBadTTL", err)
			}
			for _, bad := range []string{p + "a b", p + "a\nb", p + strings.Repeat("x", 251)} {
				if err := c.Set(ctx, bad, []byte("x"), time.Minute); !errors.Is(err, backend.ErrBadCacheKey) {
					t.Fatalf("Set of key %q: %v, want ErrBadCacheKey", bad, err)
				}
			}
			// Values are copied: changing the caller's slice changes nothing.
			buf := []byte("abc")
			_ = c.Set(ctx, k, buf, time.Minute)
			buf[0] = 'X'
			if v, _, _ := c.Get(ctx, k); string(v) != "abc" {
				t.Fatalf("stored value changed with the caller's buffer: %q", v)
			}
		})
	}
}

// metaExpiry asks memcached (meta get with the t flag) for the remaining
// seconds of key; -1 means no expiry.
func metaExpiry(t *testing.T, addr, key string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "mg %s t\r\n", key)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "t"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("mg answer %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("mg answer has no TTL: %q", line)
	return 0
}

// TestMemcacheLongTTL: memcached reads an expiry over 30 days as an absolute
// Unix time; a 90-day TTL sent as is would be 1970 and the item would be
// gone at once. Memcache caps it at 30 days.
func TestMemcacheLongTTL(t *testing.T) {
	t.Parallel()
	mc, p := sharedMemcache(t)
	addr := testutil.Memcached(t)
	ctx := context.Background()
	cases := map[string]time.Duration{
		"90d":        90 * 24 * time.Hour,
		"30d":        backend.MaxMemcacheTTL,
		"30d+1s":     backend.MaxMemcacheTTL + time.Second,
		"10y":        10 * 365 * 24 * time.Hour,
		"sub-second": 10 * time.Millisecond,
	}
	for name, ttl := range cases {
		k := p + name
		for _, op := range []string{"set", "add", "cas"} {
			var err error
			switch op {
			case "set":
				err = mc.Set(ctx, k, []byte("v"), ttl)
			case "add":
				_ = mc.Delete(ctx, k)
				err = mc.Add(ctx, k, []byte("v"), ttl)
			case "cas":
				_, cas, gerr := mc.Get(ctx, k)
				if gerr != nil {
					t.Fatalf("%s: Get before cas: %v", name, gerr)
				}
				err = mc.CompareAndSwap(ctx, k, []byte("v"), cas, ttl)
			}
			if err != nil {
				t.Fatalf("%s %s: %v", op, name, err)
			}
			if v, _, err := mc.Get(ctx, k); err != nil || string(v) != "v" {
				t.Fatalf("%s with TTL %s: the entry is not retrievable: %q, %v", op, name, v, err)
			}
			exp := metaExpiry(t, addr, k)
			want := int(min(ttl, backend.MaxMemcacheTTL).Seconds())
			if ttl < time.Second {
				want = 1 // rounded up, never 0 (which would mean no expiry)
			}
			if exp < want-2 || exp > want {
				t.Fatalf("%s with TTL %s: memcached expiry in %d s, want about %d", op, name, exp, want)
			}
		}
	}
}

// TestMemcacheExpiry: a short TTL really expires (whole seconds, memcached's
// clock ticks once a second).
func TestMemcacheExpiry(t *testing.T) {
	t.Parallel()
	mc, p := sharedMemcache(t)
	ctx := context.Background()
	if err := mc.Set(ctx, p+"short", []byte("v"), time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, _, err := mc.Get(ctx, p+"short")
		if errors.Is(err, backend.ErrCacheMiss) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("an entry with a 1 s TTL is still there after 3 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestLocalCacheLRUAndTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := backend.NewLocalCache(3)
	for _, k := range []string{"a", "b", "c"} {
		_ = c.Set(ctx, k, []byte(k), time.Minute)
	}
	_, _, _ = c.Get(ctx, "a") // a is now the most recently used
	_ = c.Set(ctx, "d", []byte("d"), time.Minute)
	if c.Len() != 3 {
		t.Fatalf("Len = %d, want 3", c.Len())
	}
	if _, _, err := c.Get(ctx, "b"); !errors.Is(err, backend.ErrCacheMiss) {
		t.Fatalf("the least recently used entry was not evicted: %v", err)
	}
	for _, k := range []string{"a", "c", "d"} {
		if _, _, err := c.Get(ctx, k); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	_ = c.Set(ctx, "short", []byte("x"), 20*time.Millisecond)
	time.Sleep(40 * time.Millisecond)
	if _, _, err := c.Get(ctx, "short"); !errors.Is(err, backend.ErrCacheMiss) {
		t.Fatalf("expired entry: %v, want a miss", err)
	}
	if err := c.Add(ctx, "short", []byte("y"), time.Minute); err != nil {
		t.Fatalf("Add over an expired entry: %v", err)
	}
	if backend.NewLocalCache(0) == nil {
		t.Fatal("NewLocalCache(0) = nil")
	}
}

func TestNewMemcacheErrors(t *testing.T) {
	if _, err := backend.NewMemcache(nil, backend.MemcacheOptions{}); err == nil {
		t.Fatal("no servers: no error")
	}
	_, err := backend.NewMemcache([]string{"127.0.0.1:11211", "no-such-host.invalid:11211"}, backend.MemcacheOptions{})
	if err == nil || !strings.Contains(err.Error(), "no-such-host.invalid") {
		t.Fatalf("unresolvable server: %v, want an error naming it", err)
	}
}

// TestMemcacheBreaker: a killed server's calls fail fast once its breaker
// is open, and the server is used again after a restart and the cool-down.
func TestMemcacheBreaker(t *testing.T) {
	t.Parallel()
	proc := testutil.StartMemcached(t)
	mc, err := backend.NewMemcache([]string{proc.Addr}, backend.MemcacheOptions{
		Timeout: 100 * time.Millisecond,
		Breaker: backend.BreakerOptions{Failures: 2, CoolDown: 300 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	ctx := context.Background()
	if err := mc.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	proc.Kill()
	for i := range 2 {
		_, _, err := mc.Get(ctx, "k")
		if err == nil || errors.Is(err, backend.ErrCacheUnavailable) || errors.Is(err, backend.ErrCacheMiss) {
			t.Fatalf("call %d to a killed server: %v, want a connection error", i, err)
		}
	}
	if !mc.BreakerOpen("k") {
		t.Fatal("breaker not open after 2 failures")
	}
	start := time.Now()
	_, _, err = mc.Get(ctx, "k")
	if !errors.Is(err, backend.ErrCacheUnavailable) || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("call with the breaker open: %v after %v, want ErrCacheUnavailable at once", err, time.Since(start))
	}
	proc.Restart()
	time.Sleep(350 * time.Millisecond)
	if _, _, err := mc.Get(ctx, "k"); !errors.Is(err, backend.ErrCacheMiss) {
		t.Fatalf("probe after restart: %v, want a miss (a restarted server is empty)", err)
	}
	if mc.BreakerOpen("k") {
		t.Fatal("breaker still open after a successful probe")
	}

	// A stalled server (SIGSTOP): each call costs the Timeout, then the
	// breaker opens and calls cost nothing.
	proc.Stop()
	for range 2 {
		start := time.Now()
		_, _, err := mc.Get(ctx, "k")
		if d := time.Since(start); err == nil || d < 90*time.Millisecond || d > 600*time.Millisecond {
			t.Fatalf("call to a stopped server: %v after %v, want a timeout after about 100ms", err, d)
		}
	}
	if _, _, err := mc.Get(ctx, "k"); !errors.Is(err, backend.ErrCacheUnavailable) {
		t.Fatalf("after 2 timeouts: %v, want ErrCacheUnavailable", err)
	}
	proc.Cont()
	time.Sleep(350 * time.Millisecond)
	if _, _, err := mc.Get(ctx, "k"); err != nil && !errors.Is(err, backend.ErrCacheMiss) {
		t.Fatalf("after SIGCONT and the cool-down: %v", err)
	}
	// A value over the limit is refused without a round trip and without
	// counting against the breaker.
	if err := mc.Set(ctx, "big", bytes.Repeat([]byte("x"), backend.DefaultMemcacheMaxValueSize+1), time.Minute); !errors.Is(err, backend.ErrValueTooLarge) {
		t.Fatalf("oversized value: %v, want ErrValueTooLarge", err)
	}
}

// TestMemcachePool: several servers work as one cache; a killed one loses
// only its own keys and the others keep working.
func TestMemcachePool(t *testing.T) {
	t.Parallel()
	procs := []*testutil.MemcachedProc{testutil.StartMemcached(t), testutil.StartMemcached(t), testutil.StartMemcached(t)}
	addrs := []string{procs[0].Addr, procs[1].Addr, procs[2].Addr}
	mc, err := backend.NewMemcache(addrs, backend.MemcacheOptions{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	ctx := context.Background()
	const n = 300
	for i := range n {
		if err := mc.Set(ctx, fmt.Sprintf("k%d", i), []byte(strconv.Itoa(i)), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	// Which server holds each key, asked one server at a time.
	owner := map[string]int{}
	for s, a := range addrs {
		one, err := backend.NewMemcache([]string{a}, backend.MemcacheOptions{Timeout: testutil.MemcacheTimeout})
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for i := range n {
			k := fmt.Sprintf("k%d", i)
			if v, _, err := one.Get(ctx, k); err == nil {
				if string(v) != strconv.Itoa(i) {
					t.Fatalf("server %d: %s = %q", s, k, v)
				}
				owner[k] = s
				got++
			}
		}
		one.Close()
		if got == 0 {
			t.Fatalf("server %d holds none of %d keys", s, n)
		}
	}
	if len(owner) != n {
		t.Fatalf("%d of %d keys found on exactly one server", len(owner), n)
	}
	procs[1].Kill()
	failed := 0
	for i := range n {
		k := fmt.Sprintf("k%d", i)
		v, _, err := mc.Get(ctx, k)
		if owner[k] == 1 {
			if err == nil {
				t.Fatalf("%s answered from a killed server", k)
			}
			failed++
			continue
		}
		if err != nil || string(v) != strconv.Itoa(i) {
			t.Fatalf("%s on a live server: %q, %v", k, v, err)
		}
	}
	if failed == 0 {
		t.Fatal("no key was on the killed server")
	}
}

// A restarted server resets every pooled connection; the breaker's probe
// must not fail on one of them forever (found by the load test: with 32 idle
// connections and a 5 s cool-down the cache stayed off for minutes).
func TestMemcacheRecoversWithStalePool(t *testing.T) {
	p := testutil.StartMemcached(t)
	cool := 200 * time.Millisecond
	mc, err := backend.NewMemcache([]string{p.Addr}, backend.MemcacheOptions{
		Timeout: 200 * time.Millisecond, MaxIdleConns: 32,
		Breaker: backend.BreakerOptions{Failures: 3, CoolDown: cool},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	ctx := context.Background()
	// Fill the pool with idle connections.
	done := make(chan struct{})
	for range 32 {
		go func() {
			mc.Set(ctx, "stale:k", []byte("v"), time.Minute)
			done <- struct{}{}
		}()
	}
	for range 32 {
		<-done
	}
	p.Kill()
	for range 5 {
		mc.Get(ctx, "stale:k")
	}
	if !mc.BreakerOpen("stale:k") {
		t.Fatal("the breaker did not open on a dead server")
	}
	p.Restart()
	deadline := time.Now().Add(5 * cool)
	for {
		_, _, err := mc.Get(ctx, "stale:k")
		if errors.Is(err, backend.ErrCacheMiss) {
			return // the restarted server answers
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing %v after the restart: %v", 5*cool, err)
		}
		time.Sleep(cool / 4)
	}
}
