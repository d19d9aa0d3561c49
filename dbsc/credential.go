package dbsc

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/qsessions/qsessions/backend"
)

// DefaultCredentialTTL is the lifetime of a bound cookie: 5 minutes. It is
// what a stolen cookie pair is worth: after it, only the device holding the
// private key can get a new bound cookie. Each lifetime of activity costs
// one refresh per session (two POSTs, one signature). Do not go much lower:
// Chromium refreshes proactively from 120 s before expiry and allows 6
// signatures per 9 minutes per site, so lifetimes under about 3 minutes
// make it skip refreshes, and the user looks signed out.
const DefaultCredentialTTL = 5 * time.Minute

// SecretLen is the length of a binding's credential secret: 32 random
// bytes (backend.BoundSecretLen, the size of the dbsc_secret column).
const SecretLen = backend.BoundSecretLen

// Binding is what the session row stores for a device-bound session: the
// device's public key and the secret that authenticates its bound cookies.
// qsessions keeps them in two nullable columns of qsessions_session
// (entschema.SessionMixin; backend.Record.DeviceKey and DeviceSecret):
//
//	dbsc_key     string, at most MaxDeviceKeyLen (1024) ASCII characters:
//	             Key.String(), the canonical JWK (P-256: 126 bytes,
//	             RSA-2048: 373, RSA-4096: 714)
//	dbsc_secret  bytes, exactly SecretLen (32)
//
// Both are NULL for a session that is not device-bound (the "device bound"
// mark of the pages is dbsc_key IS NOT NULL). Only Store.Bind writes them;
// saves keep them and rotations (Login, CycleKey) carry them to the new
// token. Rebuild a Binding from them with [ParseBinding].
type Binding struct {
	// Key is the device's public key; refresh proofs must verify with it.
	Key *DeviceKey
	// Secret keys the HMAC of the bound cookies ([MintCredential]). It is
	// fresh for every registration, so a new binding voids the cookies of
	// the old one.
	Secret []byte
}

// ID returns the binding's DBSC session identifier: the key's thumbprint
// ([DeviceKey.Thumbprint]).
func (b *Binding) ID() string { return b.Key.Thumbprint() }

// ParseBinding rebuilds a Binding from its two stored columns. It errors
// (wrapping [ErrKey] for the key) if key is not a valid device key or secret
// is not SecretLen bytes. Cost: a JSON decode and a SHA-256; the session
// layer may cache the result with the session.
func ParseBinding(key string, secret []byte) (*Binding, error) {
	k, err := ParseDeviceKey([]byte(key))
	if err != nil {
		return nil, err
	}
	if len(secret) != SecretLen {
		return nil, fmt.Errorf("dbsc: binding secret of %d bytes, want %d", len(secret), SecretLen)
	}
	return &Binding{Key: k, Secret: append([]byte(nil), secret...)}, nil
}

// newSecret returns SecretLen random bytes.
func newSecret() ([]byte, error) {
	s := make([]byte, SecretLen)
	if _, err := rand.Read(s); err != nil {
		return nil, fmt.Errorf("dbsc: reading random bytes: %w", err)
	}
	return s, nil
}

// MintCredential returns a bound cookie value for the binding whose secret
// is secret, valid until expires: "1.<expiry Unix seconds>.<base64url
// HMAC-SHA256>", 56 to 60 characters. It is [backend.MintBound]: the
// session checks the same format on every request of a bound session, so
// there is one implementation, in the core. The MAC does not cover the
// session token or key: the secret is random per binding and stays with
// the session row, so a credential is worth nothing for any other session,
// and rotating the session's token (Login, CycleKey) keeps it valid, as
// the row keeps its binding. It errors if secret is not SecretLen bytes.
// Cost: one HMAC-SHA256.
func MintCredential(secret []byte, expires time.Time) (string, error) {
	return backend.MintBound(secret, expires)
}

// VerifyCredential checks a bound cookie value against the binding's
// secret at time now: nil if it was minted with secret and expires no
// earlier than now minus skew. Otherwise [ErrNoCredential] (value empty),
// [ErrCredentialInvalid] (malformed, or another secret; also when secret is
// not SecretLen bytes) or [ErrCredentialExpired], which are the core's
// backend.ErrNoBound, ErrBoundInvalid and ErrBoundExpired. It is
// [backend.VerifyBound], the per-request check of a bound session that
// qsessions.Session makes when it loads one: one HMAC-SHA256 and a
// constant-time compare, no I/O (about 1 µs, 608 bytes in 10 allocations
// on a 2-core machine; BenchmarkVerifyCredential).
func VerifyCredential(secret []byte, value string, now time.Time, skew time.Duration) error {
	return backend.VerifyBound(secret, value, now, skew)
}
