package dbsc

import (
	"container/heap"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Challenge lifetimes.
const (
	// DefaultChallengeTTL is how long a refresh challenge stays valid: 60
	// s. The browser signs it at once (Chromium retries a 403 immediately),
	// so a minute covers slow TPMs and networks, while a proof signed by
	// malware on the device and carried elsewhere is useless a minute
	// later.
	DefaultChallengeTTL = 60 * time.Second
	// DefaultRegistrationTTL is how long a registration challenge stays
	// valid: 5 minutes. Registration runs in the background after sign-in
	// and starts with generating a key, which takes seconds on some TPMs;
	// the challenge is single-use and bound to a session that has just
	// signed in.
	DefaultRegistrationTTL = 5 * time.Minute
	// DefaultClockSkew is the slack allowed when checking expiry times of
	// challenges and bound credentials: 5 s, for app processes whose
	// clocks differ a little and requests in flight at the boundary.
	DefaultClockSkew = 5 * time.Second
)

// MinChallengeKeyLen is the shortest challenge key [Config.ChallengeKeys]
// accepts: 32 bytes (HMAC-SHA256's block of security).
const MinChallengeKeyLen = 32

// ReplayGuard remembers which challenges have been used, so each one is
// accepted once. Challenges themselves need no storage: they are signed
// (HMAC-SHA256 with [Config.ChallengeKeys]) and carry their purpose,
// expiry and a random nonce, and the MAC covers the session they were
// issued for, so any process holding the keys checks them without a
// lookup. Only challenges that were used are stored, and only until they
// expire (at most a challenge lifetime plus the clock skew), so the guard
// stays small, cleans itself, and a flood of unanswered challenges costs
// nothing.
//
// Apps with one process use [NewMemoryReplayGuard] (the default). Apps
// with several processes need a guard they all share, or a challenge used
// on one process could be replayed on another: [NewCacheReplayGuard] over
// their memcached servers (memcached's add fails if the key exists; the
// expiry is the TTL), or one of their own over Redis SET NX PX or an
// INSERT into a table with the id as primary key (a duplicate-key error
// means used; delete rows past their expiry in the cleanup). They must
// also share [Config.ChallengeKeys].
type ReplayGuard interface {
	// Use marks id as used until expires and reports whether it was
	// unused before. It must be atomic: of any number of concurrent calls
	// with one id, across all processes, at most one returns true. An
	// error means the guard could not tell; the handlers answer 500 (the
	// browser keeps its session and retries later) and accept nothing.
	// id is at most 32 bytes of base64url.
	Use(ctx context.Context, id string, expires time.Time) (bool, error)
}

// DefaultReplayGuardSize is the number of used challenges a
// [NewMemoryReplayGuard] of size 0 remembers at once: 100,000, about 10 MB.
// With 60-second challenges that is a sustained 1,600 refreshes per second
// per process.
const DefaultReplayGuardSize = 100_000

// ErrReplayGuardFull is returned by a [MemoryReplayGuard] that already holds
// its maximum of unexpired challenges. It refuses rather than forget one
// early (which would allow a replay); the handlers answer 500.
var ErrReplayGuardFull = errors.New("dbsc: replay guard full")

// MemoryReplayGuard is the in-process [ReplayGuard]: a map and a heap of
// expiry times, bounded to a maximum number of entries. It is for apps with
// a single process only (see ReplayGuard). Safe for concurrent use.
type MemoryReplayGuard struct {
	mu   sync.Mutex
	max  int
	now  func() time.Time
	used map[string]time.Time
	exp  expiryHeap
}

// NewMemoryReplayGuard returns an in-process guard that remembers at most
// max used challenges (0 means [DefaultReplayGuardSize]); each costs about
// 100 bytes. Expired entries are dropped as new ones arrive. now is its
// clock; nil means time.Now.
func NewMemoryReplayGuard(max int, now func() time.Time) *MemoryReplayGuard {
	if max <= 0 {
		max = DefaultReplayGuardSize
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryReplayGuard{max: max, now: now, used: make(map[string]time.Time)}
}

// Use implements [ReplayGuard]. Cost: O(log n) under a mutex, plus dropping
// the entries that expired since the last call.
func (g *MemoryReplayGuard) Use(_ context.Context, id string, expires time.Time) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for len(g.exp) > 0 && !g.exp[0].expires.After(now) {
		e := heap.Pop(&g.exp).(expiryEntry)
		if t, ok := g.used[e.id]; ok && t.Equal(e.expires) {
			delete(g.used, e.id)
		}
	}
	if t, ok := g.used[id]; ok && t.After(now) {
		return false, nil
	}
	if !expires.After(now) {
		// Already expired: the caller rejects it anyway; nothing to keep.
		return true, nil
	}
	if len(g.used) >= g.max {
		return false, ErrReplayGuardFull
	}
	g.used[id] = expires
	heap.Push(&g.exp, expiryEntry{id: id, expires: expires})
	return true, nil
}

// Len returns the number of used challenges the guard currently holds.
func (g *MemoryReplayGuard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.used)
}

