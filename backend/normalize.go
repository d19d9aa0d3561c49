package backend

import (
	"net/netip"
	"strings"
	"unicode/utf8"
)

// MaxUserAgent is the most characters (runes) of a user agent that are stored.
const MaxUserAgent = 300

// NormalizeUserAgent returns ua as valid UTF-8 (each run of invalid bytes
// becomes U+FFFD, and so does NUL, which Postgres cannot store in text) cut
// on a character boundary to at most MaxUserAgent characters. Stores call it
// before every write, so all databases hold the same text.
func NormalizeUserAgent(ua string) string {
	if !utf8.ValidString(ua) {
		ua = strings.ToValidUTF8(ua, "\uFFFD")
	}
	if strings.IndexByte(ua, 0) >= 0 {
		ua = strings.ReplaceAll(ua, "\x00", "\uFFFD")
	}
	if len(ua) <= MaxUserAgent { // bytes >= runes: short strings are done
		return ua
	}
	n := 0
	for i := range ua {
		if n == MaxUserAgent {
			return ua[:i]
		}
		n++
	}
	return ua
}

// NormalizeIP returns ip in net/netip's canonical text, IPv4-mapped IPv6
// unmapped and any zone stripped ("::ffff:10.0.0.1" gives "10.0.0.1"). Text
// that is no address gives "".
func NormalizeIP(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	return a.Unmap().WithZone("").String()
}

// Truncate cuts s to at most n characters on a character boundary, for
// columns of a bounded length. Cost: one pass over s; no allocation when
// it fits.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, k := 0, 0
	for i = range s {
		if k == n {
			break
		}
		k++
	}
	return s[:i]
}
