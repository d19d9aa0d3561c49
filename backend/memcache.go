package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// Defaults of MemcacheOptions.
const (
	// DefaultMemcacheTimeout bounds every network step of one cache call
	// (connect, write, read). memcached on the same host or LAN answers in
	// well under a millisecond; 100 ms leaves room for scheduling and GC
	// hiccups of a busy host, yet caps what a stalled server adds to a
	// request before it is served from the database. gomemcache's own
	// default is 500 ms, which a request with a dead cache would pay on
	// every call until the breaker opens.
	DefaultMemcacheTimeout = 100 * time.Millisecond
	// DefaultMemcacheMaxIdleConns is how many idle connections are kept per
	// server. It should be at least the process's peak number of concurrent
	// cache calls per server: every call beyond it dials a new TCP
	// connection and closes it afterwards (a round trip more, and sockets in
	// TIME_WAIT). gomemcache's default of 2 does that under any real
	// concurrency. An idle connection costs a file descriptor here and one
	// in memcached (its default limit is 1024 connections).
	DefaultMemcacheMaxIdleConns = 64
	// DefaultMemcacheMaxValueSize is the largest value Memcache sends: a bit
	// under memcached's default item size limit of 1 MiB (-I), which also
	// holds the key and the item header. Larger values fail with
	// ErrValueTooLarge without a round trip.
	DefaultMemcacheMaxValueSize = 1<<20 - 512
	// MaxMemcacheTTL is the longest TTL Memcache sends: memcached reads an
	// expiry of more than 30 days (2592000 s) as an absolute Unix time, so a
	// 90-day TTL sent as is would mean a moment in 1970 and the entry would
	// be gone at once. Longer TTLs are capped to this (never converted to an
	// absolute time, which would trust the server's clock).
	MaxMemcacheTTL = 30 * 24 * time.Hour
)

// MemcacheOptions configures NewMemcache. The zero value gives the defaults.
type MemcacheOptions struct {
	// Timeout bounds each network step of a call; 0 means
	// DefaultMemcacheTimeout. The context of a call is checked before it
	// starts but cannot cut a call short (gomemcache has no context).
	Timeout time.Duration
	// MaxIdleConns is the number of idle connections kept per server; 0
	// means DefaultMemcacheMaxIdleConns.
	MaxIdleConns int
	// MaxValueSize is the largest value sent; 0 means
	// DefaultMemcacheMaxValueSize. Raise it with memcached's -I.
	MaxValueSize int
	// Breaker configures the circuit breaker kept per server.
	Breaker BreakerOptions
	// DialContext, when set, opens connections (e.g. TLS to a memcached
	// started with --enable-ssl). Default: a net.Dialer with Timeout.
	DialContext func(ctx context.Context, network, address string) (net.Conn, error)
}

// Memcache is a Cache on one or several memcached servers, through
// github.com/bradfitz/gomemcache. Several servers work as one cache: each
// key lives on one server, chosen by a hash of the key over the server list
// (gomemcache's ServerList), so every process must list the same servers in
// the same order. A key whose server is down is not moved to another server:
// its calls fail (fast, once the breaker is open) and CachedDB serves it from
// the database.
//
// Each server has a circuit breaker: after Breaker.Failures consecutive
// failures its calls fail at once with ErrCacheUnavailable for
// Breaker.CoolDown, then one call probes it. Safe for concurrent use.
type Memcache struct {
	client   *memcache.Client
	servers  *memcache.ServerList
	breakers map[string]*breaker
	maxValue int
	now      func() time.Time
}

var _ Cache = (*Memcache)(nil)

