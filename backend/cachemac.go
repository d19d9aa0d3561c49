package backend

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
)

// Authenticated cache entries.
//
// With CachedOptions.Keys, every value CachedDB writes ends with a tag:
// the first MACLen bytes of HMAC-SHA256 under the first key over the cache
// key, a zero byte and the entry. A value whose tag no key verifies (forged
// by someone who can write to memcached, copied from another session's
// key, cut short) is a bad entry: never served, never filled over, counted
// in Stats().BadEntries and logged as a possible attack.

// MACLen is the length of an entry's tag: 128 bits of HMAC-SHA256, the
// truncation RFC 4868 uses.
const MACLen = 16

// MinKeyLen is the shortest key CachedOptions.Keys accepts: 32 bytes.
const MinKeyLen = 32

// ErrNoCacheKeys is NewCachedDB's answer for a network cache without
// CachedOptions.Keys.
var ErrNoCacheKeys = errors.New("qsessions: CachedOptions.Keys is empty: the entries of a shared cache must be authenticated, " +
	"or anyone who can write to memcached can become any user; set Keys to one or more random keys of at least 32 bytes " +
	"(e.g. from `openssl rand -hex 32`), the same in every process of the app, or set UnauthenticatedCache to accept the risk")

// macer seals and opens cache values with a list of keys: the first signs,
// every one verifies. The zero value (no keys) passes values through.
type macer struct {
	pools []*sync.Pool // one pool of *macState per key
}

// macState is a pooled HMAC state with the scratch space of one tag, so
// that a tag allocates nothing: the cache key and its separator are copied
// into buf (a string passed to Write through the hash.Hash interface would
// be converted on the heap) and the sum goes to sum.
type macState struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

func newMacer(keys [][]byte) (*macer, error) {
	m := &macer{}
	for i, k := range keys {
		if len(k) < MinKeyLen {
			return nil, fmt.Errorf("qsessions: CachedOptions.Keys[%d] has %d bytes; want at least %d random bytes", i, len(k), MinKeyLen)
		}
		k := append([]byte(nil), k...)
		m.pools = append(m.pools, &sync.Pool{New: func() any { return &macState{h: hmac.New(sha256.New, k)} }})
	}
	return m, nil
}

// on reports whether values are authenticated.
func (m *macer) on() bool { return len(m.pools) > 0 }

// tag appends the tag of body under cache key ck with key i to dst.
func (m *macer) tag(dst []byte, i int, ck string, body []byte) []byte {
	st := m.pools[i].Get().(*macState)
	st.h.Reset()
	st.buf = append(append(st.buf[:0], ck...), 0)
	st.h.Write(st.buf)
	st.h.Write(body)
	dst = append(dst, st.h.Sum(st.sum[:0])[:MACLen]...)
	m.pools[i].Put(st)
	return dst
}

// seal returns body with its tag under ck (body itself without keys). It
// may append to body.
func (m *macer) seal(ck string, body []byte) []byte {
	if !m.on() {
		return body
	}
	return m.tag(body, 0, ck, body)
}

// open returns the body of a value read under ck and whether its tag
// verifies under some key (always true without keys). Constant-time
// comparison; no allocation.
func (m *macer) open(ck string, val []byte) ([]byte, bool) {
	if !m.on() {
		return val, true
	}
	if len(val) < MACLen+1 {
		return nil, false
	}
	body, got := val[:len(val)-MACLen], val[len(val)-MACLen:]
	var buf [MACLen]byte
	for i := range m.pools {
		if hmac.Equal(m.tag(buf[:0], i, ck, body), got) {
			return body, true
		}
	}
	return nil, false
}

// CacheKeysEnv is the environment variable the demo and the CLI read
// CachedOptions.Keys from, by convention: comma-separated hex.
const CacheKeysEnv = "QSESSIONS_CACHE_KEYS"

// ParseCacheKeys parses comma-separated hex keys, as in CacheKeysEnv, for
// CachedOptions.Keys: each at least MinKeyLen bytes (64 hex digits);
// spaces around keys are ignored. "" gives no keys. The error names the bad
// key by position, never its value.
func ParseCacheKeys(s string) ([][]byte, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var keys [][]byte
	for i, part := range strings.Split(s, ",") {
		k, err := hex.DecodeString(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("qsessions: cache key %d is not hex", i+1)
		}
		if len(k) < MinKeyLen {
			return nil, fmt.Errorf("qsessions: cache key %d has %d bytes; want at least %d (64 hex digits, e.g. from `openssl rand -hex 32`)", i+1, len(k), MinKeyLen)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
