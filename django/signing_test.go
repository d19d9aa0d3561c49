package django

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/django/djangotest"
)

// Golden session_data produced by real Django 3.2.25 (Debian's
// python3-django) with SECRET_KEY = goldenKey, so the format stays checked
// where Django is not installed. Made with:
//
//	settings.configure(SECRET_KEY="golden-secret-key", INSTALLED_APPS=["django.contrib.sessions"])
//	s = SessionStore()
//	s.encode(goldenTypical)                      # goldenSigned (compressed)
//	s.encode({"blob": "abc" * 200})              # goldenCompressed
//	with override_settings(DEFAULT_HASHING_ALGORITHM="sha1"):
//	    s.encode(goldenTypical)                  # goldenLegacy
//	    signing.dumps({"a": 1}, salt=s.key_salt, compress=True)  # goldenSHA1
//	with override_settings(SESSION_SERIALIZER="...PickleSerializer"):
//	    SessionStore().encode({"a": 1})          # goldenPickle
const (
	goldenKey        = "golden-secret-key"
	goldenSigned     = ".eJxVjssOwiAURP_lrglpKfTB0r1fYExzgYvFapsAdWP8d0vShW7nnJnMG0bc8jRuieIYHGiQAthvaNDOtBTi7rjcVm7XJcdgeFH4QRM_r44ep8P9G5gwTXt7sMK3pnYV9Sg706Cy0gmqfYWD6W3nWlJeYmOELdLge-xMa5WT1HiB9T5qMWbQl5qJK4M80ZPKK4zzzl4hhZxANwwi5rCCrrhQDBLRAjrHjT5f4I9Mqg:1xYGh4:oYyoTglLFvwXUVAN38JSUXtawNyllQXospZ4rlJfKw8"
	goldenCompressed = ".eJyrVkrKyU9SslJKTEoeRaOI6kipFgDy8-kK:1xYGh4:9vnX6kLCw9cWBDRHlD-eYclOrukoRGxuuzUoBjMR0vg"
	goldenLegacy     = "M2FkYWYwODI4Y2U0ZjdmYzIyOTJiZTVkMjY0Mzg4MGUzNjRiZWYyMzp7Il9hdXRoX3VzZXJfaWQiOiI0MiIsIl9hdXRoX3VzZXJfYmFja2VuZCI6ImRqYW5nby5jb250cmliLmF1dGguYmFja2VuZHMuTW9kZWxCYWNrZW5kIiwiX2F1dGhfdXNlcl9oYXNoIjoiOWMyZjZiMWQwZThhNDdiM2E1YzRkMmUxZjBhOWI4YzdkNmU1ZjRhM2IyYzFkMGU5ZjhhN2I2YzVkNGUzZjJhMSIsImNhcnQiOlsxLDJdLCJ0aGVtZSI6ImRhcmsiLCJ2aXNpdHMiOjMsInJhdGlvIjowLjI1LCJzZWVuIjp0cnVlfQ=="
	goldenSHA1       = "eyJhIjoxfQ:1xYGh4:Heylsblt54teoVoDuUkV4kaMgvE"
	goldenPickle     = "gAWVCgAAAAAAAAB9lIwBYZRLAXMu:1xYGh4:XCOxVvrTZENTrgBYh00KCXYLH_LfgxMExz0noOioc-I"
)

// goldenTypical is what goldenSigned and goldenLegacy hold.
var goldenTypical = map[string]any{
	"_auth_user_id":      "42",
	"_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
	"_auth_user_hash":    "9c2f6b1d0e8a47b3a5c4d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1",
	"cart":               []any{int64(1), int64(2)},
	"theme":              "dark",
	"visits":             int64(3),
	"ratio":              0.25,
	"seen":               true,
}

