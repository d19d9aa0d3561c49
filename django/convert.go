package django

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/qsessions/qsessions/backend"
)

// Keys Django and django-qsessions keep inside session data.
const (
	// AuthUserIDKey holds the signed-in user's primary key as a string
	// (django.contrib.auth.SESSION_KEY).
	AuthUserIDKey = "_auth_user_id"
	// AuthBackendKey holds the dotted path of the Django authentication
	// backend that signed the user in.
	AuthBackendKey = "_auth_user_backend"
	// AuthHashKey holds Django's session auth hash (an HMAC of the user's
	// password hash under SECRET_KEY), which Django checks to end sessions
	// after a password change.
	AuthHashKey = "_auth_user_hash"
	// IPKey and UserAgentKey are where django-qsessions also keeps the
	// client's IP and User-Agent.
	IPKey        = "_qsessions_ip"
	UserAgentKey = "_qsessions_user_agent"
	// ExpiryKey holds what SessionBase.set_expiry stored: 0 for a cookie
	// that ends with the browser, seconds of inactivity, or a datetime.
	ExpiryKey = "_session_expiry"
	// ImportedKey marks a Django session that was imported into qsessions:
	// it holds the session_key of the row it was written to (see Mark).
	ImportedKey = "_qsessions_imported"
)

// ErrAlreadyImported is returned by Convert for a row Mark has marked as
// imported under its own session_key: it is never imported again, so a
// session revoked on the Go side cannot come back from Django's table.
var ErrAlreadyImported = errors.New("django: session was already imported (marked)")

// ErrUser is returned (wrapped, saying what) by Convert when the session
// names its user in a way that cannot be read.
var ErrUser = errors.New("django: unreadable user id in session")

// SessionKeyLen is the length of the session keys Django draws.
const SessionKeyLen = 32

