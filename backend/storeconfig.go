package backend

import "time"

// StoreConfig holds the settings of a generated Store. Generated code builds
// it with NewStoreConfig; apps pass StoreOptions to NewSessionStore.
type StoreConfig struct {
	// Now is the clock the invalidation hooks use to tell live sessions from
	// expired ones. Default: time.Now in UTC. Tests pass a fake clock.
	Now func() time.Time
	// KeyBatch is how many keys the hooks read per query when a delete or
	// update through ent ends sessions. Default 1000: small enough for any
	// database's parameter limit, large enough to be few round trips.
	KeyBatch int
}

// StoreOption changes a StoreConfig.
type StoreOption func(*StoreConfig)

// WithClock makes the store's hooks read time from now.
func WithClock(now func() time.Time) StoreOption {
	return func(c *StoreConfig) { c.Now = now }
}

// WithKeyBatch sets how many keys a hook reads per query (at least 1).
func WithKeyBatch(n int) StoreOption {
	return func(c *StoreConfig) {
		if n > 0 {
			c.KeyBatch = n
		}
	}
}

// NewStoreConfig applies opts to the defaults.
func NewStoreConfig(opts ...StoreOption) StoreConfig {
	c := StoreConfig{Now: func() time.Time { return time.Now().UTC() }, KeyBatch: 1000}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Time returns t in UTC truncated to microseconds: the precision every
// supported database keeps, so a value read back equals the value written.
func Time(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
