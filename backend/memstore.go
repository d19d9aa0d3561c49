package backend

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemStore is a Store in process memory, for tests and examples: the same
// semantics as the database stores, no persistence, one process only. User
// IDs are compared with ==. Safe for concurrent use; every call takes one
// mutex, and UserSessions and DeleteExpired scan all sessions.
type MemStore struct {
	mu   sync.Mutex
	rows map[string]*Record
	inv  Invalidators
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{rows: map[string]*Record{}} }

var _ Store = (*MemStore)(nil)

func memRecord(rec *Record) *Record {
	c := rec.Clone()
	c.UserAgent = NormalizeUserAgent(c.UserAgent)
	if c.IP != "" {
		c.IP = NormalizeIP(c.IP)
	}
	return c
}

// Get implements Store.
func (s *MemStore) Get(_ context.Context, key string, now time.Time) (*Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rows[key]
	if !ok || !r.ExpireDate.After(now) {
		return nil, ErrNotFound
	}
	return r.Clone(), nil
}

// Insert implements Store.
func (s *MemStore) Insert(_ context.Context, rec *Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rows[rec.Key]; ok {
		return ErrKeyExists
	}
	s.rows[rec.Key] = memRecord(rec)
	return nil
}

// Update implements Store.
func (s *MemStore) Update(_ context.Context, rec *Record, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.rows[rec.Key]
	if !ok || !old.ExpireDate.After(now) {
		return ErrSessionInterrupted
	}
	c := memRecord(rec)
	c.CreatedAt = old.CreatedAt
	c.DeviceKey, c.DeviceSecret = old.DeviceKey, old.DeviceSecret
	s.rows[rec.Key] = c
	return nil
}

// Bind implements Store.
func (s *MemStore) Bind(_ context.Context, key, deviceKey string, secret []byte, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.rows[key]
	if !ok || !old.ExpireDate.After(now) {
		return ErrNotFound
	}
	c := old.Clone()
	c.DeviceKey, c.DeviceSecret = deviceKey, append([]byte(nil), secret...)
	if deviceKey == "" {
		c.DeviceSecret = nil
	}
	s.rows[key] = c
	return nil
}

// Touch implements Store.
func (s *MemStore) Touch(_ context.Context, rec *Record, cutoff, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.rows[rec.Key]
	if !ok || !old.ExpireDate.After(now) || !old.LastActivity.Before(Time(cutoff)) {
		return false, nil
	}
	c := old.Clone()
	n := memRecord(rec)
	c.LastActivity, c.ExpireDate, c.UpdatedAt = n.LastActivity, n.ExpireDate, n.UpdatedAt
	c.IP, c.UserAgent = n.IP, n.UserAgent
	s.rows[rec.Key] = c
	return true, nil
}

// Rotate implements Store.
func (s *MemStore) Rotate(_ context.Context, oldKey string, rec *Record, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rows[rec.Key]; ok {
		return ErrKeyExists
	}
	old, ok := s.rows[oldKey]
	if !ok || !old.ExpireDate.After(now) {
		return ErrSessionInterrupted
	}
	delete(s.rows, oldKey)
	s.rows[rec.Key] = memRecord(rec)
	return nil
}

// Delete implements Store.
func (s *MemStore) Delete(_ context.Context, keys ...string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, k := range keys {
		if _, ok := s.rows[k]; ok {
			delete(s.rows, k)
			n++
		}
	}
	return n, nil
}

// DeleteExpired implements Store.
func (s *MemStore) DeleteExpired(_ context.Context, from, now time.Time, limit int) (int, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var batch []*Record
	for _, r := range s.rows {
		if !r.ExpireDate.After(now) && !r.ExpireDate.Before(from) {
			batch = append(batch, r)
		}
	}
	slices.SortFunc(batch, func(a, b *Record) int { return a.ExpireDate.Compare(b.ExpireDate) })
	batch = batch[:min(len(batch), limit)]
	var last time.Time
	for _, r := range batch {
		delete(s.rows, r.Key)
		last = r.ExpireDate
	}
	return len(batch), last, nil
}

// UserSessions implements Store.
func (s *MemStore) UserSessions(_ context.Context, userID any, now time.Time) ([]*Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Record
	for _, r := range s.rows {
		if r.UserID != nil && r.UserID == userID && r.ExpireDate.After(now) {
			out = append(out, r.Clone())
		}
	}
	SortByActivity(out)
	return out, nil
}

// ExcessKeys implements Store.
func (s *MemStore) ExcessKeys(ctx context.Context, userID any, now time.Time, keep int) ([]string, error) {
	rs, _ := s.UserSessions(ctx, userID, now)
	var keys []string
	for i := keep; i < len(rs); i++ {
		keys = append(keys, rs[i].Key)
	}
	return keys, nil
}

// Find implements Store.
func (s *MemStore) Find(_ context.Context, publicID string) ([]*Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Record
	for k, r := range s.rows {
		if len(publicID) == PublicIDLen && strings.HasPrefix(k, publicID) {
			out = append(out, r.Clone())
		}
	}
	return out, nil
}

// Check implements Store: a MemStore always has its table.
func (s *MemStore) Check(context.Context) error { return nil }

// AddInvalidator implements Store. MemStore has no writes outside the Store
// API, so only DeleteWhere calls the Invalidators.
func (s *MemStore) AddInvalidator(inv Invalidator) func() { return s.inv.Add(inv) }

// DeleteWhere deletes the sessions match selects, as an app's ent delete by
// predicate would, and reports the live ones among them (expiring after now)
// to the Invalidator. It returns how many rows went.
func (s *MemStore) DeleteWhere(ctx context.Context, now time.Time, match func(*Record) bool) int {
	s.mu.Lock()
	var live []string
	n := 0
	for k, r := range s.rows {
		if match(r) {
			if r.ExpireDate.After(now) {
				live = append(live, k)
			}
			delete(s.rows, k)
			n++
		}
	}
	s.mu.Unlock()
	s.inv.Invalidate(ctx, live)
	return n
}

// Len returns the number of stored rows, live or expired.
func (s *MemStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows)
}

// SortByActivity orders records newest last activity first, then by key, so
// listings are stable.
func SortByActivity(rs []*Record) {
	slices.SortFunc(rs, func(a, b *Record) int {
		if c := b.LastActivity.Compare(a.LastActivity); c != 0 {
			return c
		}
		if a.Key < b.Key {
			return -1
		}
		if a.Key > b.Key {
			return 1
		}
		return 0
	})
}