type expiryEntry struct {
	id      string
	expires time.Time
}

type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// Challenge purposes, part of the MAC so a registration challenge never
// passes as a refresh challenge or the reverse.
const (
	purposeRegister byte = 'R'
	purposeRefresh  byte = 'F'
)

// Challenge layout: version(1) purpose(1) expiry(8, Unix seconds,
// big-endian) nonce(16) mac(16) = 42 bytes, 56 characters of base64url.
const (
	challengeVersion = 1
	challengeRawLen  = 42
	challengeLen     = 56
	nonceOff         = 10
	macOff           = 26
)

// challenger issues and checks challenges; see ReplayGuard for the design.
type challenger struct {
	keys  [][]byte
	skew  time.Duration
	now   func() time.Time
	guard ReplayGuard
}

// mac computes the truncated HMAC of a challenge's first 26 bytes and the
// subject (the session, and on refresh the binding, it is issued for).
func challengeMAC(key, head []byte, subject string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("qsessions/dbsc/challenge/v1\x00"))
	m.Write(head)
	m.Write([]byte(subject))
	return m.Sum(nil)[:16]
}

// issue returns a new challenge for purpose and subject, valid for ttl.
func (c *challenger) issue(purpose byte, subject string, ttl time.Duration) (string, error) {
	var raw [challengeRawLen]byte
	raw[0] = challengeVersion
	raw[1] = purpose
	binary.BigEndian.PutUint64(raw[2:10], uint64(c.now().Add(ttl).Unix()))
	if _, err := rand.Read(raw[nonceOff:macOff]); err != nil {
		return "", fmt.Errorf("dbsc: reading random bytes: %w", err)
	}
	copy(raw[macOff:], challengeMAC(c.keys[0], raw[:macOff], subject))
	return b64.EncodeToString(raw[:]), nil
}

// check verifies a challenge's MAC (with any key), purpose, subject and
// expiry, and returns its replay id and the time until which the guard must
// remember it. It does not consume it.
func (c *challenger) check(purpose byte, subject, ch string) (id string, until time.Time, err error) {
	if len(ch) != challengeLen {
		return "", time.Time{}, fmt.Errorf("%w: %d characters", ErrChallengeInvalid, len(ch))
	}
	raw, err := b64.DecodeString(ch)
	if err != nil || len(raw) != challengeRawLen || raw[0] != challengeVersion {
		return "", time.Time{}, fmt.Errorf("%w: not one of ours", ErrChallengeInvalid)
	}
	ok := false
	for _, k := range c.keys {
		if hmac.Equal(raw[macOff:], challengeMAC(k, raw[:macOff], subject)) {
			ok = true
			break
		}
	}
	if !ok {
		return "", time.Time{}, fmt.Errorf("%w: not issued for this session by this server", ErrChallengeInvalid)
	}
	if raw[1] != purpose {
		return "", time.Time{}, fmt.Errorf("%w: issued for another purpose", ErrChallengeInvalid)
	}
	exp := int64(binary.BigEndian.Uint64(raw[2:10]))
	if exp < 0 {
		return "", time.Time{}, fmt.Errorf("%w: bad expiry", ErrChallengeInvalid)
	}
	until = time.Unix(exp, 0).Add(c.skew)
	if c.now().After(until) {
		return "", time.Time{}, fmt.Errorf("%w: expired at %s", ErrChallengeExpired, time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	return b64.EncodeToString(raw[nonceOff:macOff]), until, nil
}

// consume marks a checked challenge used; ErrChallengeUsed if it was.
func (c *challenger) consume(ctx context.Context, id string, until time.Time) error {
	fresh, err := c.guard.Use(ctx, id, until)
	if err != nil {
		return fmt.Errorf("dbsc: replay guard: %w", err)
	}
	if !fresh {
		return ErrChallengeUsed
	}
	return nil
}
