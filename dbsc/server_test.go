package dbsc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qsessions/qsessions/dbsc"
	"github.com/qsessions/qsessions/dbsc/dbsctest"
)

var ctx = context.Background()

// The whole life of a bound session: register at sign-in, bound requests,
// expiry noticed by the client, refresh through a challenge, revocation.
func TestLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name string
		alg  string
		mod  func(*dbsctest.Client)
	}{
		{"ES256", "ES256", nil},
		{"RS256", "RS256", nil},
		{"ES256 quoted headers", "ES256", func(c *dbsctest.Client) { c.Quote = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			c := e.client(func(c *dbsctest.Client) {
				c.Alg = tc.alg
				if tc.mod != nil {
					tc.mod(c)
				}
			})
			key := e.login(c)
			s := c.Session()
			if s == nil {
				t.Fatal("not registered")
			}
			b := e.store.Binding(key)
			if b == nil || b.ID() != s.ID || b.Key.Algorithm() != tc.alg {
				t.Fatalf("stored binding %v, client session %+v", b, s)
			}
			if s.CookieName != e.srv.CookieName() || s.Attributes != "Path=/; Secure; HttpOnly; SameSite=Lax" || !strings.HasSuffix(s.RefreshURL, "/dbsc/refresh") {
				t.Fatalf("session configuration %+v", s)
			}
			e.wantSignedIn(c, "alice bound")
			if n := c.RefreshPOSTs.Load(); n != 0 {
				t.Fatalf("%d refreshes before expiry", n)
			}

			// Within the credential's lifetime: no refresh.
			e.clock.Advance(dbsc.DefaultCredentialTTL - time.Second)
			e.wantSignedIn(c, "alice bound")
			if n := c.RefreshPOSTs.Load(); n != 0 {
				t.Fatalf("%d refreshes before expiry", n)
			}
			// Expired: the client refreshes (403 + challenge, then proof).
			e.clock.Advance(2 * time.Second)
			e.wantSignedIn(c, "alice bound")
			if n, ch := c.RefreshPOSTs.Load(), c.Challenged.Load(); n != 2 || ch != 1 {
				t.Fatalf("first refresh took %d POSTs and %d challenges, want 2 and 1", n, ch)
			}
			// Again, several times: the session lives on short cookies.
			for i := range 3 {
				e.clock.Advance(dbsc.DefaultCredentialTTL + time.Second)
				e.wantSignedIn(c, "alice bound")
				if c.Session() == nil {
					t.Fatalf("round %d: session dropped", i)
				}
			}
			if c.Ended.Load() != 0 {
				t.Fatal("session ended during refreshes")
			}

			// Revoked: the current credential is worthless at once (the
			// session is gone), and the next refresh ends the DBSC session.
			e.store.Revoke(key)
			e.wantSignedOut(c)
			e.clock.Advance(dbsc.DefaultCredentialTTL + time.Second)
			e.wantSignedOut(c)
			if c.Session() != nil || c.Ended.Load() != 1 {
				t.Fatalf("after revocation: session %+v, ended %d", c.Session(), c.Ended.Load())
			}
		})
	}
}

// A browser without DBSC never registers and its session works as before.
func TestBrowserWithoutDBSC(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(func(c *dbsctest.Client) { c.NoAutoRegister = true })
	key := e.login(c)
	if c.LastRegistration() == "" {
		t.Fatal("no registration header at sign-in")
	}
	e.clock.Advance(24 * time.Hour)
	e.wantSignedIn(c, "alice unbound")
	if e.store.Binding(key) != nil || e.store.Binds.Load() != 0 || c.RegistrationPOSTs.Load() != 0 {
		t.Fatal("a binding appeared without registration")
	}
}