func goldenSigner(t testing.TB, fallbacks ...string) *Signer {
	t.Helper()
	s, err := NewSigner(goldenKey, fallbacks...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDecodeGolden(t *testing.T) {
	s := goldenSigner(t)
	for _, tc := range []struct {
		name, data string
		format     Format
		alg        string
		want       map[string]any
	}{
		{"signed", goldenSigned, FormatSigned, "sha256", goldenTypical},
		{"compressed", goldenCompressed, FormatSigned, "sha256", map[string]any{"blob": strings.Repeat("abc", 200)}},
		{"legacy", goldenLegacy, FormatLegacy, "sha1", goldenTypical},
		{"sha1", goldenSHA1, FormatSigned, "sha1", map[string]any{"a": int64(1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := s.Decode(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if d.Format != tc.format || d.Algorithm != tc.alg || d.KeyIndex != 0 {
				t.Fatalf("format %v %s key %d", d.Format, d.Algorithm, d.KeyIndex)
			}
			if diff := diffValues(d.Values, tc.want); diff != "" {
				t.Fatal(diff)
			}
			if tc.format == FormatSigned {
				// 1xYGh4 in base62, as django.utils.baseconv reads it.
				if want := time.Unix(1796103982, 0).UTC(); !d.SignedAt.Equal(want) {
					t.Fatalf("SignedAt = %v, want %v", d.SignedAt, want)
				}
			} else if !d.SignedAt.IsZero() {
				t.Fatal("legacy data has a SignedAt")
			}
			// As a fallback key it verifies too, and says so.
			fb, _ := NewSigner("another-key", "yet-another", goldenKey)
			if d, err := fb.Decode(tc.data); err != nil || d.KeyIndex != 2 {
				t.Fatalf("as the second fallback key: index %d, %v", d.KeyIndex, err)
			}
			// Under other keys, or another store class, it does not.
			other, _ := NewSigner("another-key")
			if _, err := other.Decode(tc.data); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("another key: %v, want ErrBadSignature", err)
			}
			cls, _ := NewSignerFor("OtherStore", goldenKey)
			if _, err := cls.Decode(tc.data); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("another store class: %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	s := goldenSigner(t)
	flip := func(v string, i int) string {
		c := byte('A')
		if v[i] == 'A' {
			c = 'B'
		}
		return v[:i] + string(c) + v[i+1:]
	}
	for _, tc := range []struct {
		name, data string
		want       error
	}{
		{"pickle", goldenPickle, ErrPickle},
		{"tampered payload", flip(goldenSigned, 20), ErrBadSignature},
		{"tampered timestamp", strings.Replace(goldenSigned, ":1xYGh4:", ":1xYGh5:", 1), ErrBadSignature},
		{"tampered signature", flip(goldenSigned, len(goldenSigned)-3), ErrBadSignature},
		{"compression flag dropped", goldenSigned[1:], ErrBadSignature},
		{"short signature", goldenSigned[:len(goldenSigned)-1], ErrBadSignature},
		{"tampered legacy", flip(goldenLegacy, 100), ErrBadSignature},
		{"legacy hash cut", base64.StdEncoding.EncodeToString([]byte("abc:{}")), ErrBadSignature},
		{"legacy without hash", base64.StdEncoding.EncodeToString([]byte("{}")), ErrMalformed},
		{"empty", "", ErrMalformed},
		{"not base64", "%%%", ErrMalformed},
		{"no timestamp", "eyJhIjoxfQ:Heylsblt54teoVoDuUkV4kaMgvE", ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Decode(tc.data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestSignedPayloads checks what follows a good signature, with payloads
// this package signs itself the way Django does (sign is checked against
// Django by the golden tests and TestMarkRealDjango).
func TestSignedPayloads(t *testing.T) {
	s := goldenSigner(t)
	now := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name, js string
		want     error
	}{
		{"list", `[1,2]`, ErrMalformed},
		{"string", `"x"`, ErrMalformed},
		{"trailing", `{"a":1} x`, ErrMalformed},
		{"pickle protocol 0", "(dp0\nS'a'\n", ErrPickle},
		{"pickle protocol 1", "}q\x00", ErrPickle},
		{"deep", strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), ErrMalformed},
		{"empty object", `{}`, nil},
		{"deepest", `{"a":` + strings.Repeat("[", MaxDepth-1) + "1" + strings.Repeat("]", MaxDepth-1) + `}`, nil},
		{"too deep", `{"a":` + strings.Repeat("[", MaxDepth) + "1" + strings.Repeat("]", MaxDepth) + `}`, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, alg := range []string{"sha256", "sha1"} {
				v, err := s.sign([]byte(tc.js), FormatSigned, alg, now)
				if err != nil {
					t.Fatal(err)
				}
				d, err := s.Decode(v)
				if tc.want == nil {
					if err != nil {
						t.Fatal(err)
					}
					enc, err := qsessions.EncodeData(d.Values, time.Time{}, qsessions.PersistDefault)
					if err != nil {
						t.Fatalf("the deepest value Decode accepts must encode: %v", err)
					}
					if _, err := qsessions.DecodeData(enc); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if !errors.Is(err, tc.want) {
					t.Fatalf("%s: Decode = %v, want %v", alg, err, tc.want)
				}
			}
		})
	}
	// A zlib bomb behind a good signature stops at MaxDataSize.
	big := `{"a":"` + strings.Repeat("x", MaxDataSize) + `"}`
	v, _ := s.sign([]byte(big), FormatSigned, "sha256", now)
	if !strings.HasPrefix(v, ".") {
		t.Fatal("not compressed")
	}
	if _, err := s.Decode(v); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "over") {
		t.Fatalf("oversized: %v", err)
	}
}

func TestNewSignerRefusesEmptyKeys(t *testing.T) {
	if _, err := NewSigner(""); err == nil {
		t.Fatal("empty SECRET_KEY accepted")
	}
	if _, err := NewSigner("k", "a", ""); err == nil || !strings.Contains(err.Error(), "fallback key 2") {
		t.Fatalf("empty fallback key: %v", err)
	}
	if _, err := NewSignerFor("", "k"); err == nil {
		t.Fatal("empty class accepted")
	}
}

func TestParseJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want any
	}{
		{`{"a":0}`, int64(0)},
		{`{"a":-0}`, int64(0)},
		{`{"a":9223372036854775807}`, int64(math.MaxInt64)},
		{`{"a":-9223372036854775808}`, int64(math.MinInt64)},
		{`{"a":9223372036854775808}`, 9223372036854775808.0},
		{`{"a":1180591620717411303424}`, 1180591620717411303424.0},
		{`{"a":1.0}`, 1.0},
		{`{"a":1e3}`, 1000.0},
		{`{"a":-1.5E-3}`, -0.0015},
		{`{"a":1e400}`, math.Inf(1)},
		{`{"a":-0.0}`, math.Copysign(0, -1)},
		{`{"a":NaN}`, math.NaN()},
		{`{"a":Infinity}`, math.Inf(1)},
		{`{"a":-Infinity}`, math.Inf(-1)},
		{`{"a":"\u00e9\ud83d\ude00\n\"\\\/"}`, "é😀\n\"\\/"},
		{`{"a":"\ud83d"}`, "\uFFFD"},
		{`{"a":"\ud83dx"}`, "\uFFFDx"},
		{`{"a":"\ude00\ud83d\ude00"}`, "\uFFFD😀"},
		{`{"a":"\ud83d\u0041"}`, "\uFFFDA"},
		{` { "a" : [ 1 , { } , [ ] , null , true , false ] } `, []any{int64(1), map[string]any{}, []any{}, nil, true, false}},
		{`{"a":1,"a":2}`, int64(2)},
	} {
		m, err := parseJSON([]byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if !djangotest.Same(m["a"], tc.want) {
			t.Fatalf("%s: got %#v, want %#v", tc.in, m["a"], tc.want)
		}
	}
	for _, in := range []string{
		``, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`,
		`{"a":+1}`, `{"a":-}`, `{"a":nan}`, `{"a":"x` + "\n" + `"}`, `{"a":"\x"}`, `{"a":"\u12"}`,
		`{"a":"abc`, `{"a":[1 2]}`, `{1:2}`, `{"a":tru}`, `[]`, `{"a":1}}`, `{"a":"\`,
	} {
		if _, err := parseJSON([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%q: %v, want ErrMalformed", in, err)
		}
	}
	// Django reads its bytes as latin-1.
	m, err := parseJSON(latin1ToUTF8([]byte("{\"a\":\"caf\xe9\"}")))
	if err != nil || m["a"] != "café" {
		t.Fatalf("latin-1: %v %v", m, err)
	}
}

// FuzzParseJSON checks the parser against encoding/json on what both read
// (Python's extensions aside) and that nothing panics.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5,"x",null,true,{"b":false}]}`, `{"\u00e9":"\ud83d\ude00"}`, `{"a":1e400}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		b = latin1ToUTF8(b) // as Decode feeds it: valid UTF-8
		got, err := parseJSON(b)
		var want map[string]any
		d := json.NewDecoder(strings.NewReader(string(b)))
		d.UseNumber()
		werr := d.Decode(&want)
		if werr == nil && strings.TrimLeft(string(b[d.InputOffset():]), " \t\r\n") != "" {
			werr = errors.New("extra data")
		}
		if werr == nil && want == nil {
			// encoding/json reads null into a map as a nil map; a session
			// is a JSON object, and parseJSON says so.
			werr = errors.New("null, not an object")
		}
		if werr == nil && err != nil && !strings.Contains(err.Error(), "nested deeper") {
			t.Fatalf("%q: encoding/json reads it, parseJSON says %v", b, err)
		}
		if err == nil && werr == nil {
			if msg := sameNumbers(got, want); msg != "" {
				t.Fatalf("%q: %s", b, msg)
			}
		}
	})
}

// sameNumbers compares a parseJSON result with encoding/json's UseNumber
// one, converting json.Number the way parseJSON does.
func sameNumbers(got any, want any) string {
	switch w := want.(type) {
	case json.Number:
		if n, err := w.Int64(); err == nil && !strings.ContainsAny(string(w), ".eE") {
			if got != n {
				return "int " + string(w)
			}
			return ""
		}
		f, _ := w.Float64()
		if g, ok := got.(float64); !ok || (g != f && !(math.IsInf(g, 0) && math.IsInf(f, 0))) {
			return "float " + string(w)
		}
		return ""
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return "object"
		}
		for k, v := range w {
			if msg := sameNumbers(g[k], v); msg != "" {
				return k + ": " + msg
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return "list"
		}
		for i := range w {
			if msg := sameNumbers(g[i], w[i]); msg != "" {
				return msg
			}
		}
		return ""
	}
	if !djangotest.Same(got, want) {
		return "value"
	}
	return ""
}

// FuzzDecode: any session_data gives a value or an error, never a panic;
// whatever decodes, qsessions stores.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{goldenSigned, goldenCompressed, goldenLegacy, goldenSHA1, goldenPickle, "", ":", "::", ".:0:x"} {
		f.Add(s)
	}
	s, _ := NewSigner(goldenKey)
	f.Fuzz(func(t *testing.T, data string) {
		d, err := s.Decode(data)
		if err != nil {
			if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrPickle) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if _, err := qsessions.EncodeData(d.Values, time.Time{}, qsessions.PersistDefault); err != nil {
			t.Fatalf("decoded values do not encode: %v", err)
		}
	})
}

// FuzzSignedJSON signs arbitrary payloads, so the fuzzer reaches the JSON
// reader behind the signature.
func FuzzSignedJSON(f *testing.F) {
	f.Add([]byte(`{"a":[1,{"b":"c"}]}`))
	s, _ := NewSigner(goldenKey)
	f.Fuzz(func(t *testing.T, js []byte) {
		v, err := s.sign(js, FormatSigned, "sha256", time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		d, err := s.Decode(v)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrPickle) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		enc, err := qsessions.EncodeData(d.Values, time.Time{}, qsessions.PersistDefault)
		if err != nil {
			t.Fatalf("decoded values do not encode: %v", err)
		}
		back, err := qsessions.DecodeData(enc)
		if err != nil {
			t.Fatal(err)
		}
		if msg := diffValues(back, d.Values); msg != "" {
			t.Fatalf("round trip: %s", msg)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	s := goldenSigner(b)
	for _, bc := range []struct{ name, data string }{{"signed", goldenSigned}, {"legacy", goldenLegacy}, {"small", goldenSHA1}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Decode(bc.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkConvert(b *testing.B) {
	s := goldenSigner(b)
	row := Row{SessionKey: "abcdefghijklmnopqrstuvwxyz012345", SessionData: goldenSigned, ExpireDate: time.Now().Add(time.Hour)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Convert(row, ConvertOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
