package backend

import (
	"testing"
	"time"
)

// BenchmarkCacheEntry is the CPU of a cache hit past the network: the
// MAC's check (with CachedOptions.Keys) and the record's decode, for the
// entry of a typical signed-in session (about 150 bytes of session data, a
// desktop browser's User-Agent), without and with keys. It reports the
// entry's size in memcached (the value; the item adds its key, the
// prefix and memcached's ~50-byte header). BenchmarkSessions in the root
// package has the whole hit through memcached, and bench/'s
// BenchmarkFloor/memcached/Get the bare get.
func BenchmarkCacheEntry(b *testing.B) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rec := &Record{
		Key:          "3f9a1c0e6b2d4f8a7e5c9b1d0a2f4e6c3f9a1c0e6b2d4f8a7e5c9b1d0a2f4e6c",
		Data:         make([]byte, 150),
		ExpireDate:   now.Add(14 * 24 * time.Hour),
		UserID:       int64(123456),
		UserAgent:    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		IP:           "192.0.2.7",
		CreatedAt:    now.Add(-time.Hour),
		UpdatedAt:    now.Add(-time.Minute),
		LastActivity: now.Add(-time.Minute),
	}
	ck := "qsessions:" + rec.Key
	key := make([]byte, MinKeyLen)
	for _, c := range []struct {
		name string
		keys [][]byte
	}{{"no_keys", nil}, {"keys", [][]byte{key}}} {
		m, err := newMacer(c.keys)
		if err != nil {
			b.Fatal(err)
		}
		enc, err := encodeRecord(rec, nil)
		if err != nil {
			b.Fatal(err)
		}
		val := m.seal(ck, enc)
		b.Run(c.name+"/Open", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := m.open(ck, val); !ok {
					b.Fatal("the entry does not verify")
				}
			}
			b.ReportMetric(float64(len(val)), "entry-bytes")
		})
		b.Run(c.name+"/OpenDecode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				body, ok := m.open(ck, val)
				if !ok {
					b.Fatal("the entry does not verify")
				}
				if _, err := decodeRecord(rec.Key, body[1:], nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(val)), "entry-bytes")
		})
		b.Run(c.name+"/Seal", func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, len(enc)+MACLen)
			for b.Loop() {
				_ = m.seal(ck, append(buf[:0], enc...))
			}
		})
	}
}
