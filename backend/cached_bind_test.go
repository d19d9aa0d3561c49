package backend_test

import (
	"context"
	"testing"
	"time"

	"github.com/qsessions/qsessions/backend"
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
