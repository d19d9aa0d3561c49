package dbsctest

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Header names (the draft's, and Chrome's first origin trial's).
const (
	hRegistration       = "Secure-Session-Registration"
	hChallenge          = "Secure-Session-Challenge"
	hResponse           = "Secure-Session-Response"
	hSessionID          = "Sec-Secure-Session-Id"
	hLegacyRegistration = "Sec-Session-Registration"
	hLegacyChallenge    = "Sec-Session-Challenge"
	hLegacyResponse     = "Sec-Session-Response"
	hLegacySessionID    = "Sec-Session-Id"
)

// maxChallengeRounds is how many challenges one refresh answers before it
// gives up, as Chromium (kMaxChallenges = 5).
const maxChallengeRounds = 5

// Errors of the client.
var (
	// ErrEnded: the server ended the device-bound session ({"continue":
	// false}, or a 4xx other than 403 on refresh); the client dropped it.
	ErrEnded = errors.New("dbsctest: the server ended the device-bound session")
	// ErrNotBound: the client has no device-bound session.
	ErrNotBound = errors.New("dbsctest: no device-bound session")
)

// BoundSession is the client's state of a registered device-bound session.
type BoundSession struct {
	// ID is the session_identifier.
	ID string
	// RefreshURL is the absolute refresh URL.
	RefreshURL string
	// CookieName is the bound cookie's name (the first credential).
	CookieName string
	// Attributes are the bound cookie's attributes from the configuration.
	Attributes string
	// Challenge is the cached challenge for the next refresh proof; "" if
	// none.
	Challenge string
	// Config is the last session configuration received.
	Config map[string]any
	key    crypto.Signer
	alg    string
}

// Client is a DBSC-capable HTTP client for one origin. Create it with
// [NewClient]. Set its fields before first use; its methods are safe for
// concurrent use (concurrent refreshes are not merged, unlike a browser,
// so tests can race them against the server).
type Client struct {
	// HTTP sends the requests; redirects are not followed.
	HTTP *http.Client
	// Now is the client's clock for cookie expiry; default time.Now. Share
	// a fake clock with the server to test expiry.
	Now func() time.Time
	// Alg is the preferred algorithm when the server offers several:
	// "ES256" (default) or "RS256".
	Alg string
	// Legacy speaks Chrome's first origin trial: Sec-Session-Id and
	// Sec-Session-Response, typ "jwt" with the key in the payload, and 401
	// for challenges; it also reads Sec-Session-Registration.
	Legacy bool
	// Quote sends Sec-Secure-Session-Id and Secure-Session-Response as
	// quoted sf-strings, as the draft's examples do; default bare, as
	// Chromium does.
	Quote bool
	// NoAutoRegister stops the client from registering when a response
	// carries a registration header; the header is kept (LastRegistration).
	NoAutoRegister bool
	// Tamper, if set, changes every proof before it is signed; kind is
	// "registration" or "refresh".
	Tamper func(kind string, spec *ProofSpec)
	// Rewrite, if set, replaces every signed proof by its result.
	Rewrite func(kind, proof string) string

	// Counters of protocol requests.
	RegistrationPOSTs atomic.Int64
	RefreshPOSTs      atomic.Int64
	Challenged        atomic.Int64 // refresh answers asking for a (new) signature
	Ended             atomic.Int64 // device-bound sessions the server ended

	base *url.URL

	mu        sync.Mutex
	cookies   map[string]storedCookie
	session   *BoundSession
	lastReg   string
	lastProof string
}

type storedCookie struct {
	value   string
	expires time.Time // zero: session cookie
}

// NewClient returns a client for the origin of baseURL (e.g. an
// httptest.Server's URL) that uses httpClient (nil: a plain one; give
// srv.Client() for TLS test servers).
func NewClient(baseURL string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("dbsctest: %q is not an absolute URL", baseURL)
	}
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	hc := *httpClient
	hc.Jar = nil
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{HTTP: &hc, base: &url.URL{Scheme: u.Scheme, Host: u.Host}, cookies: map[string]storedCookie{}}, nil
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Session returns a copy of the device-bound session, or nil.
func (c *Client) Session() *BoundSession {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == nil {
		return nil
	}
	s := *c.session
	return &s
}

// Key returns the device key of the current session, or nil.
func (c *Client) Key() crypto.Signer {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == nil {
		return nil
	}
	return c.session.key
}

// LastRegistration returns the last registration header value received.
func (c *Client) LastRegistration() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastReg
}

