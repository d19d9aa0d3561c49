package dbsc

import (
	"errors"
	"net/http"
	"strings"
)

// HTTP header names of the draft (commit d346811) and of Chrome's first
// origin trial (the Legacy names).
const (
	// HeaderRegistration is the response header that asks the browser to
	// register: a structured-field list of inner lists of algorithms with
	// "path" and "challenge" parameters.
	HeaderRegistration = "Secure-Session-Registration"
	// HeaderChallenge is the response header carrying a challenge for a
	// session: an sf-string with an "id" parameter.
	HeaderChallenge = "Secure-Session-Challenge"
	// HeaderResponse is the request header carrying the signed proof (JWT).
	HeaderResponse = "Secure-Session-Response"
	// HeaderSessionID is the request header naming the session to refresh.
	HeaderSessionID = "Sec-Secure-Session-Id"
	// HeaderSkipped is the request header by which a browser says it skipped
	// a refresh ("unreachable", "server_error", "quota_exceeded").
	HeaderSkipped = "Secure-Session-Skipped"

	// LegacyHeaderRegistration is HeaderRegistration before the draft's
	// rename (commit 832fb1f, May 2025).
	LegacyHeaderRegistration = "Sec-Session-Registration"
	// LegacyHeaderChallenge is HeaderChallenge before the rename.
	LegacyHeaderChallenge = "Sec-Session-Challenge"
	// LegacyHeaderResponse is HeaderResponse before the rename.
	LegacyHeaderResponse = "Sec-Session-Response"
	// LegacyHeaderSessionID is HeaderSessionID before the rename.
	LegacyHeaderSessionID = "Sec-Session-Id"
)

// maxHeaderValue bounds the request header values this package parses
// (besides proofs, which have their own limit).
const maxHeaderValue = 1024

var errHeader = errors.New("dbsc: malformed header")

// sfString serializes s as an RFC 9651 sf-string. s must be printable ASCII
// (checked by the callers at configuration time or by construction).
func sfString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// printableASCII reports whether s can be an sf-string: characters 0x20 to
// 0x7E only.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// parseSFStringOrRaw reads a request header value that the draft defines as
// an sf-string (Sec-Secure-Session-Id, Secure-Session-Response). Chromium
// sends the bare value, unquoted; the draft's examples quote it. Both are
// accepted: a quoted string (escapes resolved, parameters after it
// ignored) or a bare value up to the first ';' (parameters ignored). The
// result is non-empty visible ASCII without spaces.
func parseSFStringOrRaw(v string) (string, error) {
	v = strings.Trim(v, " \t")
	if v == "" {
		return "", errHeader
	}
	var out string
	if v[0] == '"' {
		var b strings.Builder
		i := 1
		closed := false
		for ; i < len(v); i++ {
			c := v[i]
			if c == '\\' {
				i++
				if i == len(v) || (v[i] != '"' && v[i] != '\\') {
					return "", errHeader
				}
				b.WriteByte(v[i])
				continue
			}
			if c == '"' {
				closed = true
				i++
				break
			}
			b.WriteByte(c)
		}
		if !closed {
			return "", errHeader
		}
		rest := strings.TrimLeft(v[i:], " \t")
		if rest != "" && rest[0] != ';' {
			return "", errHeader
		}
		out = b.String()
	} else {
		out, _, _ = strings.Cut(v, ";")
		out = strings.TrimRight(out, " \t")
	}
	if out == "" {
		return "", errHeader
	}
	for i := 0; i < len(out); i++ {
		if out[i] <= 0x20 || out[i] > 0x7e {
			return "", errHeader
		}
	}
	return out, nil
}

// singleHeader returns the one value of the first of names present in h,
// with the name it came under. More than one value of that header is an
// error (a proxy or client that doubles it is ambiguous).
func singleHeader(h http.Header, names ...string) (value, name string, err error) {
	for _, n := range names {
		vs := h.Values(n)
		switch len(vs) {
		case 0:
			continue
		case 1:
			return vs[0], n, nil
		default:
			return "", n, errHeader
		}
	}
	return "", "", nil
}
