package qsessionsotel_test

import (
	"testing"
	"time"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/internal/testutil"
)

// TestMemcachedKilled: a memcached that dies shows up as cache errors,
// fallbacks, an open breaker, keys awaiting a purge, load spans with
// qsessions.cache.result error and cache error events on the spans of
// writes; the database serves throughout.
func TestMemcachedKilled(t *testing.T) {
	proc := testutil.StartMemcached(t)
	mc, err := backend.NewMemcache([]string{proc.Addr}, backend.MemcacheOptions{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	e := newEnv(t, testutil.Open(t, testutil.SQLite), "cached_db", mc)
	alice := e.user("alice")
	token := e.login(alice)
	e.request(token, nil)
	sp := e.span(e.takeSpans(), "qsessions.load")
	e.wantAttr(sp, "qsessions.cache.result", "hit")

	proc.Kill()
	// Loads until the breaker opens: each is served by the database.
	for range 10 {
		e.request(token, nil)
	}
	spans := e.takeSpans()
	var errs int
	for _, sp := range spans {
		if sp.Name() != "qsessions.load" {
			continue
		}
		e.wantAttr(sp, "qsessions.load.result", "found")
		e.wantAttr(sp, "qsessions.cache.result", "error")
		errs++
	}
	if errs != 10 {
		t.Fatalf("%d load spans with cache errors, want 10", errs)
	}
	// A revoke: its tombstone cannot be written, so the key goes on the
	// purge list; the span tells of the failed cache call.
	other := e.login(alice)
	e.takeSpans()
	if err := e.m.Revoke(e.ctx, alice, backend.PublicID(backend.KeyOf(other))); err != nil {
		t.Fatalf("Revoke with memcached down: %v", err)
	}
	sp = e.span(e.takeSpans(), "qsessions.revoke")
	var event bool
	for _, ev := range sp.Events() {
		if ev.Name == "qsessions.cache.error" {
			event = true
			for _, kv := range ev.Attributes {
				if kv.Key == "qsessions.cache.operation" && kv.Value.AsString() != "tombstone" {
					t.Errorf("cache error event of a revoke: %v", ev.Attributes)
				}
			}
		}
	}
	if !event {
		t.Errorf("revoke span has no qsessions.cache.error event: %v", sp.Events())
	}

	ms := e.metrics()
	k := map[string]string{"qsessions.backend": "cached_db"}
	e.atLeast(ms, "qsessions.cache.errors", k, 10)
	e.atLeast(ms, "qsessions.cache.fallbacks", k, 10)
	e.want(ms, "qsessions.cache.breaker.open", map[string]string{"server.address": "127.0.0.1", "server.port": portOf(proc.Addr)}, 1)
	e.atLeast(ms, "qsessions.cache.purge.pending", k, 1)
	e.want(ms, "qsessions.cache.distrusted", k, 0)
	e.atLeast(ms, "qsessions.loads", map[string]string{"qsessions.cache.result": "error", "qsessions.load.result": "found"}, 10)

	// Ping: the database answers, the cache is degraded.
	h, err := e.m.Ping(e.ctx)
	if err != nil || !h.Ready() {
		t.Fatalf("Ping with memcached down: %+v %v", h, err)
	}
	t.Logf("Ping through the wrapper: %+v", h)
}

func portOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[i+1:]
		}
	}
	return ""
}