func TestRegistrationHeader(t *testing.T) {
	e := newEnv(t, nil)
	v, err := e.srv.RegistrationHeader("k")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\(ES256 RS256\);path="/dbsc/register";challenge="[A-Za-z0-9_-]{56}"$`).MatchString(v) {
		t.Fatalf("registration header %q", v)
	}
	e2 := newEnv(t, func(c *dbsc.Config) {
		c.Algorithms = []string{dbsc.RS256}
		c.Prefix = "/auth/dbsc"
		c.LegacyHeaders = true
	})
	w := httptest.NewRecorder()
	if err := e2.srv.StartRegistration(w, "k"); err != nil {
		t.Fatal(err)
	}
	h := w.Header()
	if !strings.HasPrefix(h.Get(dbsc.HeaderRegistration), `(RS256);path="/auth/dbsc/register";challenge="`) || h.Get(dbsc.LegacyHeaderRegistration) != h.Get(dbsc.HeaderRegistration) {
		t.Fatalf("headers %v", h)
	}
}

// A thief who copies both cookies has minutes, then nothing.
func TestStolenCookies(t *testing.T) {
	e := newEnv(t, nil)
	victim := e.client(nil)
	e.login(victim)
	thief := e.client(func(c *dbsctest.Client) { c.NoAutoRegister = true })
	for n, v := range victim.Cookies() {
		thief.SetCookie(n, v)
	}
	e.wantSignedIn(thief, "alice bound") // the stolen credential, while it lasts
	e.clock.Advance(dbsc.DefaultCredentialTTL + 6*time.Second)
	thief.DeleteCookie(e.srv.CookieName()) // his browser dropped it too
	e.wantSignedOut(thief)
	// He cannot refresh: his proof is not signed by the device key.
	id := victim.Session().ID
	resp, err := thief.PostRefresh(ctx, id, "")
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("thief asks for a challenge: %v %v", resp, err)
	}
	ch := resp.Header.Get(dbsc.HeaderChallenge)
	challenge := regexp.MustCompile(`^"([^"]+)";id="`).FindStringSubmatch(ch)
	if challenge == nil {
		t.Fatalf("challenge header %q", ch)
	}
	own, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	proof := sign(t, dbsctest.ProofSpec{Signer: own, Challenge: challenge[1]})
	if resp, _ := thief.PostRefresh(ctx, id, proof); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("thief's refresh = %d, want 400", resp.StatusCode)
	}
	// Nor re-register: no registration challenge comes his way, and an old
	// one is used up.
	regCh := regexp.MustCompile(`challenge="([^"]+)"`).FindStringSubmatch(victim.LastRegistration())[1]
	regProof := sign(t, dbsctest.ProofSpec{Signer: own, JWK: &own.PublicKey, Challenge: regCh})
	if resp, _ := thief.PostRegistration(ctx, "/dbsc/register", regProof); resp.StatusCode != http.StatusForbidden || !strings.Contains(body(t, resp), "challenge") {
		t.Fatalf("thief's registration = %d", resp.StatusCode)
	}
	e.wantSignedOut(thief)
	// The victim is unaffected.
	e.wantSignedIn(victim, "alice bound")
	if victim.Ended.Load() != 0 {
		t.Fatal("victim's session ended")
	}
}

