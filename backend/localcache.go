package backend

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// DefaultLocalCacheEntries is NewLocalCache's size when it is given 0: about
// 10 000 active sessions, a few MB for sessions of a few hundred bytes.
const DefaultLocalCacheEntries = 10000

// LocalCache is a Cache in this process's memory: at most maxEntries
// entries, least recently used evicted first, each with its TTL.
//
// It is for a single process only. Processes do not see each other's
// LocalCache, so with two app processes one of them keeps serving a session
// the other revoked, until the TTL ends. Run several processes with Memcache
// instead. The demo uses it as its embedded default.
//
// Every call takes one mutex and copies the value; nothing fails. Safe for
// concurrent use.
type LocalCache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List // front: most recently used
	items map[string]*list.Element
	cas   uint64
	now   func() time.Time
}

type localEntry struct {
	key     string
	value   []byte
	cas     uint64
	expires time.Time
}

var _ Cache = (*LocalCache)(nil)

// NewLocalCache returns an empty LocalCache holding at most maxEntries
// entries; 0 or less means DefaultLocalCacheEntries.
func NewLocalCache(maxEntries int) *LocalCache {
	if maxEntries <= 0 {
		maxEntries = DefaultLocalCacheEntries
	}
	return &LocalCache{max: maxEntries, ll: list.New(), items: map[string]*list.Element{}, now: time.Now}
}

// Len returns the number of entries, expired ones not yet dropped included.
func (c *LocalCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// live returns the unexpired entry of key, dropping an expired one. c.mu
// must be held.
func (c *LocalCache) live(key string, now time.Time) *list.Element {
	el, ok := c.items[key]
	if !ok {
		return nil
	}
	if !now.Before(el.Value.(*localEntry).expires) {
		c.ll.Remove(el)
		delete(c.items, key)
		return nil
	}
	return el
}

// put stores value under key, evicting the least recently used entries over
// the limit. c.mu must be held.
func (c *LocalCache) put(key string, value []byte, ttl time.Duration, now time.Time) {
	c.cas++
	e := &localEntry{key: key, value: append([]byte(nil), value...), cas: c.cas, expires: now.Add(ttl)}
	if el, ok := c.items[key]; ok {
		el.Value = e
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(e)
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*localEntry).key)
	}
}

func checkWrite(key string, ttl time.Duration) error {
	if !validCacheKey(key) {
		return ErrBadCacheKey
	}
	if ttl <= 0 {
		return ErrBadTTL
	}
	return nil
}

// Get implements Cache.
func (c *LocalCache) Get(_ context.Context, key string) ([]byte, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.live(key, c.now())
	if el == nil {
		return nil, 0, ErrCacheMiss
	}
	c.ll.MoveToFront(el)
	e := el.Value.(*localEntry)
	return append([]byte(nil), e.value...), e.cas, nil
}

// Add implements Cache.
func (c *LocalCache) Add(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkWrite(key, ttl); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.live(key, now) != nil {
		return ErrNotStored
	}
	c.put(key, value, ttl, now)
	return nil
}

// Set implements Cache.
func (c *LocalCache) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkWrite(key, ttl); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.put(key, value, ttl, c.now())
	return nil
}

// CompareAndSwap implements Cache.
func (c *LocalCache) CompareAndSwap(_ context.Context, key string, value []byte, cas uint64, ttl time.Duration) error {
	if err := checkWrite(key, ttl); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	el := c.live(key, now)
	if el == nil {
		return ErrNotStored
	}
	if el.Value.(*localEntry).cas != cas {
		return ErrCASConflict
	}
	c.put(key, value, ttl, now)
	return nil
}

// Delete implements Cache.
func (c *LocalCache) Delete(_ context.Context, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.ll.Remove(el)
		delete(c.items, key)
	}
	return nil
}
