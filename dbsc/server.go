package dbsc

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Session is what the handlers need to know about the request's ordinary
// (long-lived) session.
type Session struct {
	// Key identifies the session row while a registration or refresh runs:
	// qsessions' session_key (the hex SHA-256 of the cookie token). It binds
	// challenges to the session; it is never sent to the browser.
	Key string
	// Binding is the stored binding; nil when the session is not
	// device-bound.
	Binding *Binding
}

// Store connects the handlers to the session layer. [NewManagerStore] is
// the one over a qsessions Manager;
// [github.com/qsessions/qsessions/dbsc/dbsctest.MemStore] is an in-memory
// one for tests. The handlers are mounted inside the session middleware and
// call Store from the request's goroutine.
type Store interface {
	// Session returns the ordinary session of r, found from r's session
	// cookie as the middleware found it, whether or not r carries a valid
	// bound cookie: the refresh endpoint is called precisely when the bound
	// cookie is missing, so the session must not be treated as signed out
	// here. It returns an error wrapping ErrNoSession when r has no live
	// session (no cookie; unknown, expired or revoked session); the
	// handlers then end the browser's device-bound session. Any other error
	// is answered 500 and the browser retries later. Called once per
	// registration and per refresh POST; with the session already loaded by
	// the middleware it costs nothing more.
	Session(r *http.Request) (Session, error)
	// Bind stores b with the session whose Key is sessionKey, replacing any
	// earlier binding (one UPDATE of the two binding columns). It returns
	// an error wrapping ErrNoSession if that session is no longer live
	// (revoked or expired meanwhile); it must not recreate it. Called once
	// per successful registration. A cached_db store must invalidate or
	// update its cached copy, so the next request sees the binding.
	Bind(ctx context.Context, sessionKey string, b Binding) error
}

// Cookie configures the bound cookie. The zero value gives the defaults.
type Cookie struct {
	// Name is the bound cookie's name; default "__Host-qsessions_dbsc", or
	// "qsessions_dbsc" when Insecure. A "__Host-" name requires Secure,
	// Path "/" and no Domain, and New enforces that.
	Name string
	// Domain is the cookie's Domain; default none (host-only). It should
	// match the session cookie's.
	Domain string
	// Path is the cookie's Path; default "/".
	Path string
	// Insecure turns the Secure flag off. Default: Secure. The draft lets
	// browsers run DBSC on http://localhost, but Chromium 156 ignores the
	// registration header on any plain-HTTP origin (and on HTTPS with
	// certificate errors), so this is for protocol tests only.
	Insecure bool
	// SameSite defaults to http.SameSiteLaxMode, as the session cookie's.
	SameSite http.SameSite
}

// Scope is the "scope" of the session configuration: which URLs the
// browser holds for a refresh when the bound cookie is missing. The zero
// value is the whole origin of the registration endpoint (the refresh URL
// itself is always out of scope).
type Scope struct {
	// Origin, if set, is sent as scope.origin (e.g.
	// "https://example.com"); default: the registration endpoint's origin.
	Origin string
	// IncludeSite extends the scope to the whole site (all subdomains); the
	// browser then checks /.well-known/device-bound-sessions for
	// registrations from subdomains.
	IncludeSite bool
	// Rules are the scope_specification: includes and excludes, matched
	// last to first. Exclude paths whose requests must not wait for a
	// refresh (static files, health checks).
	Rules []ScopeRule
}

// ScopeRule is one entry of scope_specification.
type ScopeRule struct {
	// Type is "include" or "exclude".
	Type string `json:"type"`
	// Domain is a host or a pattern ("*.example.com", "*"); "" means "*".
	Domain string `json:"domain,omitempty"`
	// Path is a path prefix; "" means "/".
	Path string `json:"path,omitempty"`
}