// ValidSessionKey reports whether s has the shape of the session keys
// Django draws (get_random_string(32, ascii_lowercase + digits)): exactly
// 32 characters of [a-z0-9]. Anything else is not a Django cookie and needs
// no query. Cost: one pass over at most 32 bytes, no allocation.
func ValidSessionKey(s string) bool {
	if len(s) != SessionKeyLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Session is one Django session converted for qsessions: what an importer
// writes as a qsessions row.
type Session struct {
	// Key is the qsessions stored key: backend.KeyOf(DjangoKey), the
	// lowercase hex SHA-256, so the Django cookie now opens this session.
	Key string
	// DjangoKey is the Django session_key (the cookie value). Keep it out
	// of logs: it is a live credential.
	DjangoKey string
	// UserID is the signed-in user's primary key as text, "" when the
	// session is anonymous. The importer converts it to the app's ID type.
	UserID string
	// IP and UserAgent are normalised with backend.NormalizeIP and
	// backend.NormalizeUserAgent; "" when unknown.
	IP        string
	UserAgent string
	// CreatedAt is django-qsessions' created_at; zero when Django does not
	// have it (django_session, or a NULL).
	CreatedAt time.Time
	// UpdatedAt is django-qsessions' updated_at, or else when Django last
	// signed the data (the signature's timestamp); zero when unknown.
	UpdatedAt time.Time
	// ExpireDate is Django's expire_date, kept as the qsessions expiry.
	ExpireDate time.Time
	// BrowserSession is true when Django was told set_expiry(0): the
	// cookie was to end with the browser ("remember me" off).
	BrowserSession bool
	// Values are the session values to store, without the keys Convert
	// drops (see ConvertOptions).
	Values map[string]any
	// Data is the decoded session_data, with how it was signed.
	Data Data
}

// ConvertOptions choose what Convert keeps.
type ConvertOptions struct {
	// KeepAuthKeys keeps Django's _auth_user_id, _auth_user_backend and
	// _auth_user_hash in Values. By default they are dropped: the user is
	// the row's user_id, qsessions' Login and Logout do not maintain these
	// keys (a kept _auth_user_id would go stale after a Login as someone
	// else), the backend is a Python path, and the hash is only meaningful
	// to Django. Keep them only to run Django's password-change check in Go.
	KeepAuthKeys bool
}

// Convert verifies and decodes row's data with s and returns the session to
// write. The user is Django's _auth_user_id (Django's auth trusts only the
// data; django-qsessions' user_id column is written from it); a user_id
// column that names another user, or a user when the data names none
// (Django would serve the session as anonymous), is an error wrapping
// ErrUser. IP and User-Agent come from the columns, else from _qsessions_ip
// and _qsessions_user_agent. Values always lose _qsessions_ip,
// _qsessions_user_agent, _session_expiry and _qsessions_imported (now
// columns, BrowserSession and ExpireDate, or import bookkeeping) and,
// unless opts.KeepAuthKeys, the _auth_* keys. A row marked imported under
// its own key gives ErrAlreadyImported; bad data gives errors wrapping
// ErrBadSignature, ErrPickle or ErrMalformed. Convert does not check
// expire_date (Reader returns live rows only). Cost: Decode plus one
// SHA-256 and a copy of the top-level map.
func (s *Signer) Convert(row Row, opts ConvertOptions) (Session, error) {
	if row.SessionKey == "" {
		return Session{}, fmt.Errorf("%w: empty session_key", ErrMalformed)
	}
	d, err := s.Decode(row.SessionData)
	if err != nil {
		return Session{}, fmt.Errorf("session %s: %w", redactKey(row.SessionKey), err)
	}
	v := d.Values
	if m, ok := v[ImportedKey].(string); ok && m == row.SessionKey {
		return Session{}, fmt.Errorf("session %s: %w", redactKey(row.SessionKey), ErrAlreadyImported)
	}
	out := Session{
		Key:        backend.KeyOf(row.SessionKey),
		DjangoKey:  row.SessionKey,
		CreatedAt:  row.CreatedAt,
		UpdatedAt:  row.UpdatedAt,
		ExpireDate: row.ExpireDate,
		Data:       d,
	}
	if out.UpdatedAt.IsZero() {
		out.UpdatedAt = d.SignedAt
	}
	if u, ok := v[AuthUserIDKey]; ok && u != nil {
		switch u := u.(type) {
		case string:
			out.UserID = u
		case int64: // Django before 1.7 stored the pk itself
			out.UserID = strconv.FormatInt(u, 10)
		default:
			return Session{}, fmt.Errorf("session %s: %w: %s is a %T", redactKey(row.SessionKey), ErrUser, AuthUserIDKey, u)
		}
		if out.UserID == "" {
			return Session{}, fmt.Errorf("session %s: %w: %s is empty", redactKey(row.SessionKey), ErrUser, AuthUserIDKey)
		}
	}
	if row.UserID != "" && row.UserID != out.UserID && !sameUUID(row.UserID, out.UserID) {
		return Session{}, fmt.Errorf("session %s: %w: user_id column %q but %s %q", redactKey(row.SessionKey), ErrUser, row.UserID, AuthUserIDKey, out.UserID)
	}
	ip, ua := row.IP, row.UserAgent
	if ip == "" {
		ip, _ = v[IPKey].(string)
	}
	if ua == "" {
		ua, _ = v[UserAgentKey].(string)
	}
	out.IP = backend.NormalizeIP(ip)
	out.UserAgent = backend.NormalizeUserAgent(ua)

	out.Values = make(map[string]any, len(v))
	for k, val := range v {
		switch k {
		case IPKey, UserAgentKey, ImportedKey:
			continue
		case ExpiryKey:
			out.BrowserSession = val == int64(0)
			continue
		case AuthUserIDKey, AuthBackendKey, AuthHashKey:
			if !opts.KeepAuthKeys {
				continue
			}
		}
		out.Values[k] = val
	}
	return out, nil
}

// sameUUID reports whether a and b are one UUID spelled with and without
// dashes (Django's UUIDField is char(32) without dashes on MySQL and
// SQLite, while _auth_user_id holds str(uuid) with them).
func sameUUID(a, b string) bool {
	strip := func(s string) string {
		out := make([]byte, 0, 32)
		for i := 0; i < len(s); i++ {
			if s[i] != '-' {
				out = append(out, s[i]|0x20)
			}
		}
		return string(out)
	}
	return len(a) >= 32 && len(b) >= 32 && strip(a) == strip(b)
}

// redactKey shortens a session key for messages: the key is a live
// credential, its first 6 characters identify it in a log well enough.
func redactKey(k string) string {
	if len(k) > 6 {
		return strconv.Quote(k[:6] + "…")
	}
	return strconv.Quote(k)
}