// LastProof returns the last proof the client sent.
func (c *Client) LastProof() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastProof
}

// Cookie returns a live cookie's value.
func (c *Client) Cookie(name string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sc, ok := c.cookies[name]
	if !ok || (!sc.expires.IsZero() && !c.now().Before(sc.expires)) {
		return "", false
	}
	return sc.value, true
}

// Cookies returns all live cookies (what an infostealer would copy).
func (c *Client) Cookies() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]string{}
	for n, sc := range c.cookies {
		if sc.expires.IsZero() || c.now().Before(sc.expires) {
			out[n] = sc.value
		}
	}
	return out
}

// SetCookie sets a cookie without expiry (to plant stolen cookies).
func (c *Client) SetCookie(name, value string) {
	c.mu.Lock()
	c.cookies[name] = storedCookie{value: value}
	c.mu.Unlock()
}

// DeleteCookie removes a cookie.
func (c *Client) DeleteCookie(name string) {
	c.mu.Lock()
	delete(c.cookies, name)
	c.mu.Unlock()
}

// Get is Do for a GET of path; it returns the status and body.
func (c *Client) Get(ctx context.Context, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.ResolveReference(&url.URL{Path: path}).String(), nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body), err
}

// Do sends req as a browser with DBSC would: if the client has a
// device-bound session and its bound cookie is missing (or expired on the
// client's clock), it refreshes first (a refresh error is not fatal: the
// request goes without the cookie, as in Chromium); it attaches its
// cookies; it keeps the response's cookies, caches challenges, and
// registers when the response asks for it (before Do returns; the body is
// buffered).
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	if s := c.Session(); s != nil && req.URL.String() != s.RefreshURL {
		if _, ok := c.Cookie(s.CookieName); !ok {
			_ = c.Refresh(req.Context())
		}
	}
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	c.cacheChallenges(resp)
	reg := strings.Join(resp.Header.Values(hRegistration), ", ")
	if reg == "" && c.Legacy {
		reg = strings.Join(resp.Header.Values(hLegacyRegistration), ", ")
	}
	if reg != "" {
		c.mu.Lock()
		c.lastReg = reg
		c.mu.Unlock()
		if !c.NoAutoRegister {
			if err := c.Register(req.Context(), reg, req.URL); err != nil {
				return resp, fmt.Errorf("dbsctest: registration: %w", err)
			}
		}
	}
	return resp, nil
}

// send attaches the cookies, sends, and keeps the response's cookies.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	for n, v := range c.Cookies() {
		req.AddCookie(&http.Cookie{Name: n, Value: v})
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	now := c.now()
	c.mu.Lock()
	for _, ck := range resp.Cookies() {
		switch {
		case ck.MaxAge < 0:
			delete(c.cookies, ck.Name)
		case ck.MaxAge > 0:
			c.cookies[ck.Name] = storedCookie{value: ck.Value, expires: now.Add(time.Duration(ck.MaxAge) * time.Second)}
		case !ck.Expires.IsZero():
			c.cookies[ck.Name] = storedCookie{value: ck.Value, expires: ck.Expires}
		default:
			c.cookies[ck.Name] = storedCookie{value: ck.Value}
		}
	}
	c.mu.Unlock()
	return resp, nil
}

// cacheChallenges stores a challenge of the response for the client's
// session (draft "Cache challenge").
func (c *Client) cacheChallenges(resp *http.Response) {
	names := []string{hChallenge}
	if c.Legacy {
		names = append(names, hLegacyChallenge)
	}
	for _, n := range names {
		v := strings.Join(resp.Header.Values(n), ", ")
		if v == "" {
			continue
		}
		members, err := parseSFList(v)
		if err != nil {
			continue
		}
		c.mu.Lock()
		for _, m := range members {
			ch, ok := m.Item.(string)
			id, idOK := m.Params["id"].(string)
			if ok && idOK && c.session != nil && id == c.session.ID {
				c.session.Challenge = ch
			}
		}
		c.mu.Unlock()
	}
}