// SessionConfig is the JSON session instructions the registration and
// refresh endpoints answer (draft section "JSON Session Instruction
// Format").
type SessionConfig struct {
	// SessionIdentifier is the binding's ID (the key's thumbprint).
	SessionIdentifier string `json:"session_identifier,omitempty"`
	// RefreshURL is the refresh endpoint, a path on this origin.
	RefreshURL string `json:"refresh_url,omitempty"`
	// Continue false ends the browser's device-bound session; nil is the
	// default, true.
	Continue *bool `json:"continue,omitempty"`
	// Scope is the session's scope; nil only when Continue is false.
	Scope *ScopeJSON `json:"scope,omitempty"`
	// Credentials are the bound cookies; this package uses one.
	Credentials []CredentialJSON `json:"credentials,omitempty"`
	// AllowedRefreshInitiators are out-of-scope hosts allowed to trigger
	// refreshes.
	AllowedRefreshInitiators []string `json:"allowed_refresh_initiators,omitempty"`
}

// ScopeJSON is SessionConfig.Scope on the wire.
type ScopeJSON struct {
	// Origin is scope.origin; "" leaves it out (the endpoint's origin).
	Origin string `json:"origin,omitempty"`
	// IncludeSite is scope.include_site, which the draft requires.
	IncludeSite bool `json:"include_site"`
	// ScopeSpecification is scope.scope_specification.
	ScopeSpecification []ScopeRule `json:"scope_specification,omitempty"`
}

// CredentialJSON is one entry of SessionConfig.Credentials.
type CredentialJSON struct {
	// Type is "cookie".
	Type string `json:"type"`
	// Name is the bound cookie's name.
	Name string `json:"name"`
	// Attributes are the cookie's attributes as in Set-Cookie ("Path=/;
	// Secure; HttpOnly; SameSite=Lax"); the browser matches Domain, Path,
	// Secure, HttpOnly and SameSite against the cookie it holds.
	Attributes string `json:"attributes"`
}