// Refresh proofs the server must refuse, each on its own.
func TestRefreshRefuses(t *testing.T) {
	type result struct {
		status int
		text   string
	}
	for _, tc := range []struct {
		name  string
		proof func(t *testing.T, c *dbsctest.Client, challenge string) string
		want  result
	}{
		{"wrong key", func(t *testing.T, c *dbsctest.Client, ch string) string {
			return sign(t, dbsctest.ProofSpec{Signer: mustP256(t), Challenge: ch})
		}, result{400, "bad proof signature"}},
		{"alg none", func(t *testing.T, c *dbsctest.Client, ch string) string {
			return sign(t, dbsctest.ProofSpec{Alg: "none", Challenge: ch})
		}, result{400, "algorithm not allowed"}},
		{"HS256 keyed with the public key", func(t *testing.T, c *dbsctest.Client, ch string) string {
			k, _ := dbsc.NewDeviceKey(c.Key().Public())
			return sign(t, dbsctest.ProofSpec{Alg: "HS256", HMACKey: []byte(k.String()), Challenge: ch})
		}, result{400, "algorithm not allowed"}},
		{"RS256 for an ES256 binding", func(t *testing.T, c *dbsctest.Client, ch string) string {
			return sign(t, dbsctest.ProofSpec{Signer: mustRSA(t), Challenge: ch})
		}, result{400, "unacceptable public key"}},
		{"jwk on refresh", func(t *testing.T, c *dbsctest.Client, ch string) string {
			return sign(t, dbsctest.ProofSpec{Signer: c.Key(), JWK: c.Key().Public(), Challenge: ch})
		}, result{400, "unacceptable public key"}},
		{"oversized", func(t *testing.T, c *dbsctest.Client, ch string) string {
			return sign(t, dbsctest.ProofSpec{Signer: c.Key(), Challenge: ch, ExtraPayload: map[string]any{"pad": strings.Repeat("p", 9000)}})
		}, result{400, "too large"}},
		{"malformed", func(t *testing.T, c *dbsctest.Client, ch string) string { return "not.a.jwt" }, result{400, "malformed proof"}},
		{"garbage header value", func(t *testing.T, c *dbsctest.Client, ch string) string { return `"unterminated` }, result{400, "malformed proof"}},
		{"forged challenge", func(t *testing.T, c *dbsctest.Client, ch string) string {
			return sign(t, dbsctest.ProofSpec{Signer: c.Key(), Challenge: "AQFmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZm"})
		}, result{403, "invalid challenge"}},
		{"registration challenge", func(t *testing.T, c *dbsctest.Client, ch string) string {
			reg := regexp.MustCompile(`challenge="([^"]+)"`).FindStringSubmatch(c.LastRegistration())[1]
			return sign(t, dbsctest.ProofSpec{Signer: c.Key(), Challenge: reg})
		}, result{403, "invalid challenge"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			c := e.client(nil)
			key := e.login(c)
			before := e.store.Binding(key)
			ch := e.challenge(c)
			resp, err := c.PostRefresh(ctx, c.Session().ID, tc.proof(t, c, ch))
			if err != nil {
				t.Fatal(err)
			}
			text := body(t, resp)
			if resp.StatusCode != tc.want.status || !strings.Contains(text, tc.want.text) {
				t.Fatalf("refresh = %d %q, want %d %q", resp.StatusCode, text, tc.want.status, tc.want.text)
			}
			if resp.StatusCode == 403 && resp.Header.Get(dbsc.HeaderChallenge) == "" {
				t.Fatal("403 without a new challenge")
			}
			if _, ok := c.Cookie(e.srv.CookieName()); ok && resp.Header.Get("Set-Cookie") != "" {
				t.Fatal("a refused refresh set a cookie")
			}
			if e.store.Binding(key) != before {
				t.Fatal("a refused refresh changed the binding")
			}
			// The legitimate client still refreshes fine afterwards.
			e.clock.Advance(dbsc.DefaultCredentialTTL + 6*time.Second)
			e.wantSignedIn(c, "alice bound")
		})
	}
}

