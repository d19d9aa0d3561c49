package django

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// Sentinel errors. Every error this package returns for bad data wraps one
// of them (test with errors.Is) and says what was wrong.
var (
	// ErrBadSignature: session_data is not signed by SECRET_KEY nor by any
	// fallback key (tampered, or the keys are wrong).
	ErrBadSignature = errors.New("django: bad session signature")
	// ErrPickle: a correctly signed session serialized with Django's
	// PickleSerializer. Pickle runs code when loaded, so it is never
	// decoded; switch Django to JSONSerializer and let users sign in again.
	ErrPickle = errors.New("django: session is pickle-serialized (refused; only JSONSerializer data is read)")
	// ErrMalformed: session_data that is not Django's format at all (bad
	// base64, zlib or JSON, not an object, too deep, too big), or a row
	// whose columns do not make sense.
	ErrMalformed = errors.New("django: malformed session data")
)

// DefaultStoreClass is the class name of Django's session stores (db,
// cached_db, and django-qsessions' stores all are "SessionStore"); it is
// part of the signing salt.
const DefaultStoreClass = "SessionStore"

// MaxDataSize bounds the decompressed JSON of one session (16 MiB), so a
// correctly signed but enormous value cannot exhaust memory.
const MaxDataSize = 16 << 20

// Format is how a session_data value was written.
type Format uint8

const (
	// FormatSigned is Django ≥ 3.1's format: signing.dumps with a
	// TimestampSigner (base64 JSON, "." first when zlib-compressed, then
	// ":" timestamp ":" signature).
	FormatSigned Format = iota + 1
	// FormatLegacy is the format before Django 3.1 (and of 3.1/3.2 with
	// DEFAULT_HASHING_ALGORITHM = "sha1"): base64 of "hexhmac:json".
	FormatLegacy
)