// Config configures [New]. Store is required; the zero value of every
// other field gives the documented default.
type Config struct {
	// Store finds the request's session and stores bindings.
	Store Store
	// Prefix is the path the endpoints are mounted under: registration at
	// Prefix+"/register", refresh at Prefix+"/refresh". Default "/dbsc". It
	// must start with "/", not end with one, and be printable ASCII
	// without spaces, quotes, braces or "?".
	Prefix string
	// ChallengeKeys sign challenges (HMAC-SHA256); each at least
	// MinChallengeKeyLen bytes. The first signs new challenges, all verify
	// (rotate by prepending a new key and dropping the old one a challenge
	// lifetime later). Default: one random key per process, which is right
	// for a single process only: apps with several processes must give
	// them all the same keys (and a shared ReplayGuard), or a challenge
	// issued by one is refused by another.
	ChallengeKeys [][]byte
	// ReplayGuard makes challenges single-use. Default
	// NewMemoryReplayGuard(0, Now): in-process, so for a single process
	// only; NewCacheReplayGuard shares one over memcached (see
	// ReplayGuard).
	ReplayGuard ReplayGuard
	// ChallengeTTL is the lifetime of refresh challenges; default
	// DefaultChallengeTTL (60 s). At least 5 s.
	ChallengeTTL time.Duration
	// RegistrationTTL is the lifetime of registration challenges; default
	// DefaultRegistrationTTL (5 minutes). At least 5 s.
	RegistrationTTL time.Duration
	// CredentialTTL is the lifetime of a bound cookie; default
	// DefaultCredentialTTL (5 minutes). At least 10 s.
	CredentialTTL time.Duration
	// ClockSkew is the slack for expiry checks of challenges and of
	// CheckRequest; default DefaultClockSkew (5 s). At most a minute. (The
	// session's own check of the bound cookie allows
	// backend.DefaultBoundSkew, also 5 s.)
	ClockSkew time.Duration
	// Cookie configures the bound cookie. Its name must be the session
	// middleware's middleware.Options.BoundCookie (both default to
	// "__Host-qsessions_dbsc"), or the middleware never sees it and every
	// request of a bound session is anonymous.
	Cookie Cookie
	// Algorithms are the proof algorithms offered, in order of preference;
	// default ES256 then RS256. Only ES256 and RS256 are allowed.
	Algorithms []string
	// Scope is the scope sent in the session configuration; default the
	// whole origin.
	Scope Scope
	// AllowedRefreshInitiators are out-of-scope hosts (patterns like
	// "*.example.com") allowed to trigger refreshes; default none.
	AllowedRefreshInitiators []string
	// LegacyHeaders also sends Sec-Session-Registration (Chrome's first
	// origin trial, M135-M139) beside Secure-Session-Registration. Default
	// off: current Chromium reads only the new name. Requests under the old
	// names are accepted either way.
	LegacyHeaders bool
	// PrefetchChallenges attaches a challenge for the next refresh to every
	// registration and refresh response, so the next refresh is one POST
	// instead of two. That challenge must live CredentialTTL+ChallengeTTL,
	// so a proof can be signed that long before it is used. Default off.
	PrefetchChallenges bool
	// MaxProofBytes bounds proofs before decoding; default
	// DefaultMaxProofBytes (8 KiB).
	MaxProofBytes int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives refused registrations and refreshes (at Info, with
	// the reason and the binding ID, never a secret or token) and internal
	// errors (at Error); default slog.Default().
	Logger *slog.Logger
}

// Server serves the DBSC registration and refresh endpoints and issues
// registration headers. Create it with [New]; it is safe for concurrent
// use.
type Server struct {
	cfg          Config
	ch           challenger
	registerPath string
	refreshPath  string
	attrs        string
	mux          *http.ServeMux
}

// New checks cfg, fills in the defaults and returns the server. It errors,
// naming the field, when Store is missing or a field is out of range. Cost:
// reading 32 random bytes when ChallengeKeys is empty.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("dbsc: Config.Store is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/dbsc"
	}
	if !strings.HasPrefix(cfg.Prefix, "/") || strings.HasSuffix(cfg.Prefix, "/") || !printableASCII(cfg.Prefix) || strings.ContainsAny(cfg.Prefix, "{}?\" \\") {
		return nil, fmt.Errorf("dbsc: Config.Prefix %q must start with \"/\", not end with one, and be printable ASCII without spaces, quotes, backslashes, braces or ?", cfg.Prefix)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.ChallengeKeys) == 0 {
		k := make([]byte, MinChallengeKeyLen)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("dbsc: reading random bytes: %w", err)
		}
		cfg.ChallengeKeys = [][]byte{k}
	}
	for i, k := range cfg.ChallengeKeys {
		if len(k) < MinChallengeKeyLen {
			return nil, fmt.Errorf("dbsc: Config.ChallengeKeys[%d] has %d bytes, want at least %d", i, len(k), MinChallengeKeyLen)
		}
	}
	if cfg.ReplayGuard == nil {
		cfg.ReplayGuard = NewMemoryReplayGuard(0, cfg.Now)
	}
	durations := []struct {
		name     string
		v        *time.Duration
		def, min time.Duration
	}{
		{"ChallengeTTL", &cfg.ChallengeTTL, DefaultChallengeTTL, 5 * time.Second},
		{"RegistrationTTL", &cfg.RegistrationTTL, DefaultRegistrationTTL, 5 * time.Second},
		{"CredentialTTL", &cfg.CredentialTTL, DefaultCredentialTTL, 10 * time.Second},
	}
	for _, d := range durations {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < d.min {
			return nil, fmt.Errorf("dbsc: Config.%s %v is below %v", d.name, *d.v, d.min)
		}
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.ClockSkew < 0 || cfg.ClockSkew > time.Minute {
		return nil, fmt.Errorf("dbsc: Config.ClockSkew %v must be between 0 and 1m", cfg.ClockSkew)
	}
	if cfg.MaxProofBytes == 0 {
		cfg.MaxProofBytes = DefaultMaxProofBytes
	}
	if cfg.MaxProofBytes < 1024 || cfg.MaxProofBytes > 64<<10 {
		return nil, fmt.Errorf("dbsc: Config.MaxProofBytes %d must be between 1024 and 65536", cfg.MaxProofBytes)
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = []string{ES256, RS256}
	}
	for _, a := range cfg.Algorithms {
		if a != ES256 && a != RS256 {
			return nil, fmt.Errorf("dbsc: Config.Algorithms: %q is not ES256 or RS256", a)
		}
	}
	cfg.Algorithms = slices.Compact(slices.Clone(cfg.Algorithms))
	for _, r := range cfg.Scope.Rules {
		if r.Type != "include" && r.Type != "exclude" {
			return nil, fmt.Errorf("dbsc: Config.Scope.Rules: type %q is not include or exclude", r.Type)
		}
	}
	if cfg.Scope.Origin != "" {
		u, err := url.Parse(cfg.Scope.Origin)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, fmt.Errorf("dbsc: Config.Scope.Origin %q is not an origin like https://example.com", cfg.Scope.Origin)
		}
	}
	c := &cfg.Cookie
	if c.Name == "" {
		c.Name = "__Host-qsessions_dbsc"
		if c.Insecure {
			c.Name = "qsessions_dbsc"
		}
	}
	if c.Path == "" {
		c.Path = "/"
	}
	if c.SameSite == 0 {
		c.SameSite = http.SameSiteLaxMode
	}
	if !validCookieName(c.Name) || !printableASCII(c.Path) || strings.ContainsAny(c.Path, ";") || !printableASCII(c.Domain) || strings.ContainsAny(c.Domain, "; ") {
		return nil, fmt.Errorf("dbsc: Config.Cookie: invalid name %q, path %q or domain %q", c.Name, c.Path, c.Domain)
	}
	if strings.HasPrefix(c.Name, "__Host-") && (c.Insecure || c.Path != "/" || c.Domain != "") {
		return nil, errors.New("dbsc: Config.Cookie: a __Host- cookie must be Secure, with Path \"/\" and no Domain")
	}
	if strings.HasPrefix(c.Name, "__Secure-") && c.Insecure {
		return nil, errors.New("dbsc: Config.Cookie: a __Secure- cookie must be Secure")
	}

	s := &Server{
		cfg:          cfg,
		ch:           challenger{keys: cfg.ChallengeKeys, skew: cfg.ClockSkew, now: cfg.Now, guard: cfg.ReplayGuard},
		registerPath: cfg.Prefix + "/register",
		refreshPath:  cfg.Prefix + "/refresh",
	}
	s.attrs = s.cookieAttributes()
	s.mux = http.NewServeMux()
	s.Register(s.mux)
	return s, nil
}