// A replayed proof (its challenge used) and an expired challenge get a new
// challenge, never an end of the session.
func TestReplayedAndExpiredChallenges(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(nil)
	e.login(c)
	id := c.Session().ID

	ch := e.challenge(c)
	proof, err := c.SignRefreshProof(ch)
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := c.PostRefresh(ctx, id, proof); resp.StatusCode != 200 {
		t.Fatalf("first use = %d %s", resp.StatusCode, body(t, resp))
	}
	resp, _ := c.PostRefresh(ctx, id, proof)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Header.Get(dbsc.HeaderChallenge), `;id="`+id+`"`) {
		t.Fatalf("replay = %d %v, want 403 with a new challenge", resp.StatusCode, resp.Header)
	}

	// Clock skew: 64 s after issue (expiry 60 s + 4 s) still passes.
	ch = e.challenge(c)
	e.clock.Advance(dbsc.DefaultChallengeTTL + 4*time.Second)
	proof, _ = c.SignRefreshProof(ch)
	if resp, _ := c.PostRefresh(ctx, id, proof); resp.StatusCode != 200 {
		t.Fatalf("within skew = %d %s", resp.StatusCode, body(t, resp))
	}
	// 66 s: stale.
	ch = e.challenge(c)
	e.clock.Advance(dbsc.DefaultChallengeTTL + 6*time.Second)
	proof, _ = c.SignRefreshProof(ch)
	resp, _ = c.PostRefresh(ctx, id, proof)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body(t, resp), "expired challenge") || resp.Header.Get(dbsc.HeaderChallenge) == "" {
		t.Fatalf("stale challenge = %d", resp.StatusCode)
	}
	// The client's ordinary refresh recovers from all of this.
	e.clock.Advance(dbsc.DefaultCredentialTTL)
	e.wantSignedIn(c, "alice bound")
	if c.Ended.Load() != 0 {
		t.Fatal("session ended")
	}
}

// A challenge is good only for the session (and binding) it was issued
// for: another bound session's proof over it is refused.
func TestChallengeBoundToSession(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.client(nil), e.client(nil)
	e.login(a)
	e.login(b)
	chA := e.challenge(a)
	proof, err := b.SignRefreshProof(chA)
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := b.PostRefresh(ctx, b.Session().ID, proof)
	if text := body(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(text, "invalid challenge") {
		t.Fatalf("B with A's challenge = %d %q", resp.StatusCode, text)
	}
	// A can still use it.
	proof, _ = a.SignRefreshProof(chA)
	if resp, _ := a.PostRefresh(ctx, a.Session().ID, proof); resp.StatusCode != 200 {
		t.Fatalf("A with its challenge = %d", resp.StatusCode)
	}
}

// Two tabs refresh at the same moment with the same cached challenge (as
// Chromium may reuse a signed proof): both end up with a valid bound
// cookie, one of them after one more challenge round; nobody is signed out.
func TestConcurrentRefreshes(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(nil)
	e.login(c)
	for round := range 10 {
		e.clock.Advance(dbsc.DefaultCredentialTTL + time.Second)
		// Prime a shared cached challenge, as after a previous refresh.
		e.challenge(c)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = c.Refresh(ctx)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d tab %d: %v", round, i, err)
			}
		}
		e.wantSignedIn(c, "alice bound")
	}
	if c.Ended.Load() != 0 || c.Session() == nil {
		t.Fatal("a concurrent refresh ended the session")
	}
	// In every round the tabs that did not win the shared challenge were
	// asked for a new signature (the path under test).
	if n := c.Challenged.Load(); n < 10 {
		t.Fatalf("only %d challenge answers: the race on one challenge was not exercised", n)
	}
}

