package backend_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/qsessions/qsessions/backend"
)

func TestTokens(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok, key, err := backend.NewToken(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !backend.ValidToken(tok) || len(tok) != backend.TokenLen {
			t.Fatalf("NewToken gave %q, which ValidToken refuses", tok)
		}
		if key != backend.KeyOf(tok) || !backend.ValidKey(key) || strings.Contains(key, tok) {
			t.Fatalf("key %q of %q", key, tok)
		}
		if seen[tok] {
			t.Fatal("repeated token")
		}
		seen[tok] = true
	}
	// A fixed source gives a fixed token: the source is really used.
	a, _, _ := backend.NewToken(bytes.NewReader(make([]byte, 32)))
	if a != strings.Repeat("A", 43) {
		t.Fatalf("zero bytes gave %q", a)
	}
	if _, _, err := backend.NewToken(bytes.NewReader(make([]byte, 5))); err == nil {
		t.Fatal("a short random source gave no error")
	}
}

func FuzzValidToken(f *testing.F) {
	tok, _, _ := backend.NewToken(nil)
	f.Add(tok)
	f.Add(tok[:42] + "B")
	f.Add("")
	f.Add(strings.Repeat("=", 43))
	f.Fuzz(func(t *testing.T, s string) {
		ok := backend.ValidToken(s)
		// The oracle: s is exactly the canonical encoding of 32 bytes. (The
		// decoder alone is no oracle: it skips newlines, which a fuzz run
		// found; the input is kept in testdata/fuzz.)
		b, err := base64.RawURLEncoding.Strict().DecodeString(s)
		want := err == nil && len(b) == 32 && base64.RawURLEncoding.EncodeToString(b) == s
		if ok != want {
			t.Fatalf("ValidToken(%q) = %v, want %v", s, ok, want)
		}
	})
}
