package backend_test

// The Examples of this file are what docs/cached_db.md quotes
// (docs/docs_test.go checks that every Go block of the docs is compiled
// code). They use the module's reference schema (package ent), which has
// the same generated API as an app's own ent package.

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/ent"
)

// cached_db on a pool of memcached servers, its entries signed with the
// keys of QSESSIONS_CACHE_KEYS.
func ExampleNewCachedDB() {
	var client *ent.Client // the app's ent client

	keys, err := backend.ParseCacheKeys(os.Getenv(backend.CacheKeysEnv)) // QSESSIONS_CACHE_KEYS
	if err != nil {
		log.Fatal(err) // names the bad key by its position, never its value
	}
	mc, err := backend.NewMemcache([]string{"10.0.0.5:11211", "10.0.0.6:11211", "10.0.0.7:11211"},
		backend.MemcacheOptions{}) // 100 ms timeout, 64 idle connections per server, breaker 3 failures / 5 s
	if err != nil {
		log.Fatal(err)
	}
	defer mc.Close()
	b, err := backend.NewCachedDB(ent.NewSessionStore(client), mc, backend.CachedOptions{
		Keys:   keys,            // required for a network cache: every entry is signed
		Prefix: "myapp:sess:",   // default "qsessions:"
		TTL:    5 * time.Minute, // the default: the staleness bound, see below
		Logger: slog.Default(),
	})
	if err != nil {
		log.Fatal(err) // backend.ErrNoCacheKeys when keys is empty
	}
	defer b.Close()
	m := qsessions.New(b)
	_ = m
}

// The in-process cache: one process only, and no keys needed, since
// nothing outside the process can write to it.
func ExampleNewLocalCache() {
	dir, err := os.MkdirTemp("", "qsessions-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	client, err := ent.Open("sqlite3", "file:"+filepath.Join(dir, "app.db")+"?_fk=1")
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	if err := client.Schema.Create(ctx); err != nil {
		log.Fatal(err)
	}

	b, err := backend.NewCachedDB(ent.NewSessionStore(client), backend.NewLocalCache(0), backend.CachedOptions{})
	if err != nil {
		log.Fatal(err)
	}
	m := qsessions.New(b)

	s := m.Start(ctx, "", "203.0.113.7", "curl/8.4.0")
	if err := s.Set("theme", "dark"); err != nil {
		log.Fatal(err)
	}
	c, err := s.Save(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for range 3 {
		m.Start(ctx, c.Token, "203.0.113.7", "curl/8.4.0").GetString("theme")
	}

	st := b.Stats()
	slog.Info("session cache", "hits", st.Hits, "misses", st.Misses, "errors", st.Errors,
		"bad_entries", st.BadEntries, "purge_pending", st.PurgePending, "distrusted", st.Distrusted)
	fmt.Println("hits:", st.Hits, "misses:", st.Misses)
	// Output: hits: 3 misses: 0
}