// Refreshes for sessions that are gone or no longer bound to the key end
// the browser's device-bound session ({"continue":false}) and set no cookie.
func TestRefreshEndsStaleSessions(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(nil)
	key := e.login(c)
	id := c.Session().ID

	var sentID string
	wantEnd := func(name string, resp *http.Response) {
		t.Helper()
		var cfg map[string]any
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body(t, resp)), &cfg) != nil || cfg["continue"] != false || cfg["session_identifier"] != sentID || resp.Header.Get("Set-Cookie") != "" {
			t.Fatalf("%s: %d %v %v, want 200 {\"continue\":false} without cookies", name, resp.StatusCode, cfg, resp.Header)
		}
	}
	// Another identifier than the binding's (a re-registered browser's old
	// DBSC session).
	sentID = "some-old-id"
	resp, _ := c.PostRefresh(ctx, sentID, "")
	wantEnd("other id", resp)
	sentID = id
	// No session cookie at all: an unknown session.
	stranger := e.client(nil)
	resp, _ = stranger.PostRefresh(ctx, id, "")
	wantEnd("unknown session", resp)
	// Revoked.
	e.store.Revoke(key)
	resp, _ = c.PostRefresh(ctx, id, "")
	wantEnd("revoked", resp)

	// Requests the endpoint refuses outright.
	for name, h := range map[string]http.Header{
		"no session id": {},
		"two ids":       {dbsc.HeaderSessionID: {"a", "b"}},
		"cross-site":    {dbsc.HeaderSessionID: {id}, "Sec-Fetch-Site": {"cross-site"}},
	} {
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/dbsc/refresh", nil)
		req.Header = h
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 && resp.StatusCode != 403 || resp.Header.Get(dbsc.HeaderChallenge) != "" {
			t.Errorf("%s: %d %v", name, resp.StatusCode, resp.Header)
		}
	}
	resp, _ = e.ts.Client().Get(e.ts.URL + "/dbsc/refresh")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET refresh = %d", resp.StatusCode)
	}
}

func TestRegistrationRefuses(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tamper func(*dbsctest.ProofSpec)
		status int
		text   string
	}{
		{"signed by another key than the jwk", func(s *dbsctest.ProofSpec) { s.Signer = mustP256(t) }, 400, "bad proof signature"},
		{"alg none", func(s *dbsctest.ProofSpec) { s.Alg, s.Signer = "none", nil }, 400, "algorithm not allowed"},
		{"HS256", func(s *dbsctest.ProofSpec) { s.Alg, s.HMACKey = "HS256", []byte("secret") }, 400, "algorithm not allowed"},
		{"P-384 key", func(s *dbsctest.ProofSpec) { s.Signer, s.JWK, s.Alg = p384, &p384.PublicKey, "ES256" }, 400, "curve"},
		{"RSA-1024 key", func(s *dbsctest.ProofSpec) { s.Signer, s.JWK, s.Alg = rsa1024, &rsa1024.PublicKey, "RS256" }, 400, "1024 bits"},
		{"no jwk", func(s *dbsctest.ProofSpec) { s.JWK = nil }, 400, "no jwk"},
		{"wrong typ", func(s *dbsctest.ProofSpec) { s.Typ = "JWT" }, 400, "typ"},
		{"forged challenge", func(s *dbsctest.ProofSpec) { s.Challenge = strings.Repeat("A", 56) }, 403, "invalid challenge"},
		{"no challenge", func(s *dbsctest.ProofSpec) { s.OmitJTI = true }, 400, "jti"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			c := e.client(func(c *dbsctest.Client) {
				c.Tamper = func(kind string, s *dbsctest.ProofSpec) {
					if kind == "registration" {
						tc.tamper(s)
					}
				}
			})
			_, _, err := c.Get(ctx, "/login")
			if err == nil || !strings.Contains(err.Error(), tc.text) || !strings.Contains(err.Error(), "answered "+strconv.Itoa(tc.status)) {
				t.Fatalf("registration error %v, want %d %q", err, tc.status, tc.text)
			}
			if e.store.Binds.Load() != 0 {
				t.Fatal("a refused registration stored a binding")
			}
			// The session works unbound, as without DBSC.
			e.wantSignedIn(c, "alice unbound")
		})
	}
}

