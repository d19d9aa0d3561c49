package backend

// PublicIDLen is the length of a public session id: the first 16 hex digits
// (64 bits) of the stored key.
const PublicIDLen = 16

// PublicID returns the id pages, JSON, logs and the CLI show for the
// session stored under key: the key's first PublicIDLen hex digits. A
// public id is a prefix of the stored key, so a store finds its session
// with a range scan of the primary key (Store.Find), on every database.
//
// It reveals 64 bits of the stored key, which is itself the SHA-256 of the
// cookie token: neither gives the token (SHA-256 is not invertible), so a
// public id cannot be used as a cookie, and knowing one session's id tells
// nothing about another's. Cost: a substring, no allocation.
func PublicID(key string) string {
	if len(key) < PublicIDLen {
		return key
	}
	return key[:PublicIDLen]
}

// ParsePublicID returns s as a public id (lower case) and true, or "" and
// false when s is not PublicIDLen hex digits. Upper case is accepted, as
// people copy ids. Anything else names no session and costs no query.
func ParsePublicID(s string) (string, bool) {
	if len(s) != PublicIDLen {
		return "", false
	}
	var b [PublicIDLen]byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			c += 'a' - 'A'
		default:
			return "", false
		}
		b[i] = c
	}
	return string(b[:]), true
}

// PublicIDRange returns the smallest and largest stored keys that start
// with publicID, for a primary-key range scan: key BETWEEN lo AND hi.
func PublicIDRange(publicID string) (lo, hi string) {
	const zeros = "000000000000000000000000000000000000000000000000"
	const fs = "ffffffffffffffffffffffffffffffffffffffffffffffff"
	n := KeyLen - len(publicID)
	return publicID + zeros[:n], publicID + fs[:n]
}

// KeyLen is the length of a stored key: 64 lowercase hex digits.
const KeyLen = 64