// NewMemcache returns a Cache on servers ("host:port", or a unix socket
// path containing a '/'). Nothing is dialled yet; the names are resolved
// now, and an error names the one that does not resolve.
func NewMemcache(servers []string, opts MemcacheOptions) (*Memcache, error) {
	if len(servers) == 0 {
		return nil, errors.New("qsessions: NewMemcache needs at least one memcached server")
	}
	ss := new(memcache.ServerList)
	for _, s := range servers {
		if err := ss.SetServers(s); err != nil {
			return nil, fmt.Errorf("qsessions: memcached server %q: %w", s, err)
		}
	}
	if err := ss.SetServers(servers...); err != nil {
		return nil, fmt.Errorf("qsessions: memcached servers: %w", err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultMemcacheTimeout
	}
	if opts.MaxIdleConns <= 0 {
		opts.MaxIdleConns = DefaultMemcacheMaxIdleConns
	}
	if opts.MaxValueSize <= 0 {
		opts.MaxValueSize = DefaultMemcacheMaxValueSize
	}
	bo := opts.Breaker.withDefaults()
	c := memcache.NewFromSelector(ss)
	c.Timeout = opts.Timeout
	c.MaxIdleConns = opts.MaxIdleConns
	c.DialContext = opts.DialContext
	m := &Memcache{client: c, servers: ss, breakers: map[string]*breaker{}, maxValue: opts.MaxValueSize, now: time.Now}
	_ = ss.Each(func(a net.Addr) error {
		if m.breakers[a.String()] == nil {
			m.breakers[a.String()] = &breaker{opts: bo}
		}
		return nil
	})
	return m, nil
}

// Close closes the idle connections. The Memcache stays usable.
func (m *Memcache) Close() error { return m.client.Close() }

// BreakerOpen reports whether the breaker of the server that holds key is
// open, i.e. calls for key currently fail without a round trip.
func (m *Memcache) BreakerOpen(key string) bool {
	addr, err := m.servers.PickServer(key)
	if err != nil {
		return false
	}
	b := m.breakers[addr.String()]
	return b != nil && b.isOpen(m.now())
}

// Breakers reports, per server address, whether its breaker is open (calls
// to it fail at once without a round trip), for health checks and metrics.
// Cost: one map copy.
func (m *Memcache) Breakers() map[string]bool {
	out := make(map[string]bool, len(m.breakers))
	now := m.now()
	for addr, b := range m.breakers {
		out[addr] = b.isOpen(now)
	}
	return out
}

// expiration converts ttl to memcached's exptime: whole seconds rounded up
// (at least 1, as 0 would mean "never expires"), capped at MaxMemcacheTTL so
// memcached never reads it as an absolute Unix time.
func expiration(ttl time.Duration) (int32, error) {
	if ttl <= 0 {
		return 0, ErrBadTTL
	}
	if ttl > MaxMemcacheTTL {
		ttl = MaxMemcacheTTL
	}
	s := (ttl + time.Second - 1) / time.Second
	return int32(s), nil
}

// call runs f against the server of key, through that server's breaker, and
// translates gomemcache's answers to the Cache's.
func (m *Memcache) call(ctx context.Context, op, key string, f func() error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("qsessions: memcached %s: %w", op, err)
	}
	if !validCacheKey(key) {
		return ErrBadCacheKey
	}
	addr, err := m.servers.PickServer(key)
	if err != nil {
		return fmt.Errorf("qsessions: memcached %s: %w", op, err)
	}
	b := m.breakers[addr.String()]
	if !b.allow(m.now()) {
		return fmt.Errorf("memcached %s %s: %w", addr, op, ErrCacheUnavailable)
	}
	err = f()
	if b.done(m.now(), !serverFailure(err)) {
		// gomemcache can drop idle connections only for all servers at
		// once; a breaker opening is rare enough for that to be cheap.
		_ = m.client.Close()
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, memcache.ErrCacheMiss):
		if op == "cas" { // NOT_FOUND on cas: the entry is gone
			return ErrNotStored
		}
		return ErrCacheMiss
	case errors.Is(err, memcache.ErrNotStored):
		return ErrNotStored
	case errors.Is(err, memcache.ErrCASConflict):
		return ErrCASConflict
	case errors.Is(err, memcache.ErrMalformedKey):
		return ErrBadCacheKey
	}
	return fmt.Errorf("qsessions: memcached %s %s: %w", addr, op, err)
}

// serverFailure reports whether err means the server did not answer (so it
// counts against its breaker), as opposed to an answer such as a miss or a
// SERVER_ERROR line from a live server.
func serverFailure(err error) bool {
	if err == nil || errors.Is(err, memcache.ErrCacheMiss) || errors.Is(err, memcache.ErrNotStored) ||
		errors.Is(err, memcache.ErrCASConflict) || errors.Is(err, memcache.ErrMalformedKey) {
		return false
	}
	var cte *memcache.ConnectTimeoutError
	var ne net.Error
	if errors.As(err, &cte) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	// A reply line we do not understand (e.g. "SERVER_ERROR out of memory")
	// comes from a live server; anything else is a connection failure.
	return !strings.HasPrefix(err.Error(), "memcache: unexpected")
}

// Get implements Cache: one "gets" round trip to the key's server.
func (m *Memcache) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	var it *memcache.Item
	err := m.call(ctx, "get", key, func() error {
		var err error
		it, err = m.client.Get(key)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return it.Value, it.CasID, nil
}

func (m *Memcache) store(ctx context.Context, op, key string, value []byte, cas uint64, ttl time.Duration) error {
	exp, err := expiration(ttl)
	if err != nil {
		return err
	}
	if len(value) > m.maxValue {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrValueTooLarge, len(value), m.maxValue)
	}
	it := &memcache.Item{Key: key, Value: value, Expiration: exp, CasID: cas}
	return m.call(ctx, op, key, func() error {
		switch op {
		case "add":
			return m.client.Add(it)
		case "set":
			return m.client.Set(it)
		default:
			return m.client.CompareAndSwap(it)
		}
	})
}

// Add implements Cache: one "add" round trip.
func (m *Memcache) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return m.store(ctx, "add", key, value, 0, ttl)
}

// Set implements Cache: one "set" round trip.
func (m *Memcache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return m.store(ctx, "set", key, value, 0, ttl)
}

// CompareAndSwap implements Cache: one "cas" round trip.
func (m *Memcache) CompareAndSwap(ctx context.Context, key string, value []byte, cas uint64, ttl time.Duration) error {
	return m.store(ctx, "cas", key, value, cas, ttl)
}

// Delete implements Cache: one "delete" round trip; a missing key is nil.
func (m *Memcache) Delete(ctx context.Context, key string) error {
	err := m.call(ctx, "delete", key, func() error { return m.client.Delete(key) })
	if errors.Is(err, ErrCacheMiss) {
		return nil
	}
	return err
}