// String names the format.
func (f Format) String() string {
	switch f {
	case FormatSigned:
		return "signed"
	case FormatLegacy:
		return "legacy"
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// Data is one decoded session_data value.
type Data struct {
	// Values are the session's values: string, int64, float64, bool, nil,
	// []any and map[string]any, all of which qsessions' codec stores.
	Values map[string]any
	// Format and Algorithm ("sha256" or "sha1") say how it was signed.
	Format    Format
	Algorithm string
	// SignedAt is the signature's timestamp: when Django last saved the
	// session. Zero for FormatLegacy, which has none.
	SignedAt time.Time
	// KeyIndex says which key verified it: 0 for SECRET_KEY, i for the
	// i-th fallback key.
	KeyIndex int

	json []byte // the verified serializer output, for Mark
}

// derived holds one secret's HMAC keys, as salted_hmac derives them:
// H(key_salt + secret), and pools of keyed HMACs (keying one costs two
// hash blocks and allocations; a reset one is ready).
type derived struct {
	sha256Key, sha1Key []byte // signed format, key_salt = salt + "signer"
	legacyKey          []byte // legacy format (always SHA-1)
	sha256, sha1       macPool
	legacy             macPool
}

// macPool reuses HMACs of one key.
type macPool struct {
	pool sync.Pool
}

func newMacPool(h func() hash.Hash, key []byte) macPool {
	return macPool{pool: sync.Pool{New: func() any { return hmac.New(h, key) }}}
}

// sum appends the HMAC of msg to dst.
func (p *macPool) sum(dst []byte, msg string) []byte {
	h := p.pool.Get().(hash.Hash)
	io.WriteString(h, msg)
	dst = h.Sum(dst)
	h.Reset()
	p.pool.Put(h)
	return dst
}

// Signer verifies (and for Mark, writes) Django session_data for one
// SECRET_KEY and its fallback keys. It is safe for concurrent use; the
// per-key HMAC keys are derived once, in NewSigner.
type Signer struct {
	keys []*derived
}

// NewSigner returns a Signer for Django's SECRET_KEY and SECRET_KEY_FALLBACKS
// (tried in order after it), for the default store class "SessionStore".
// An empty key is an error. Cost: three hashes per key.
func NewSigner(secretKey string, fallbackKeys ...string) (*Signer, error) {
	return NewSignerFor(DefaultStoreClass, secretKey, fallbackKeys...)
}

// NewSignerFor is NewSigner for sessions written by a session store class
// of another name (Django salts the signature with the class name, e.g.
// "django.contrib.sessions.SessionStore"). Cost: three hashes per key.
func NewSignerFor(storeClass, secretKey string, fallbackKeys ...string) (*Signer, error) {
	if storeClass == "" {
		return nil, errors.New("django: empty session store class name")
	}
	salt := "django.contrib.sessions." + storeClass + "signer"
	legacySalt := "django.contrib.sessions" + storeClass
	s := &Signer{}
	for i, k := range append([]string{secretKey}, fallbackKeys...) {
		if k == "" {
			if i == 0 {
				return nil, errors.New("django: empty SECRET_KEY")
			}
			return nil, fmt.Errorf("django: fallback key %d is empty", i)
		}
		d := &derived{
			sha256Key: sum(sha256.New(), salt, k),
			sha1Key:   sum(sha1.New(), salt, k),
			legacyKey: sum(sha1.New(), legacySalt, k),
		}
		d.sha256 = newMacPool(sha256.New, d.sha256Key)
		d.sha1 = newMacPool(sha1.New, d.sha1Key)
		d.legacy = newMacPool(sha1.New, d.legacyKey)
		s.keys = append(s.keys, d)
	}
	return s, nil
}

func sum(h hash.Hash, salt, secret string) []byte {
	h.Write([]byte(salt))
	h.Write([]byte(secret))
	return h.Sum(nil)
}

// Decode verifies session_data against each key in turn, with a
// constant-time comparison, and decodes it. Both formats are read: signed
// (SHA-256 or SHA-1 signature, compressed or not) and legacy. Errors wrap
// ErrBadSignature, ErrPickle or ErrMalformed. Cost: one HMAC per key tried,
// a base64 decode, zlib when compressed, and one JSON pass.
func (s *Signer) Decode(sessionData string) (Data, error) {
	if strings.IndexByte(sessionData, ':') >= 0 {
		return s.decodeSigned(sessionData)
	}
	return s.decodeLegacy(sessionData)
}

func (s *Signer) decodeSigned(v string) (Data, error) {
	i := strings.LastIndexByte(v, ':')
	value, sig := v[:i], v[i+1:]
	j := strings.LastIndexByte(value, ':')
	if j < 0 {
		return Data{}, fmt.Errorf("%w: signed value has no timestamp", ErrMalformed)
	}
	var alg string
	switch len(sig) {
	case 43: // unpadded base64 of 32 bytes
		alg = "sha256"
	case 27: // unpadded base64 of 20 bytes
		alg = "sha1"
	default:
		return Data{}, fmt.Errorf("%w: signature of %d characters is neither SHA-256 nor SHA-1", ErrBadSignature, len(sig))
	}
	idx := -1
	var mac [sha256.Size]byte
	var want [43]byte
	for k, d := range s.keys {
		p := &d.sha256
		if alg == "sha1" {
			p = &d.sha1
		}
		base64.RawURLEncoding.Encode(want[:], p.sum(mac[:0], value))
		if subtle.ConstantTimeCompare(want[:len(sig)], []byte(sig)) == 1 {
			idx = k
			break
		}
	}
	if idx < 0 {
		return Data{}, fmt.Errorf("%w: %s signature matches none of %d key(s)", ErrBadSignature, alg, len(s.keys))
	}
	ts, ok := base62(value[j+1:])
	if !ok {
		return Data{}, fmt.Errorf("%w: bad timestamp %q", ErrMalformed, value[j+1:])
	}
	payload := value[:j]
	compressed := strings.HasPrefix(payload, ".")
	if compressed {
		payload = payload[1:]
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(payload, "="))
	if err != nil {
		return Data{}, fmt.Errorf("%w: base64: %v", ErrMalformed, err)
	}
	if compressed {
		if raw, err = inflate(raw); err != nil {
			return Data{}, err
		}
	}
	d, err := decodePayload(raw)
	if err != nil {
		return Data{}, err
	}
	d.Format, d.Algorithm, d.KeyIndex = FormatSigned, alg, idx
	d.SignedAt = time.Unix(ts, 0).UTC()
	return d, nil
}

func (s *Signer) decodeLegacy(v string) (Data, error) {
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return Data{}, fmt.Errorf("%w: neither the signed format (no ':') nor legacy base64: %v", ErrMalformed, err)
	}
	i := bytes.IndexByte(raw, ':')
	if i < 0 {
		return Data{}, fmt.Errorf("%w: legacy data has no ':' after its hash", ErrMalformed)
	}
	if i != 2*sha1.Size {
		return Data{}, fmt.Errorf("%w: legacy hash of %d characters, not 40", ErrBadSignature, i)
	}
	got, serialized := raw[:i], raw[i+1:]
	idx := -1
	var mac [sha1.Size]byte
	var want [2 * sha1.Size]byte
	for k, d := range s.keys {
		hex.Encode(want[:], d.legacy.sum(mac[:0], string(serialized)))
		if subtle.ConstantTimeCompare(want[:], got) == 1 {
			idx = k
			break
		}
	}
	if idx < 0 {
		return Data{}, fmt.Errorf("%w: legacy hash matches none of %d key(s)", ErrBadSignature, len(s.keys))
	}
	d, err := decodePayload(serialized)
	if err != nil {
		return Data{}, err
	}
	d.Format, d.Algorithm, d.KeyIndex = FormatLegacy, "sha1", idx
	return d, nil
}

// decodePayload reads verified serializer output.
func decodePayload(raw []byte) (Data, error) {
	if len(raw) > 0 && raw[0] == 0x80 { // pickle PROTO opcode (protocol ≥ 2)
		return Data{}, ErrPickle
	}
	m, err := parseJSON(latin1ToUTF8(raw))
	if err != nil {
		if len(raw) > 0 && (raw[0] == '(' || raw[0] == '}') { // pickle protocols 0 and 1
			return Data{}, ErrPickle
		}
		return Data{}, err
	}
	return Data{Values: m, json: raw}, nil
}

// zlibReaders reuses zlib readers: a new one allocates about 40 KB.
var zlibReaders sync.Pool

func inflate(b []byte) ([]byte, error) {
	br := bytes.NewReader(b)
	var zr io.ReadCloser
	var err error
	if v := zlibReaders.Get(); v != nil {
		zr = v.(io.ReadCloser)
		err = zr.(zlib.Resetter).Reset(br, nil)
	} else {
		zr, err = zlib.NewReader(br)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: zlib: %v", ErrMalformed, err)
	}
	defer zlibReaders.Put(zr)
	out := make([]byte, 0, min(4*len(b)+64, MaxDataSize+1))
	for {
		if len(out) == cap(out) {
			if len(out) > MaxDataSize {
				return nil, fmt.Errorf("%w: decompressed data over %d bytes", ErrMalformed, MaxDataSize)
			}
			out = slices.Grow(out, min(cap(out), MaxDataSize+1-len(out)))
		}
		n, err := zr.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: zlib: %v", ErrMalformed, err)
		}
	}
	if len(out) > MaxDataSize {
		return nil, fmt.Errorf("%w: decompressed data over %d bytes", ErrMalformed, MaxDataSize)
	}
	return out, nil
}

