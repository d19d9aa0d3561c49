package qsessions_test

import (
	"testing"
	"time"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/internal/testutil"
)

// The behaviour suite also runs against cached_db: on the shared memcached
// and on the in-process cache.
func init() {
	backendKinds = append(backendKinds, "cached_db/memcached", "cached_db/local")
	newBackend = func(t *testing.T, kind string, store backend.Store) backend.Backend {
		var cache backend.Cache
		switch kind {
		case "db":
			return backend.NewDB(store)
		case "cached_db/memcached":
			mc, err := backend.NewMemcache([]string{testutil.Memcached(t)}, backend.MemcacheOptions{Timeout: testutil.MemcacheTimeout})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { mc.Close() })
			cache = mc
		case "cached_db/local":
			cache = backend.NewLocalCache(0)
		}
		c, err := backend.NewCachedDB(store, cache, backend.CachedOptions{Prefix: testutil.MemcachedPrefix(t), TTL: time.Minute, Keys: testutil.CacheKeys})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}