func TestRegistrationChallengeRules(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(func(c *dbsctest.Client) { c.NoAutoRegister = true })
	e.login(c)
	reg := c.LastRegistration()
	chal := regexp.MustCompile(`challenge="([^"]+)"`).FindStringSubmatch(reg)[1]
	k := mustP256(t)
	proof := sign(t, dbsctest.ProofSpec{Signer: k, JWK: &k.PublicKey, Challenge: chal})

	// Without the session cookie: no session to bind.
	stranger := e.client(nil)
	if resp, _ := stranger.PostRegistration(ctx, "/dbsc/register", proof); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no session: %d", resp.StatusCode)
	}
	// Another session's cookie: the challenge is not for it.
	other := e.client(func(c *dbsctest.Client) { c.NoAutoRegister = true })
	e.login(other)
	if resp, _ := other.PostRegistration(ctx, "/dbsc/register", proof); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("another session: %d", resp.StatusCode)
	}
	// No proof.
	if resp, _ := c.PostRegistration(ctx, "/dbsc/register", ""); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("no proof: %d", resp.StatusCode)
	}
	// Expired: registration challenges live 5 minutes (+5 s skew).
	e.clock.Advance(dbsc.DefaultRegistrationTTL + 6*time.Second)
	if resp, _ := c.PostRegistration(ctx, "/dbsc/register", proof); resp.StatusCode != http.StatusForbidden || !strings.Contains(body(t, resp), "expired") {
		t.Fatalf("expired: %d", resp.StatusCode)
	}
	// A fresh one works once, then is used up.
	e.login(c)
	chal = regexp.MustCompile(`challenge="([^"]+)"`).FindStringSubmatch(c.LastRegistration())[1]
	proof = sign(t, dbsctest.ProofSpec{Signer: k, JWK: &k.PublicKey, Challenge: chal})
	if resp, _ := c.PostRegistration(ctx, "/dbsc/register", proof); resp.StatusCode != 200 {
		t.Fatalf("fresh: %d %s", resp.StatusCode, body(t, resp))
	}
	if resp, _ := c.PostRegistration(ctx, "/dbsc/register", proof); resp.StatusCode != http.StatusForbidden || !strings.Contains(body(t, resp), "already used") {
		t.Fatalf("replay: %d", resp.StatusCode)
	}
}

// A new sign-in in the same browser binds a new key with a new secret: the
// old bound cookie dies with the old binding.
func TestRebindingVoidsOldCredentials(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(nil)
	e.login(c)
	oldID := c.Session().ID
	oldCookie, _ := c.Cookie(e.srv.CookieName())
	key := e.login(c) // new session, new registration
	if c.Session().ID == oldID {
		t.Fatal("same binding after a new sign-in")
	}
	b := e.store.Binding(key)
	if err := dbsc.VerifyCredential(b.Secret, oldCookie, e.clock.Now(), 0); !errors.Is(err, dbsc.ErrCredentialInvalid) {
		t.Fatalf("old cookie against the new binding: %v", err)
	}
	e.wantSignedIn(c, "alice bound")
}

// Rotating the session token (Login, CycleKey) keeps the binding and the
// bound cookie valid.
func TestTokenRotationKeepsBinding(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(nil)
	key := e.login(c)
	rec := httptest.NewRecorder()
	newKey, err := e.store.Rotate(rec, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range rec.Result().Cookies() {
		c.SetCookie(ck.Name, ck.Value)
	}
	e.wantSignedIn(c, "alice bound")
	e.clock.Advance(dbsc.DefaultCredentialTTL + 6*time.Second)
	e.wantSignedIn(c, "alice bound") // refresh against the rotated session
	if e.store.Binding(newKey) == nil {
		t.Fatal("binding lost")
	}
}

// Chrome's first origin trial: Sec-Session-* names, 401 challenges, typ
// "jwt" with the key in the payload.
func TestLegacyChrome(t *testing.T) {
	e := newEnv(t, func(c *dbsc.Config) { c.LegacyHeaders = true })
	c := e.client(func(c *dbsctest.Client) { c.Legacy = true })
	e.login(c)
	if c.Session() == nil {
		t.Fatal("legacy client did not register")
	}
	e.clock.Advance(dbsc.DefaultCredentialTTL + 6*time.Second)
	e.wantSignedIn(c, "alice bound")
	if c.Challenged.Load() != 1 || c.Ended.Load() != 0 {
		t.Fatalf("challenged %d, ended %d", c.Challenged.Load(), c.Ended.Load())
	}
	// Modern names stay strict: the legacy JWT shape is refused under them.
	ec := mustP256(t)
	legacyProof := sign(t, dbsctest.ProofSpec{Signer: ec, JWK: &ec.PublicKey, Legacy: true, Challenge: "x"})
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/dbsc/register", nil)
	req.Header.Set(dbsc.HeaderResponse, legacyProof)
	for n, v := range c.Cookies() {
		req.AddCookie(&http.Cookie{Name: n, Value: v})
	}
	resp, _ := e.ts.Client().Do(req)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body(t, resp), "typ") {
		t.Fatalf("legacy JWT under the new header = %d", resp.StatusCode)
	}
}