func validCookieName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

// cookieAttributes renders the bound cookie's attributes as the session
// configuration states them; the Set-Cookie of mintCookie has the same.
func (s *Server) cookieAttributes() string {
	c := s.cfg.Cookie
	var parts []string
	if c.Domain != "" {
		parts = append(parts, "Domain="+c.Domain)
	}
	parts = append(parts, "Path="+c.Path)
	if !c.Insecure {
		parts = append(parts, "Secure")
	}
	parts = append(parts, "HttpOnly")
	switch c.SameSite {
	case http.SameSiteStrictMode:
		parts = append(parts, "SameSite=Strict")
	case http.SameSiteNoneMode:
		parts = append(parts, "SameSite=None")
	default:
		parts = append(parts, "SameSite=Lax")
	}
	return strings.Join(parts, "; ")
}

// RegistrationPath returns the registration endpoint's path
// (Prefix+"/register").
func (s *Server) RegistrationPath() string { return s.registerPath }

// RefreshPath returns the refresh endpoint's path (Prefix+"/refresh").
func (s *Server) RefreshPath() string { return s.refreshPath }

// CookieName returns the bound cookie's name.
func (s *Server) CookieName() string { return s.cfg.Cookie.Name }

// RegistrationHeader returns a Secure-Session-Registration value for the
// session whose Key is sessionKey: the offered algorithms, the registration
// path and a fresh single-use challenge valid for RegistrationTTL. Cost: 16
// random bytes and one HMAC; nothing is stored.
func (s *Server) RegistrationHeader(sessionKey string) (string, error) {
	ch, err := s.ch.issue(purposeRegister, sessionKey, s.cfg.RegistrationTTL)
	if err != nil {
		return "", err
	}
	return "(" + strings.Join(s.cfg.Algorithms, " ") + ");path=" + sfString(s.registerPath) + ";challenge=" + sfString(ch), nil
}

