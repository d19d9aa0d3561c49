package backend_test

import (
	"context"
	"testing"
	"time"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/internal/testutil"
)

// TestCachedBindingNeverDropped: a save by a request that loaded the
// session before it was bound to a device must not cache it unbound (the
// bound cookie would stop being required).
func TestCachedBindingNeverDropped(t *testing.T) {
	ctx := context.Background()
	store := backend.NewMemStore()
	c, err := backend.NewCachedDB(store, backend.NewLocalCache(100), backend.CachedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	r := &backend.Record{Data: []byte("a"), UserID: 1, ExpireDate: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, LastActivity: now}
	if _, err := c.Create(ctx, r, now); err != nil {
		t.Fatal(err)
	}
	stale, err := c.Load(ctx, r.Key, now) // cached, unbound
	if err != nil || stale.Bound() {
		t.Fatalf("load: %+v %v", stale, err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	if err := c.Bind(ctx, r.Key, `{"kty":"EC"}`, secret, now); err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		for range 2 { // a miss that fills, then a hit
			got, err := c.Load(ctx, r.Key, now)
			if err != nil || !got.Bound() || string(got.DeviceSecret) != string(secret) {
				t.Fatalf("%s: %+v %v; want the binding", what, got, err)
			}
		}
	}
	check("after Bind")
	stale.Data, stale.UpdatedAt = []byte("b"), now.Add(time.Second)
	if err := c.Save(ctx, stale, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	check("after a save of the pre-binding load")
	if got, _ := c.Load(ctx, r.Key, now); string(got.Data) != "b" {
		t.Fatalf("the save's data is not served: %q", got.Data)
	}
	if st := c.Stats(); st.Hits == 0 {
		t.Fatalf("the cache never answered: %+v", st)
	}
}

// pausingCache holds the first Add until released.
type pausingCache struct {
	backend.Cache
	pause, release chan struct{}
	armed          bool
}

func (p *pausingCache) Add(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	if p.armed {
		p.armed = false
		close(p.pause)
		<-p.release
	}
	return p.Cache.Add(ctx, key, v, ttl)
}

// TestCachedBindRacesAFill: a load that read the row before the binding
// and fills the cache after it must not cache the unbound row.
func TestCachedBindRacesAFill(t *testing.T) {
	ctx := context.Background()
	store := backend.NewMemStore()
	now := time.Now()
	_, key, _ := backend.NewToken(nil)
	if err := store.Insert(ctx, &backend.Record{Key: key, UserID: 1, ExpireDate: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, LastActivity: now}); err != nil {
		t.Fatal(err)
	}
	pc := &pausingCache{Cache: backend.NewLocalCache(0), pause: make(chan struct{}), release: make(chan struct{}), armed: true}
	c, err := backend.NewCachedDB(store, pc, backend.CachedOptions{Keys: testutil.CacheKeys})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _, _ = c.Load(ctx, key, now) }()
	<-pc.pause // the load read the unbound row and is about to fill
	if err := c.Bind(ctx, key, `{"kty":"EC"}`, make([]byte, 32), now); err != nil {
		t.Fatal(err)
	}
	close(pc.release)
	<-done
	for range 2 {
		rec, err := c.Load(ctx, key, now)
		if err != nil || !rec.Bound() {
			t.Fatalf("after the racing fill: %+v %v; want the bound row", rec, err)
		}
	}
}
