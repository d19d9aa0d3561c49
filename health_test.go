package qsessions_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/internal/testutil"
)

func TestPing(t *testing.T) {
	ctx := context.Background()
	eachEnv(t, func(t *testing.T, e *env) {
		h, err := e.m.Ping(ctx)
		if err != nil || !h.Ready() || h.Cache == "degraded" {
			t.Fatalf("Ping of a healthy store: %+v %v", h, err)
		}
		if _, err := e.db.SQL.ExecContext(ctx, "DROP TABLE qsessions_session"); err != nil {
			t.Fatal(err)
		}
		h, err = e.m.Ping(ctx)
		if h.Ready() || !errors.Is(err, backend.ErrNoTable) || !errors.Is(err, qsessions.ErrUnavailable) {
			t.Fatalf("Ping without the table: %+v %v", h, err)
		}
	})
}

// TestPingDegradedCache: a memcached that does not answer opens its
// breaker; the store is still ready, its cache degraded.
func TestPingDegradedCache(t *testing.T) {
	ctx := context.Background()
	db := testutil.Open(t, testutil.SQLite)
	e := newEnv(t, db, "db")
	mc, err := backend.NewMemcache([]string{"127.0.0.1:1"}, backend.MemcacheOptions{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c, err := backend.NewCachedDB(e.store, mc, backend.CachedOptions{Keys: testutil.CacheKeys})
	if err != nil {
		t.Fatal(err)
	}
	m := qsessions.New(c)
	if h, err := m.Ping(ctx); err != nil || h.Cache != "healthy" {
		t.Fatalf("before any failure: %+v %v", h, err)
	}
	for range 10 {
		_, _ = c.Load(ctx, backend.KeyOf("x"), time.Now())
	}
	h, err := m.Ping(ctx)
	if err != nil || !h.Ready() || h.Cache != "degraded" || len(h.OpenBreakers) != 1 || h.OpenBreakers[0] != "127.0.0.1:1" {
		t.Fatalf("with memcached down: %+v %v", h, err)
	}
}