// StartRegistration adds the registration header for the session whose
// Key is sessionKey to w's headers (and, with Config.LegacyHeaders, the
// old Sec-Session-Registration too). Call it on the response that signs
// the user in, after the session token was rotated, with the new key. A
// browser with DBSC then registers in the background; others ignore it.
//
// Any registration with a valid challenge replaces the session's binding,
// so never call it on ordinary responses of a bound session: a thief
// holding the long-lived cookie could take the challenge and bind the
// session to his own key. At sign-in, after the password, that is fine.
// Cost: as RegistrationHeader.
func (s *Server) StartRegistration(w http.ResponseWriter, sessionKey string) error {
	v, err := s.RegistrationHeader(sessionKey)
	if err != nil {
		return err
	}
	w.Header().Add(HeaderRegistration, v)
	if s.cfg.LegacyHeaders {
		w.Header().Add(LegacyHeaderRegistration, v)
	}
	return nil
}

// CheckRequest checks r's bound cookie against b: nil when b is nil (the
// session is not device-bound and needs no bound cookie) or when r carries
// a bound cookie minted with b.Secret that has not expired (any of several
// cookies of that name may be it); otherwise the error of
// [VerifyCredential]. The session middleware calls this, or
// VerifyCredential itself, for every request of a bound session and treats
// the request as not signed in on error. Cost: one HMAC-SHA256 per bound
// cookie present; no I/O.
func (s *Server) CheckRequest(r *http.Request, b *Binding) error {
	if b == nil {
		return nil
	}
	err := ErrNoCredential
	for _, c := range r.CookiesNamed(s.cfg.Cookie.Name) {
		if err = VerifyCredential(b.Secret, c.Value, s.cfg.Now(), s.cfg.ClockSkew); err == nil {
			return nil
		}
	}
	return err
}

// Register adds the endpoints to mux (Go 1.22 patterns):
//
//	POST {Prefix}/register   registration (Secure-Session-Response with the new key)
//	POST {Prefix}/refresh    refresh (Sec-Secure-Session-Id, Secure-Session-Response)
//
// Mount them inside the session middleware (the handlers find the session
// through Config.Store) and exempt the refresh path from the middleware's
// bound-cookie requirement and from CSRF checks that would refuse a POST
// without a form token (the browser sends Origin and Sec-Fetch-Site, and
// cross-site requests are refused here). Register panics, as ServeMux does,
// if a pattern conflicts with one already on mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST "+s.registerPath, s.serveRegister)
	mux.HandleFunc("POST "+s.refreshPath, s.serveRefresh)
}

// ServeHTTP serves the two endpoints (see Register); any other path is 404,
// any other method 405.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// fail logs a refused request at Info and answers status with a short
// plain-text reason.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, what string, err error, attrs ...any) {
	s.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "dbsc: "+what+" refused", append([]slog.Attr{slog.Int("status", status), slog.String("reason", err.Error())}, argsToAttrs(attrs)...)...)
	noStore(w)
	http.Error(w, what+" refused: "+err.Error(), status)
}

// internal logs an internal error at Error and answers 500; the browser
// keeps its device-bound session and retries later.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.cfg.Logger.LogAttrs(r.Context(), slog.LevelError, "dbsc: "+what+" failed", slog.String("error", err.Error()))
	noStore(w)
	http.Error(w, "Internal Server Error", http.StatusInternalServerError)
}

func argsToAttrs(args []any) []slog.Attr {
	var out []slog.Attr
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok {
			out = append(out, slog.Any(k, args[i+1]))
		}
	}
	return out
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
}

// crossSite reports a request a browser marked as cross-site; DBSC's own
// requests are same-origin or same-site.
func crossSite(r *http.Request) bool {
	return r.Header.Get("Sec-Fetch-Site") == "cross-site"
}

// readProof returns the proof of r and whether it came under the old header
// name; "" if there is none.
func readProof(r *http.Request) (token string, legacy bool, err error) {
	v, name, err := singleHeader(r.Header, HeaderResponse, LegacyHeaderResponse)
	if err != nil || name == "" {
		return "", false, err
	}
	token, err = parseSFStringOrRaw(v)
	return token, name == LegacyHeaderResponse, err
}

