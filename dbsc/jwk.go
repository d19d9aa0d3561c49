package dbsc

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Algorithms of DBSC proofs this package verifies. The draft also defines
// "none" (a session without a key), which binds nothing and is refused.
const (
	// ES256 is ECDSA on P-256 with SHA-256, signatures as raw r||s (64
	// bytes). Chromium's software keys and Apple's Secure Enclave use it.
	ES256 = "ES256"
	// RS256 is RSASSA-PKCS1-v1_5 with SHA-256. Windows TPM keys may use it.
	RS256 = "RS256"
)

// Key size limits of RS256 device keys.
const (
	// MinRSABits is the smallest RSA modulus accepted: 2048 bits (what TPMs
	// generate; smaller keys are breakable).
	MinRSABits = 2048
	// MaxRSABits is the largest RSA modulus accepted: 4096 bits. It bounds
	// the stored key's size (see [MaxDeviceKeyLen]) and verification cost.
	MaxRSABits = 4096
)

// MaxDeviceKeyLen is the longest [DeviceKey.String] can be, in bytes: the
// canonical JWK of a 4096-bit RSA key is 714 bytes, of a P-256 key 126. A
// session column holding it needs 1024 characters (ASCII only).
const MaxDeviceKeyLen = 1024

// maxJWKBytes bounds a JWK before it is decoded.
const maxJWKBytes = 4096

// b64 is unpadded base64url, strict: canonical trailing bits and, unlike
// encoding/base64 even in Strict mode, no CR or LF skipped, so that a
// proof, a challenge or a key member has exactly one encoding.
var b64 = strictB64{base64.RawURLEncoding.Strict()}

type strictB64 struct{ *base64.Encoding }

func (e strictB64) DecodeString(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("dbsc: CR or LF in base64url")
	}
	return e.Encoding.DecodeString(s)
}

// DeviceKey is a device's public key: ECDSA P-256 (for ES256) or RSA of
// 2048 to 4096 bits (for RS256). Parse one with [ParseDeviceKey]; a
// DeviceKey is immutable and safe for concurrent use.
type DeviceKey struct {
	ec  *ecdsa.PublicKey
	rsa *rsa.PublicKey
	// canonical is the RFC 7638 JSON (required members only, sorted, no
	// white space): the stored form and the thumbprint's input.
	canonical string
	thumb     string
}

// ParseDeviceKey parses a public JWK (RFC 7517) in JSON: {"kty":"EC",
// "crv":"P-256","x","y"} or {"kty":"RSA","n","e"}. Other public members
// (kid, use, alg, ...) are ignored; private members (d, p, q, ...) are an
// error, as are duplicate member names, points not on the curve, other
// curves, RSA moduli outside [MinRSABits, MaxRSABits], non-minimal
// encodings and exponents that are even, below 3 or above 2^31-1. All errors
// wrap [ErrKey]. It parses the stored form ([DeviceKey.String]) too. Cost:
// a JSON decode, a point check for EC, one SHA-256.
func ParseDeviceKey(jwk []byte) (*DeviceKey, error) {
	if len(jwk) > maxJWKBytes {
		return nil, fmt.Errorf("%w: JWK longer than %d bytes", ErrKey, maxJWKBytes)
	}
	m, err := decodeObject(jwk)
	if err != nil {
		return nil, fmt.Errorf("%w: JWK: %v", ErrKey, err)
	}
	for _, priv := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
		if _, ok := m[priv]; ok {
			return nil, fmt.Errorf("%w: JWK has the private member %q", ErrKey, priv)
		}
	}
	kty, err := stringMember(m, "kty")
	if err != nil {
		return nil, fmt.Errorf("%w: JWK %v", ErrKey, err)
	}
	switch kty {
	case "EC":
		crv, err := stringMember(m, "crv")
		if err != nil {
			return nil, fmt.Errorf("%w: JWK %v", ErrKey, err)
		}
		if crv != "P-256" {
			return nil, fmt.Errorf("%w: EC key on curve %q, want P-256", ErrKey, crv)
		}
		x, err := b64Member(m, "x")
		if err != nil {
			return nil, fmt.Errorf("%w: JWK %v", ErrKey, err)
		}
		y, err := b64Member(m, "y")
		if err != nil {
			return nil, fmt.Errorf("%w: JWK %v", ErrKey, err)
		}
		if len(x) != 32 || len(y) != 32 {
			return nil, fmt.Errorf("%w: P-256 coordinates must be 32 bytes, got %d and %d", ErrKey, len(x), len(y))
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKey, err)
		}
		return newECKey(pub), nil
	case "RSA":
		n, err := b64Member(m, "n")
		if err != nil {
			return nil, fmt.Errorf("%w: JWK %v", ErrKey, err)
		}
		e, err := b64Member(m, "e")
		if err != nil {
			return nil, fmt.Errorf("%w: JWK %v", ErrKey, err)
		}
		if len(n) == 0 || n[0] == 0 || len(e) == 0 || e[0] == 0 {
			return nil, fmt.Errorf("%w: RSA n and e must be minimal big-endian integers", ErrKey)
		}
		bits := new(big.Int).SetBytes(n).BitLen()
		if bits < MinRSABits || bits > MaxRSABits {
			return nil, fmt.Errorf("%w: RSA key of %d bits, want %d to %d", ErrKey, bits, MinRSABits, MaxRSABits)
		}
		if len(e) > 4 {
			return nil, fmt.Errorf("%w: RSA exponent too large", ErrKey)
		}
		var ev int64
		for _, c := range e {
			ev = ev<<8 | int64(c)
		}
		if ev < 3 || ev&1 == 0 || ev > 1<<31-1 {
			return nil, fmt.Errorf("%w: RSA exponent %d must be odd, at least 3 and below 2^31", ErrKey, ev)
		}
		return newRSAKey(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev)}), nil
	default:
		return nil, fmt.Errorf("%w: JWK kty %q, want EC or RSA", ErrKey, kty)
	}
}

