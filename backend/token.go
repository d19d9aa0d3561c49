package backend

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
)

// TokenLen is the length of a cookie token: 32 random bytes (256 bits) in
// unpadded URL-safe base64.
const TokenLen = 43

// NewToken draws a token from r (crypto/rand.Reader when nil) and returns it
// with its key. Cost: 32 bytes of randomness and one SHA-256.
func NewToken(r io.Reader) (token, key string, err error) {
	if r == nil {
		r = rand.Reader
	}
	var b [32]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", "", fmt.Errorf("qsessions: drawing a session token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, KeyOf(token), nil
}

// KeyOf returns the stored key of a token: its lowercase hex SHA-256. The
// token itself is never stored, so a dump of the table opens no session.
func KeyOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ValidToken reports whether s has the shape NewToken gives: exactly
// TokenLen characters of canonical unpadded URL-safe base64 for 32 bytes
// (the last character carries 4 bits and 2 zero bits). A cookie of any
// other shape is no session, and costs no query. No allocation.
func ValidToken(s string) bool {
	if len(s) != TokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		v := b64val(s[i])
		if v < 0 || (i == TokenLen-1 && v&3 != 0) {
			return false
		}
	}
	return true
}

// b64val is the value of c in the URL-safe alphabet, or -1.
func b64val(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 26
	case c >= '0' && c <= '9':
		return int(c-'0') + 52
	case c == '-':
		return 62
	case c == '_':
		return 63
	}
	return -1
}

// ValidKey reports whether s is a stored key: 64 lowercase hex digits.
func ValidKey(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
