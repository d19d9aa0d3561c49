package backend

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The short-lived credential of a device-bound session (DBSC): the bound
// cookie. Package dbsc mints it at registration and refresh; the session
// checks it on every request of a bound session, so the long-lived session
// cookie alone is worth nothing a few minutes after it was stolen.

// BoundSecretLen is the length of a binding's secret (Record.DeviceSecret).
const BoundSecretLen = 32

// DefaultBoundSkew is the clock skew a bound credential's expiry allows.
const DefaultBoundSkew = 5 * time.Second

// maxBoundLen bounds a bound cookie's value before it is parsed.
const maxBoundLen = 80

// Answers of VerifyBound; test with errors.Is.
var (
	// ErrNoBound: the request of a bound session carries no bound cookie.
	ErrNoBound = errors.New("qsessions: no bound credential")
	// ErrBoundInvalid: the bound cookie was not minted with the binding's
	// secret (forged, malformed, or of an earlier binding).
	ErrBoundInvalid = errors.New("qsessions: invalid bound credential")
	// ErrBoundExpired: the bound cookie's lifetime (plus the skew) ended.
	ErrBoundExpired = errors.New("qsessions: expired bound credential")
)

var boundB64 = base64.RawURLEncoding

// boundMAC is HMAC-SHA256 keyed with the binding's secret over a label and
// the cookie's "1.<expiry>" head.
func boundMAC(secret []byte, head string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("qsessions/dbsc/credential/v1\x00"))
	m.Write([]byte(head))
	return m.Sum(nil)
}

// MintBound returns a bound cookie value for the binding whose secret is
// secret, valid until expires: "1.<expiry Unix seconds>.<base64url
// HMAC-SHA256>", 56 to 60 characters. The secret is random per binding and
// stays with the row, so a rotation of the token (Login, CycleKey) keeps
// the credential valid. It errors if secret is not BoundSecretLen bytes.
// Cost: one HMAC-SHA256.
func MintBound(secret []byte, expires time.Time) (string, error) {
	if len(secret) != BoundSecretLen {
		return "", fmt.Errorf("qsessions: binding secret of %d bytes, want %d", len(secret), BoundSecretLen)
	}
	head := "1." + strconv.FormatInt(expires.Unix(), 10)
	return head + "." + boundB64.EncodeToString(boundMAC(secret, head)), nil
}

// VerifyBound checks a bound cookie value against the binding's secret at
// now: nil if it was minted with secret and expires no earlier than now
// minus skew; else ErrNoBound (empty), ErrBoundInvalid (malformed, another
// secret, or a secret not BoundSecretLen bytes) or ErrBoundExpired. One
// HMAC-SHA256 and a constant-time compare, no I/O (a few microseconds).
func VerifyBound(secret []byte, value string, now time.Time, skew time.Duration) error {
	if value == "" {
		return ErrNoBound
	}
	if len(secret) != BoundSecretLen || len(value) > maxBoundLen {
		return ErrBoundInvalid
	}
	i := strings.LastIndexByte(value, '.')
	if i < 3 || !strings.HasPrefix(value, "1.") {
		return ErrBoundInvalid
	}
	head, mac64 := value[:i], value[i+1:]
	exp, err := strconv.ParseInt(head[2:], 10, 64)
	if err != nil || exp < 0 || strconv.FormatInt(exp, 10) != head[2:] {
		return ErrBoundInvalid
	}
	if strings.ContainsAny(mac64, "\r\n") {
		// encoding/base64 skips CR and LF: a second encoding of one value.
		return ErrBoundInvalid
	}
	mac, err := boundB64.DecodeString(mac64)
	if err != nil || !hmac.Equal(mac, boundMAC(secret, head)) {
		return ErrBoundInvalid
	}
	if now.After(time.Unix(exp, 0).Add(skew)) {
		return ErrBoundExpired
	}
	return nil
}