// NewDeviceKey wraps a Go public key (*ecdsa.PublicKey on P-256 or
// *rsa.PublicKey of 2048 to 4096 bits with a valid exponent) as a
// DeviceKey. It errors, wrapping [ErrKey], for any other key.
func NewDeviceKey(pub any) (*DeviceKey, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: ECDSA key not on P-256", ErrKey)
		}
		raw, err := k.Bytes()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKey, err)
		}
		// Round-trip through the parser so the point is validated.
		pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKey, err)
		}
		return newECKey(pk), nil
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return nil, fmt.Errorf("%w: nil RSA key", ErrKey)
		}
		if bits := k.N.BitLen(); bits < MinRSABits || bits > MaxRSABits {
			return nil, fmt.Errorf("%w: RSA key of %d bits, want %d to %d", ErrKey, bits, MinRSABits, MaxRSABits)
		}
		if k.E < 3 || k.E&1 == 0 || k.E > 1<<31-1 {
			return nil, fmt.Errorf("%w: RSA exponent %d", ErrKey, k.E)
		}
		return newRSAKey(&rsa.PublicKey{N: new(big.Int).Set(k.N), E: k.E}), nil
	default:
		return nil, fmt.Errorf("%w: unsupported key type %T", ErrKey, pub)
	}
}

func newECKey(pub *ecdsa.PublicKey) *DeviceKey {
	raw, _ := pub.Bytes() // validated by the caller: 0x04 || x || y
	canonical := `{"crv":"P-256","kty":"EC","x":"` + b64.EncodeToString(raw[1:33]) + `","y":"` + b64.EncodeToString(raw[33:65]) + `"}`
	return finishKey(&DeviceKey{ec: pub, canonical: canonical})
}

func newRSAKey(pub *rsa.PublicKey) *DeviceKey {
	e := big.NewInt(int64(pub.E)).Bytes()
	canonical := `{"e":"` + b64.EncodeToString(e) + `","kty":"RSA","n":"` + b64.EncodeToString(pub.N.Bytes()) + `"}`
	return finishKey(&DeviceKey{rsa: pub, canonical: canonical})
}

func finishKey(k *DeviceKey) *DeviceKey {
	sum := sha256.Sum256([]byte(k.canonical))
	k.thumb = b64.EncodeToString(sum[:])
	return k
}

// Algorithm returns the proof algorithm the key signs with: [ES256] for a
// P-256 key, [RS256] for an RSA key.
func (k *DeviceKey) Algorithm() string {
	if k.ec != nil {
		return ES256
	}
	return RS256
}

// Public returns the Go public key: *ecdsa.PublicKey or *rsa.PublicKey.
func (k *DeviceKey) Public() any {
	if k.ec != nil {
		return k.ec
	}
	return k.rsa
}

// String returns the key's stored form: its canonical JWK JSON as RFC 7638
// defines it for thumbprints (required members only, in lexicographic
// order, no white space), at most [MaxDeviceKeyLen] bytes of ASCII. Parse it
// back with [ParseDeviceKey].
func (k *DeviceKey) String() string { return k.canonical }

// Thumbprint returns the key's RFC 7638 JWK thumbprint (SHA-256), base64url
// without padding: 43 characters. It is the DBSC session_identifier of a
// binding, and what the draft's provider_key parameter names.
func (k *DeviceKey) Thumbprint() string { return k.thumb }

// Equal reports whether k and o are the same public key.
func (k *DeviceKey) Equal(o *DeviceKey) bool {
	return k != nil && o != nil && k.canonical == o.canonical
}

// MarshalJSON encodes the key as its canonical JWK object.
func (k *DeviceKey) MarshalJSON() ([]byte, error) { return []byte(k.canonical), nil }

// decodeObject decodes one JSON object into its members, rejecting
// duplicate member names (parsers that keep the first and those that keep
// the last one would disagree) and trailing data.
func decodeObject(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	m := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not JSON: %v", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("not JSON: member name is not a string")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("not JSON: %v", err)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("duplicate member %q", name)
		}
		m[name] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("data after the JSON object")
	}
	return m, nil
}

// stringMember returns the string member name of m; absent or not a string
// is an error.
func stringMember(m map[string]json.RawMessage, name string) (string, error) {
	raw, ok := m[name]
	if !ok {
		return "", fmt.Errorf("member %q missing", name)
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", fmt.Errorf("member %q is not a string", name)
	}
	return s, nil
}

// b64Member returns the bytes of the base64url (no padding) string member
// name of m.
func b64Member(m map[string]json.RawMessage, name string) ([]byte, error) {
	s, err := stringMember(m, name)
	if err != nil {
		return nil, err
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("member %q is not base64url without padding", name)
	}
	return b, nil
}