// Register processes a registration header value received on a response
// to reqURL: for the first usable entry (an inner list with a "path"), it
// picks an algorithm, creates a key, signs the proof over the entry's
// challenge and POSTs it; on a 200 with a valid session configuration it
// becomes the client's device-bound session.
func (c *Client) Register(ctx context.Context, header string, reqURL *url.URL) error {
	members, err := parseSFList(header)
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.Inner == nil {
			continue
		}
		path, ok := m.Params["path"].(string)
		if !ok {
			continue
		}
		challenge, _ := m.Params["challenge"].(string)
		auth, _ := m.Params["authorization"].(string)
		alg := ""
		for _, it := range m.Inner {
			t, _ := it.(sfToken)
			if (t == "ES256" || t == "RS256") && (alg == "" || string(t) == c.preferred()) {
				alg = string(t)
			}
		}
		if alg == "" {
			return errors.New("dbsctest: no supported algorithm offered")
		}
		endpoint, err := reqURL.Parse(path)
		if err != nil {
			return err
		}
		key, err := NewKey(alg)
		if err != nil {
			return err
		}
		spec := ProofSpec{Signer: key, JWK: key.Public(), Challenge: challenge, Authorization: auth, Legacy: c.Legacy, Audience: endpoint.String()}
		proof, err := c.sign("registration", spec)
		if err != nil {
			return err
		}
		resp, err := c.post(ctx, endpoint.String(), "", proof, auth)
		if err != nil {
			return err
		}
		c.RegistrationPOSTs.Add(1)
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("dbsctest: registration answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
		s, err := c.parseConfig(body, endpoint, "")
		if err != nil {
			return err
		}
		if s == nil {
			return ErrEnded
		}
		s.key, s.alg = key, alg
		c.mu.Lock()
		c.session = s
		c.mu.Unlock()
		c.cacheChallenges(resp)
		return nil
	}
	return errors.New("dbsctest: no usable registration entry")
}

func (c *Client) preferred() string {
	if c.Alg == "" {
		return "ES256"
	}
	return c.Alg
}

// sign builds the proof for spec through Tamper and Rewrite, and records
// it as the last proof.
func (c *Client) sign(kind string, spec ProofSpec) (string, error) {
	if c.Tamper != nil {
		c.Tamper(kind, &spec)
	}
	proof, err := SignProof(spec)
	if err != nil {
		return "", err
	}
	if c.Rewrite != nil {
		proof = c.Rewrite(kind, proof)
	}
	c.mu.Lock()
	c.lastProof = proof
	c.mu.Unlock()
	return proof, nil
}

// SignRefreshProof signs a refresh proof over challenge with the session's
// key (through Tamper and Rewrite).
func (c *Client) SignRefreshProof(challenge string) (string, error) {
	s := c.Session()
	if s == nil {
		return "", ErrNotBound
	}
	spec := ProofSpec{Signer: s.key, Challenge: challenge, Legacy: c.Legacy, Audience: s.RefreshURL}
	if c.Legacy {
		spec.JWK = s.key.Public()
		spec.ExtraPayload = map[string]any{"sub": s.ID}
	}
	return c.sign("refresh", spec)
}

// post sends a DBSC POST with the session id and proof headers (either may
// be empty).
func (c *Client) post(ctx context.Context, target, sessionID, proof, authorization string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return nil, err
	}
	idH, respH := hSessionID, hResponse
	if c.Legacy {
		idH, respH = hLegacySessionID, hLegacyResponse
	}
	q := func(s string) string {
		if c.Quote {
			return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
		}
		return s
	}
	if sessionID != "" {
		req.Header.Set(idH, q(sessionID))
	}
	if proof != "" {
		req.Header.Set(respH, q(proof))
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Origin", c.base.String())
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Sec-Fetch-Mode", "no-cors")
	req.Header.Set("Sec-Fetch-Dest", "empty")
	return c.send(req)
}

// PostRefresh sends one refresh POST for sessionID with proof (either may
// be empty), keeps cookies and caches challenges, and returns the raw
// response (body buffered). For tests that look at single answers.
func (c *Client) PostRefresh(ctx context.Context, sessionID, proof string) (*http.Response, error) {
	s := c.Session()
	target := c.base.ResolveReference(&url.URL{Path: "/dbsc/refresh"}).String()
	if s != nil {
		target = s.RefreshURL
	}
	resp, err := c.post(ctx, target, sessionID, proof, "")
	if err != nil {
		return nil, err
	}
	c.RefreshPOSTs.Add(1)
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	c.cacheChallenges(resp)
	return resp, nil
}

