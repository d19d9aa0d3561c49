package dbsc

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestChallenger(c *clock, keys ...[]byte) *challenger {
	if len(keys) == 0 {
		keys = [][]byte{[]byte(strings.Repeat("k", 32))}
	}
	return &challenger{keys: keys, skew: 5 * time.Second, now: c.now, guard: NewMemoryReplayGuard(10, c.now)}
}

func TestChallengeLifecycle(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	ch := newTestChallenger(c)
	tok, err := ch.issue(purposeRefresh, "session-a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != challengeLen || !printableASCII(tok) || strings.ContainsAny(tok, `"\;, `) {
		t.Fatalf("challenge %q is not a plain sf-string of %d characters", tok, challengeLen)
	}
	if _, _, err := ch.check(purposeRefresh, "session-b", tok); !errors.Is(err, ErrChallengeInvalid) {
		t.Errorf("other session: %v", err)
	}
	if _, _, err := ch.check(purposeRegister, "session-a", tok); !errors.Is(err, ErrChallengeInvalid) {
		t.Errorf("other purpose: %v", err)
	}
	// Clock skew: valid up to expiry + 5 s.
	c.advance(time.Minute + 4*time.Second)
	id, until, err := ch.check(purposeRefresh, "session-a", tok)
	if err != nil {
		t.Fatalf("4 s after expiry, within the skew: %v", err)
	}
	if err := ch.consume(context.Background(), id, until); err != nil {
		t.Fatal(err)
	}
	if err := ch.consume(context.Background(), id, until); !errors.Is(err, ErrChallengeUsed) {
		t.Errorf("second use: %v", err)
	}
	c.advance(2 * time.Second)
	if _, _, err := ch.check(purposeRefresh, "session-a", tok); !errors.Is(err, ErrChallengeExpired) {
		t.Errorf("6 s after expiry: %v", err)
	}
	// Tampering with any byte breaks the MAC (or the format).
	tok2, _ := ch.issue(purposeRegister, "s", time.Minute)
	for i := range tok2 {
		b := []byte(tok2)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		if _, _, err := ch.check(purposeRegister, "s", string(b)); !errors.Is(err, ErrChallengeInvalid) {
			t.Fatalf("byte %d changed: %v", i, err)
		}
	}
	for _, bad := range []string{"", "x", strings.Repeat("A", challengeLen), strings.Repeat("é", 28)} {
		if _, _, err := ch.check(purposeRegister, "s", bad); !errors.Is(err, ErrChallengeInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestChallengeKeyRotation(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	oldKey, newKey := []byte(strings.Repeat("o", 32)), []byte(strings.Repeat("n", 32))
	tok, _ := newTestChallenger(c, oldKey).issue(purposeRefresh, "s", time.Minute)
	if _, _, err := newTestChallenger(c, newKey, oldKey).check(purposeRefresh, "s", tok); err != nil {
		t.Errorf("old key still listed: %v", err)
	}
	if _, _, err := newTestChallenger(c, newKey).check(purposeRefresh, "s", tok); !errors.Is(err, ErrChallengeInvalid) {
		t.Errorf("old key dropped: %v", err)
	}
}

func TestMemoryReplayGuard(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	g := NewMemoryReplayGuard(3, c.now)
	ctx := context.Background()
	exp := c.now().Add(time.Minute)
	for _, id := range []string{"a", "b", "c"} {
		if ok, err := g.Use(ctx, id, exp); !ok || err != nil {
			t.Fatalf("Use(%s) = %v, %v", id, ok, err)
		}
	}
	if ok, err := g.Use(ctx, "a", exp); ok || err != nil {
		t.Fatalf("replay of a = %v, %v", ok, err)
	}
	// Full: refuses rather than forgets.
	if ok, err := g.Use(ctx, "d", exp); ok || !errors.Is(err, ErrReplayGuardFull) {
		t.Fatalf("full guard = %v, %v", ok, err)
	}
	// Expired entries are dropped, making room; a replay after expiry is
	// the challenge check's business (it is expired by then).
	c.advance(time.Minute + time.Second)
	if ok, err := g.Use(ctx, "d", c.now().Add(time.Minute)); !ok || err != nil {
		t.Fatalf("after expiry = %v, %v", ok, err)
	}
	if g.Len() != 1 {
		t.Fatalf("Len = %d, want 1", g.Len())
	}
	// Concurrent uses of one id: exactly one wins.
	g = NewMemoryReplayGuard(0, c.now)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, _ := g.Use(ctx, "same", c.now().Add(time.Minute)); ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent uses succeeded, want 1", wins.Load())
	}
}

func TestParseSFStringOrRaw(t *testing.T) {
	for in, want := range map[string]string{
		`abc.def-_`:           "abc.def-_",
		`"abc"`:               "abc",
		` "abc" `:             "abc",
		`"abc";p=1`:           "abc",
		`abc;p=1`:             "abc",
		`"a\"b\\c"`:           `a"b\c`,
		"eyJ.eyJ.sig":         "eyJ.eyJ.sig",
		`"eyJhbG.e30.c2ln" ;`: "eyJhbG.e30.c2ln",
	} {
		if got, err := parseSFStringOrRaw(in); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{``, ` `, `""`, `"abc`, `"abc"x`, `"a\b"`, `a b`, "a\tb", "caf\u00e9", `;x`, `"a b"`} {
		if got, err := parseSFStringOrRaw(in); err == nil {
			t.Errorf("%q accepted as %q", in, got)
		}
	}
}

func TestSingleHeader(t *testing.T) {
	h := http.Header{}
	if v, n, err := singleHeader(h, HeaderResponse, LegacyHeaderResponse); v != "" || n != "" || err != nil {
		t.Errorf("empty: %q %q %v", v, n, err)
	}
	h.Set(LegacyHeaderResponse, "old")
	if v, n, err := singleHeader(h, HeaderResponse, LegacyHeaderResponse); v != "old" || n != LegacyHeaderResponse || err != nil {
		t.Errorf("legacy: %q %q %v", v, n, err)
	}
	h.Set(HeaderResponse, "new")
	if v, n, err := singleHeader(h, HeaderResponse, LegacyHeaderResponse); v != "new" || n != HeaderResponse || err != nil {
		t.Errorf("both: %q %q %v", v, n, err)
	}
	h.Add(HeaderResponse, "again")
	if _, _, err := singleHeader(h, HeaderResponse, LegacyHeaderResponse); err == nil {
		t.Error("two values accepted")
	}
}

func TestSFString(t *testing.T) {
	if got := sfString(`a"b\c`); got != `"a\"b\\c"` {
		t.Errorf("sfString = %s", got)
	}
	if back, err := parseSFStringOrRaw(sfString(`a"b\c`)); err != nil || back != `a"b\c` {
		t.Errorf("round trip = %q %v", back, err)
	}
}
