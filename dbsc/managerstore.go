package dbsc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
)

// DefaultSessionCookie is the session cookie NewManagerStore reads when
// given no name: the session middleware's default, "sessionid".
const DefaultSessionCookie = "sessionid"

// ManagerStore is the [Store] over a qsessions Manager: the session row's
// dbsc_key and dbsc_secret columns hold the [Binding], written by the
// Backend's Bind and read with every load of the session (cached_db caches
// them with the entry). Create it with [NewManagerStore]; it is safe for
// concurrent use.
type ManagerStore struct {
	m      *qsessions.Manager
	cookie string
}

// NewManagerStore returns the Store of the handlers over m. sessionCookie
// is the name of the ordinary session cookie, the session middleware's
// middleware.Options.Cookie.Name; "" means [DefaultSessionCookie]. It
// panics if m is nil or has no Backend (a configuration error found at
// start-up).
func NewManagerStore(m *qsessions.Manager, sessionCookie string) *ManagerStore {
	if m == nil || m.Backend == nil {
		panic("dbsc: NewManagerStore needs a Manager with a Backend")
	}
	if sessionCookie == "" {
		sessionCookie = DefaultSessionCookie
	}
	return &ManagerStore{m: m, cookie: sessionCookie}
}

// Session implements [Store]. It finds r's session from its session cookie
// whether or not r carries a valid bound cookie: the refresh endpoint is
// called precisely when the bound cookie is missing, and the session
// middleware treats such a request as anonymous (Session.NeedsDeviceProof),
// so the row is loaded here directly with Backend.Load. When the
// middleware's session of r was already loaded and signed in, its record
// is used instead. Costs: one Backend.Load (a cache Get on a cached_db hit,
// one indexed SELECT otherwise), bounded by the Manager's Timeout, and for
// a bound session a ParseBinding (a JSON decode and a SHA-256). No cookie,
// a cookie not of a token's shape (no query), and an unknown, expired or
// revoked session are ErrNoSession; a backend failure is returned as it is
// (the handlers answer 500 and the browser retries).
func (s *ManagerStore) Session(r *http.Request) (Session, error) {
	if qs := qsessions.FromContext(r.Context()); qs != nil && qs.Accessed() {
		if rec := qs.Record(); rec != nil {
			return s.session(rec), nil
		}
	}
	token := ""
	if cs := r.CookiesNamed(s.cookie); len(cs) > 0 {
		token = cs[0].Value // the middleware reads the first one too
	}
	if !backend.ValidToken(token) && (s.m.Legacy == nil || token == "" || !s.m.Legacy.Valid(token)) {
		return Session{}, fmt.Errorf("%w: no session cookie", ErrNoSession)
	}
	ctx, cancel := s.bounded(r.Context())
	defer cancel()
	rec, err := s.m.Backend.Load(ctx, backend.KeyOf(token), s.now())
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return Session{}, fmt.Errorf("%w: unknown, expired or revoked session", ErrNoSession)
	case err != nil:
		return Session{}, fmt.Errorf("dbsc: loading the session: %w", err)
	}
	return s.session(rec), nil
}

// session turns a live record into a Session. A stored binding that does
// not parse (a column edited by hand) is no binding: a refresh then ends
// the browser's device-bound session, and the middleware still wants a
// bound cookie for the row, so the user signs in again, to a new session.
func (s *ManagerStore) session(rec *backend.Record) Session {
	out := Session{Key: rec.Key}
	if rec.Bound() {
		b, err := ParseBinding(rec.DeviceKey, rec.DeviceSecret)
		if err != nil {
			s.logger().Warn("dbsc: the stored device binding does not parse; treating the session as unbound",
				"session", backend.PublicID(rec.Key), "err", err)
			return out
		}
		out.Binding = b
	}
	return out
}

// Bind implements [Store] with the Backend's Bind: one UPDATE of dbsc_key
// and dbsc_secret of the live row (cached_db then makes the next load
// cache the bound row), bounded by the Manager's Timeout. A session that
// is no longer live is ErrNoSession; it is not recreated.
func (s *ManagerStore) Bind(ctx context.Context, sessionKey string, b Binding) error {
	if b.Key == nil || len(b.Secret) != SecretLen {
		return fmt.Errorf("dbsc: Bind: a binding needs a key and a secret of %d bytes", SecretLen)
	}
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	err := s.m.Backend.Bind(ctx, sessionKey, b.Key.String(), b.Secret, s.now())
	if errors.Is(err, backend.ErrNotFound) {
		return fmt.Errorf("%w: the session ended before its registration", ErrNoSession)
	}
	if err != nil {
		return fmt.Errorf("dbsc: storing the binding: %w", err)
	}
	return nil
}

// bounded applies the Manager's Timeout (qsessions.DefaultTimeout when 0,
// none when negative), as the Manager does for its own backend calls.
func (s *ManagerStore) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.m.Timeout
	if d == 0 {
		d = qsessions.DefaultTimeout
	}
	if d < 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

func (s *ManagerStore) now() time.Time {
	if s.m.Now != nil {
		return backend.Time(s.m.Now())
	}
	return backend.Time(time.Now())
}

func (s *ManagerStore) logger() *slog.Logger {
	if s.m.Logger != nil {
		return s.m.Logger
	}
	return slog.Default()
}