// PostRegistration POSTs proof to the registration path (relative to the
// origin) and returns the raw response (body buffered), without changing
// the client's session.
func (c *Client) PostRegistration(ctx context.Context, path, proof string) (*http.Response, error) {
	resp, err := c.post(ctx, c.base.ResolveReference(&url.URL{Path: path}).String(), "", proof, "")
	if err != nil {
		return nil, err
	}
	c.RegistrationPOSTs.Add(1)
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// Refresh runs the draft's refresh: POST the session id and, if a
// challenge is cached, a proof over it; on 403 (401 for Legacy) take the
// new challenge and retry, up to 5 challenges; on 200 keep the new bound
// cookie and configuration. A 4xx other than 403 or {"continue":false}
// drops the session (ErrEnded); a 5xx or network error keeps it.
func (c *Client) Refresh(ctx context.Context) error {
	challengeStatus := http.StatusForbidden
	if c.Legacy {
		challengeStatus = http.StatusUnauthorized
	}
	for round := 0; round <= maxChallengeRounds; round++ {
		s := c.Session()
		if s == nil {
			return ErrNotBound
		}
		proof := ""
		if s.Challenge != "" {
			var err error
			if proof, err = c.SignRefreshProof(s.Challenge); err != nil {
				return err
			}
		}
		resp, err := c.PostRefresh(ctx, s.ID, proof)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		switch {
		case resp.StatusCode == challengeStatus:
			c.Challenged.Add(1)
			if got := c.Session(); got == nil || got.Challenge == "" || (got.Challenge == s.Challenge && proof != "") {
				return fmt.Errorf("dbsctest: refresh answered %d without a new challenge", resp.StatusCode)
			}
			continue
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			if len(bytes.TrimSpace(body)) == 0 {
				return nil
			}
			refresh, _ := url.Parse(s.RefreshURL)
			ns, err := c.parseConfig(body, refresh, s.ID)
			if err != nil {
				return err
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if ns == nil {
				c.session = nil
				c.Ended.Add(1)
				return ErrEnded
			}
			if c.session != nil && c.session.ID == s.ID {
				ns.key, ns.alg, ns.Challenge = c.session.key, c.session.alg, c.session.Challenge
				c.session = ns
			}
			return nil
		case resp.StatusCode >= 400 && resp.StatusCode < 500:
			c.mu.Lock()
			if c.session != nil && c.session.ID == s.ID {
				c.session = nil
				c.Ended.Add(1)
			}
			c.mu.Unlock()
			return fmt.Errorf("%w: refresh answered %d: %s", ErrEnded, resp.StatusCode, strings.TrimSpace(string(body)))
		default:
			return fmt.Errorf("dbsctest: refresh answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
	}
	return errors.New("dbsctest: too many challenges")
}

// parseConfig parses session instructions; nil (and no error) for
// {"continue": false}. wantID, if set, must match session_identifier.
func (c *Client) parseConfig(body []byte, base *url.URL, wantID string) (*BoundSession, error) {
	var cfg map[string]any
	if err := json.Unmarshal(body, &cfg); err != nil {
		return nil, fmt.Errorf("dbsctest: session configuration is not JSON: %w", err)
	}
	if cont, ok := cfg["continue"].(bool); ok && !cont {
		return nil, nil
	}
	id, _ := cfg["session_identifier"].(string)
	if id == "" {
		return nil, errors.New("dbsctest: session configuration without session_identifier")
	}
	if wantID != "" && id != wantID {
		return nil, fmt.Errorf("dbsctest: session_identifier %q, want %q", id, wantID)
	}
	if _, ok := cfg["scope"].(map[string]any); !ok {
		return nil, errors.New("dbsctest: session configuration without scope")
	}
	refresh := base
	if r, ok := cfg["refresh_url"].(string); ok && r != "" {
		u, err := base.Parse(r)
		if err != nil {
			return nil, err
		}
		refresh = u
	}
	creds, _ := cfg["credentials"].([]any)
	if len(creds) == 0 {
		return nil, errors.New("dbsctest: session configuration without credentials")
	}
	first, _ := creds[0].(map[string]any)
	name, _ := first["name"].(string)
	typ, _ := first["type"].(string)
	attrs, _ := first["attributes"].(string)
	if typ != "cookie" || name == "" {
		return nil, errors.New("dbsctest: session configuration with a bad credential")
	}
	return &BoundSession{ID: id, RefreshURL: refresh.String(), CookieName: name, Attributes: attrs, Config: cfg}, nil
}