func (s *Server) serveRegister(w http.ResponseWriter, r *http.Request) {
	const what = "registration"
	if crossSite(r) {
		s.fail(w, r, http.StatusForbidden, what, errors.New("cross-site request"))
		return
	}
	token, legacy, err := readProof(r)
	switch {
	case err != nil:
		s.fail(w, r, http.StatusBadRequest, what, fmt.Errorf("%w: %v", ErrProofMalformed, err))
		return
	case token == "":
		s.fail(w, r, http.StatusBadRequest, what, ErrProofMissing)
		return
	}
	sess, err := s.cfg.Store.Session(r)
	if errors.Is(err, ErrNoSession) {
		s.fail(w, r, http.StatusUnauthorized, what, err)
		return
	} else if err != nil {
		s.internal(w, r, what, err)
		return
	}
	p, err := VerifyProof(token, VerifyOptions{Algorithms: s.cfg.Algorithms, MaxBytes: s.cfg.MaxProofBytes, Legacy: legacy})
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, what, err)
		return
	}
	id, until, err := s.ch.check(purposeRegister, sess.Key, p.Challenge)
	if err != nil {
		s.fail(w, r, http.StatusForbidden, what, err, "binding", p.Key.Thumbprint())
		return
	}
	if err := s.ch.consume(r.Context(), id, until); errors.Is(err, ErrChallengeUsed) {
		s.fail(w, r, http.StatusForbidden, what, err, "binding", p.Key.Thumbprint())
		return
	} else if err != nil {
		s.internal(w, r, what, err)
		return
	}
	secret, err := newSecret()
	if err != nil {
		s.internal(w, r, what, err)
		return
	}
	b := Binding{Key: p.Key, Secret: secret}
	if err := s.cfg.Store.Bind(r.Context(), sess.Key, b); errors.Is(err, ErrNoSession) {
		s.fail(w, r, http.StatusUnauthorized, what, err)
		return
	} else if err != nil {
		s.internal(w, r, what, err)
		return
	}
	s.answer(w, r, sess.Key, &b, legacy)
}

func (s *Server) serveRefresh(w http.ResponseWriter, r *http.Request) {
	const what = "refresh"
	if crossSite(r) {
		s.fail(w, r, http.StatusForbidden, what, errors.New("cross-site request"))
		return
	}
	v, name, err := singleHeader(r.Header, HeaderSessionID, LegacyHeaderSessionID)
	if err != nil || name == "" || len(v) > maxHeaderValue {
		s.fail(w, r, http.StatusBadRequest, what, fmt.Errorf("no single %s header", HeaderSessionID))
		return
	}
	legacy := name == LegacyHeaderSessionID
	id, err := parseSFStringOrRaw(v)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, what, fmt.Errorf("malformed %s header", name))
		return
	}
	sess, err := s.cfg.Store.Session(r)
	if errors.Is(err, ErrNoSession) {
		s.end(w, r, id, err)
		return
	} else if err != nil {
		s.internal(w, r, what, err)
		return
	}
	if sess.Binding == nil {
		s.end(w, r, id, errors.New("the session is not device-bound"))
		return
	}
	if sess.Binding.ID() != id {
		s.end(w, r, id, errors.New("the session is bound to another key"))
		return
	}
	token, legacyProof, err := readProof(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, what, fmt.Errorf("%w: %v", ErrProofMalformed, err), "binding", id)
		return
	}
	if token == "" {
		s.challenge(w, r, sess, legacy, ErrProofMissing)
		return
	}
	p, err := VerifyProof(token, VerifyOptions{Key: sess.Binding.Key, Algorithms: s.cfg.Algorithms, MaxBytes: s.cfg.MaxProofBytes, Legacy: legacy || legacyProof})
	if err != nil {
		// A proof that does not verify with the bound key will never do:
		// any 4xx but 403 ends the browser's device-bound session.
		s.fail(w, r, http.StatusBadRequest, what, err, "binding", id)
		return
	}
	cid, until, err := s.ch.check(purposeRefresh, refreshSubject(sess), p.Challenge)
	if err != nil {
		s.challenge(w, r, sess, legacy, err)
		return
	}
	if err := s.ch.consume(r.Context(), cid, until); errors.Is(err, ErrChallengeUsed) {
		// Another tab's refresh, or Chromium's cached signature, used it
		// first: ask for a new signature, never sign out.
		s.challenge(w, r, sess, legacy, err)
		return
	} else if err != nil {
		s.internal(w, r, what, err)
		return
	}
	s.answer(w, r, sess.Key, sess.Binding, legacy)
}