// With PrefetchChallenges each refresh is one POST.
func TestPrefetchChallenges(t *testing.T) {
	e := newEnv(t, func(c *dbsc.Config) { c.PrefetchChallenges = true })
	c := e.client(nil)
	e.login(c)
	if c.Session().Challenge == "" {
		t.Fatal("no challenge with the registration answer")
	}
	for range 3 {
		before := c.RefreshPOSTs.Load()
		e.clock.Advance(dbsc.DefaultCredentialTTL + time.Second)
		e.wantSignedIn(c, "alice bound")
		if n := c.RefreshPOSTs.Load() - before; n != 1 {
			t.Fatalf("refresh took %d POSTs, want 1", n)
		}
	}
}

// Processes sharing challenge keys and a replay guard accept each other's
// challenges and refuse each other's replays.
func TestSeveralProcesses(t *testing.T) {
	keys := [][]byte{[]byte(strings.Repeat("s", 32))}
	clock := newClock()
	guard := dbsc.NewMemoryReplayGuard(0, clock.Now) // stands in for memcached add
	store := dbsctest.NewMemStore()
	var servers []*httptest.Server
	for range 2 {
		srv, err := dbsc.New(dbsc.Config{Store: store, ChallengeKeys: keys, ReplayGuard: guard, Now: clock.Now, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewTLSServer(dbsctest.NewApp(srv, store))
		defer ts.Close()
		servers = append(servers, ts)
	}
	// Sign in on process 0, register on process 1 (a load balancer).
	c, _ := dbsctest.NewClient(servers[0].URL, servers[0].Client())
	c.Now, c.NoAutoRegister = clock.Now, true
	if code, _, err := c.Get(ctx, "/login"); err != nil || code != 200 {
		t.Fatal(code, err)
	}
	c1, _ := dbsctest.NewClient(servers[1].URL, servers[1].Client())
	c1.Now = clock.Now
	for n, v := range c.Cookies() {
		c1.SetCookie(n, v)
	}
	u := mustURL(t, servers[1].URL)
	if err := c1.Register(ctx, c.LastRegistration(), u); err != nil {
		t.Fatalf("registration on another process: %v", err)
	}
	// The registration challenge, used on process 1, is refused on 0.
	if resp, _ := c.PostRegistration(ctx, "/dbsc/register", c1.LastProof()); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("replay on the other process = %d", resp.StatusCode)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestNewRefusesBadConfig(t *testing.T) {
	store := dbsctest.NewMemStore()
	for name, cfg := range map[string]dbsc.Config{
		"no store":            {},
		"prefix without /":    {Store: store, Prefix: "dbsc"},
		"prefix ending in /":  {Store: store, Prefix: "/dbsc/"},
		"prefix with a quote": {Store: store, Prefix: `/d"b`},
		"short key":           {Store: store, ChallengeKeys: [][]byte{make([]byte, 16)}},
		"HS256":               {Store: store, Algorithms: []string{"HS256"}},
		"none":                {Store: store, Algorithms: []string{"none"}},
		"tiny challenge TTL":  {Store: store, ChallengeTTL: time.Second},
		"tiny credential TTL": {Store: store, CredentialTTL: time.Second},
		"negative skew":       {Store: store, ClockSkew: -time.Second},
		"huge skew":           {Store: store, ClockSkew: time.Hour},
		"tiny proof limit":    {Store: store, MaxProofBytes: 10},
		"insecure __Host-":    {Store: store, Cookie: dbsc.Cookie{Name: "__Host-b", Insecure: true}},
		"__Host- with domain": {Store: store, Cookie: dbsc.Cookie{Name: "__Host-b", Domain: "example.com"}},
		"bad cookie name":     {Store: store, Cookie: dbsc.Cookie{Name: "a b"}},
		"bad scope rule":      {Store: store, Scope: dbsc.Scope{Rules: []dbsc.ScopeRule{{Type: "maybe"}}}},
		"bad scope origin":    {Store: store, Scope: dbsc.Scope{Origin: "example.com/path"}},
	} {
		if _, err := dbsc.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	srv, err := dbsc.New(dbsc.Config{Store: store, Cookie: dbsc.Cookie{Insecure: true}})
	if err != nil || srv.CookieName() != "qsessions_dbsc" || srv.RegistrationPath() != "/dbsc/register" || srv.RefreshPath() != "/dbsc/refresh" {
		t.Fatalf("defaults: %v %v", srv, err)
	}
}

func TestSessionConfigJSON(t *testing.T) {
	e := newEnv(t, func(c *dbsc.Config) {
		c.Scope = dbsc.Scope{Origin: "https://example.com", IncludeSite: true, Rules: []dbsc.ScopeRule{{Type: "exclude", Path: "/static"}}}
		c.AllowedRefreshInitiators = []string{"*.example.com"}
		c.Cookie = dbsc.Cookie{Name: "__Secure-b", Domain: "example.com", SameSite: http.SameSiteStrictMode}
	})
	c := e.client(nil)
	e.login(c)
	got := c.Session().Config
	raw, _ := json.Marshal(got)
	want := `{"allowed_refresh_initiators":["*.example.com"],"credentials":[{"attributes":"Domain=example.com; Path=/; Secure; HttpOnly; SameSite=Strict","name":"__Secure-b","type":"cookie"}],"refresh_url":"/dbsc/refresh","scope":{"include_site":true,"origin":"https://example.com","scope_specification":[{"path":"/static","type":"exclude"}]},"session_identifier":"` + c.Session().ID + `"}`
	if string(raw) != want {
		t.Fatalf("session configuration\n got %s\nwant %s", raw, want)
	}
}

// CheckRequest is what the middleware will call.
func TestCheckRequest(t *testing.T) {
	e := newEnv(t, nil)
	k := mustDeviceKey(t, &mustP256(t).PublicKey)
	b := &dbsc.Binding{Key: k, Secret: make([]byte, dbsc.SecretLen)}
	r := httptest.NewRequest("GET", "/", nil)
	if err := e.srv.CheckRequest(r, nil); err != nil {
		t.Fatalf("unbound session: %v", err)
	}
	if err := e.srv.CheckRequest(r, b); !errors.Is(err, dbsc.ErrNoCredential) {
		t.Fatalf("no cookie: %v", err)
	}
	good, _ := dbsc.MintCredential(b.Secret, e.clock.Now().Add(time.Minute))
	r.AddCookie(&http.Cookie{Name: e.srv.CookieName(), Value: "junk"})
	r.AddCookie(&http.Cookie{Name: e.srv.CookieName(), Value: good})
	if err := e.srv.CheckRequest(r, b); err != nil {
		t.Fatalf("second cookie is valid: %v", err)
	}
	e.clock.Advance(time.Minute + 6*time.Second)
	if err := e.srv.CheckRequest(r, b); !errors.Is(err, dbsc.ErrCredentialExpired) {
		t.Fatalf("expired: %v", err)
	}
}