// base62 decodes django.utils.baseconv.base62 (0-9, A-Z, a-z).
func base62(s string) (int64, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		var d int64
		switch {
		case c >= '0' && c <= '9':
			d = int64(c - '0')
		case c >= 'A' && c <= 'Z':
			d = int64(c-'A') + 10
		case c >= 'a' && c <= 'z':
			d = int64(c-'a') + 36
		default:
			return 0, false
		}
		n = n*62 + d
	}
	if neg {
		n = -n
	}
	return n, s != ""
}

// encodeBase62 is base62's inverse for non-negative n.
func encodeBase62(n int64) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	if n == 0 {
		return "0"
	}
	var b [12]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = digits[n%62]
		n /= 62
	}
	return string(b[i:])
}

// sign writes json in format f with algorithm alg under SECRET_KEY (the
// first key), as Django's encode does: signed values are zlib-compressed
// when that saves space, with the timestamp now.
func (s *Signer) sign(js []byte, f Format, alg string, now time.Time) (string, error) {
	k := s.keys[0]
	if f == FormatLegacy {
		h := hmac.New(sha1.New, k.legacyKey)
		h.Write(js)
		raw := make([]byte, 0, 41+len(js))
		raw = hex.AppendEncode(raw, h.Sum(nil))
		raw = append(append(raw, ':'), js...)
		return base64.StdEncoding.EncodeToString(raw), nil
	}
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	zw.Write(js)
	if err := zw.Close(); err != nil {
		return "", err
	}
	payload := js
	prefix := ""
	if buf.Len() < len(js)-1 {
		payload, prefix = buf.Bytes(), "."
	}
	value := prefix + base64.RawURLEncoding.EncodeToString(payload) + ":" + encodeBase62(now.Unix())
	var h hash.Hash
	switch alg {
	case "sha256":
		h = hmac.New(sha256.New, k.sha256Key)
	case "sha1":
		h = hmac.New(sha1.New, k.sha1Key)
	default:
		return "", fmt.Errorf("django: unknown signing algorithm %q", alg)
	}
	h.Write([]byte(value))
	return value + ":" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)), nil
}