// refreshSubject binds refresh challenges to the session and its binding.
func refreshSubject(sess Session) string {
	return sess.Key + "\x00" + sess.Binding.ID()
}

// challengeHeader renders a Secure-Session-Challenge value.
func challengeHeader(ch, id string) string {
	return sfString(ch) + ";id=" + sfString(id)
}

// challenge answers a refresh with a fresh challenge: 403 with
// Secure-Session-Challenge (the browser signs it and retries), or 401 with
// Sec-Session-Challenge for Chrome's first origin trial.
func (s *Server) challenge(w http.ResponseWriter, r *http.Request, sess Session, legacy bool, why error) {
	ch, err := s.ch.issue(purposeRefresh, refreshSubject(sess), s.cfg.ChallengeTTL)
	if err != nil {
		s.internal(w, r, "refresh", err)
		return
	}
	v := challengeHeader(ch, sess.Binding.ID())
	w.Header().Set(HeaderChallenge, v)
	status := http.StatusForbidden
	if legacy {
		w.Header().Set(LegacyHeaderChallenge, v)
		status = http.StatusUnauthorized
	}
	if !errors.Is(why, ErrProofMissing) {
		s.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "dbsc: refresh proof refused, new challenge sent", slog.String("reason", why.Error()), slog.String("binding", sess.Binding.ID()))
	}
	noStore(w)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte("sign the new challenge (" + why.Error() + ")\n"))
}

// end answers a refresh with {"session_identifier": id, "continue": false}:
// the browser drops its device-bound session. The draft lets the identifier
// be left out with continue false, but Chromium 156 checks it first and
// otherwise ends the session as "InvalidSessionParams" rather than
// "ServerRequested". The bound cookie is left alone: it may belong to a
// newer binding of the same browser.
func (s *Server) end(w http.ResponseWriter, r *http.Request, id string, why error) {
	s.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "dbsc: device-bound session ended", slog.String("reason", why.Error()), slog.String("binding", id))
	f := false
	s.writeJSON(w, SessionConfig{SessionIdentifier: id, Continue: &f})
}

// answer sets a fresh bound cookie and writes the session configuration.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, sessionKey string, b *Binding, legacy bool) {
	now := s.cfg.Now()
	exp := now.Add(s.cfg.CredentialTTL)
	v, err := MintCredential(b.Secret, exp)
	if err != nil {
		s.internal(w, r, "refresh", err)
		return
	}
	c := s.cfg.Cookie
	http.SetCookie(w, &http.Cookie{
		Name: c.Name, Value: v, Path: c.Path, Domain: c.Domain,
		MaxAge: int(s.cfg.CredentialTTL / time.Second), Expires: exp.UTC(),
		Secure: !c.Insecure, HttpOnly: true, SameSite: c.SameSite,
	})
	if s.cfg.PrefetchChallenges {
		ch, err := s.ch.issue(purposeRefresh, sessionKey+"\x00"+b.ID(), s.cfg.CredentialTTL+s.cfg.ChallengeTTL)
		if err != nil {
			s.internal(w, r, "refresh", err)
			return
		}
		w.Header().Set(HeaderChallenge, challengeHeader(ch, b.ID()))
		if legacy {
			w.Header().Set(LegacyHeaderChallenge, challengeHeader(ch, b.ID()))
		}
	}
	s.writeJSON(w, s.sessionConfig(b))
}

// sessionConfig returns the session instructions for b.
func (s *Server) sessionConfig(b *Binding) SessionConfig {
	return SessionConfig{
		SessionIdentifier: b.ID(),
		RefreshURL:        s.refreshPath,
		Scope: &ScopeJSON{
			Origin:             s.cfg.Scope.Origin,
			IncludeSite:        s.cfg.Scope.IncludeSite,
			ScopeSpecification: s.cfg.Scope.Rules,
		},
		Credentials:              []CredentialJSON{{Type: "cookie", Name: s.cfg.Cookie.Name, Attributes: s.attrs}},
		AllowedRefreshInitiators: s.cfg.AllowedRefreshInitiators,
	}
}

func (s *Server) writeJSON(w http.ResponseWriter, v SessionConfig) {
	body, _ := json.Marshal(v) // plain strings, bools and slices: cannot fail
	noStore(w)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
