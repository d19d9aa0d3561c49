// Package dbsc is the server side of Device Bound Session Credentials
// (DBSC): it lets a browser bind a qsessions session to a private key that
// never leaves the device, so that a stolen session cookie is worth minutes,
// not weeks.
//
// # The protocol, as this package implements it
//
// This package follows the W3C WebAppSec editor's draft "Device Bound
// Session Credentials" at commit d34681127abcef5fad67a1fd99cd0849f7b9b4b0
// of github.com/w3c/webappsec-dbsc (spec.bs, 2026-02-17, "Update `jwk`
// field requirements for none keys (#246)"), checked against Chromium's
// implementation (net/device_bound_sessions: registration_fetcher.cc,
// session_binding_utils.cc) where the draft is silent or its examples are
// stale.
//
// Sign-in. The app calls [Server.StartRegistration] on the response that
// signs the user in. It adds
//
//	Secure-Session-Registration: (ES256 RS256);path="/dbsc/register";challenge="…"
//
// The challenge is single-use, lives [DefaultRegistrationTTL] and is bound
// to the session it was issued for (see [ReplayGuard]).
//
// Registration. A browser with DBSC creates a key pair and POSTs to the path
// with the header Secure-Session-Response: a JWT (header
// {"typ":"dbsc+jwt","alg":"ES256"|"RS256","jwk":{public key}}, payload
// {"jti": challenge}) signed with the new key. The registration handler
// verifies it ([VerifyProof]), stores the key and a fresh random per-binding
// secret with the session ([Store.Bind]), sets the first bound cookie and
// answers the JSON session configuration ([SessionConfig]):
// session_identifier (the key's RFC 7638 thumbprint), refresh_url, scope,
// and credentials (the bound cookie's name and attributes).
//
// Bound requests. From then on every request of the session must carry the
// bound cookie, a short-lived credential ([DefaultCredentialTTL]) that the
// session middleware checks with [VerifyCredential] using only the secret
// stored in the session row: no database round trip beyond the session load
// it already does. A request of a bound session without a valid, unexpired
// bound cookie is not signed in.
//
// Refresh. When the bound cookie is missing (it expired), the browser holds
// the request and POSTs to refresh_url with Sec-Secure-Session-Id: the
// session identifier, and, if it holds a challenge for the session,
// Secure-Session-Response: a JWT (no jwk) signed with the device key.
// Without a proof, or with a stale, replayed or foreign challenge, the
// handler answers 403 with a fresh challenge:
//
//	Secure-Session-Challenge: "…";id="<session identifier>"
//
// and the browser signs it and retries. (The draft uses 403 since commit
// 46584d3, April 2025; Chromium treats 403 as "sign this challenge" and any
// other 4xx on a refresh as "end the device-bound session", so a 401 here
// would silently unbind the browser.) With a valid proof it sets a fresh
// bound cookie and answers the session configuration again. A refresh for a
// session that is gone (revoked, expired, unknown) or no longer bound to
// that key answers {"session_identifier":…, "continue":false}: the browser
// drops its device-bound session, and the user is signed out, as they
// should be.
//
// A browser without DBSC ignores the registration header; its session is
// never bound and behaves exactly as without this package.
//
// # What Chromium 156 does (checked by the demo's TestDBSCChromium)
//
// With these flags on Linux (software keys, no origin-trial token, no quota)
//
//	--enable-features=DeviceBoundSessions:RequireOriginTrialTokens/false/RefreshQuota/false,EnableBoundSessionCredentialsSoftwareKeysForManualTesting
//	--disable-features=DeviceBoundSessionSigningQuotaAndCaching
//
// Chromium registers and refreshes against this package. It
// sends Secure-Session-Response and Sec-Secure-Session-Id as bare values
// (not the quoted sf-strings of the draft's examples; both are accepted),
// proofs with a sorted JSON header {"alg":"ES256","jwk":…,"typ":"dbsc+jwt"}
// and a payload of only {"jti":…}, the ordinary session cookie on both
// requests, and Origin and Sec-Fetch-Site: same-origin. It ignores the
// registration header on plain HTTP (even http://localhost, which the draft
// allows) and on HTTPS with certificate errors (--ignore-certificate-errors
// does not count; a certificate trusted by
// --ignore-certificate-errors-spki-list does, for https://localhost too). It
// registers from the header on a 303 redirect as on a 200. It refreshes proactively
// from 120 s before the bound cookie expires, reuses a signed proof for the
// same challenge, and allows 6 signatures per 9 minutes per site.
//
// # Older Chrome versions
//
// Chrome's first origin trial (M135-M139) spoke the draft of early 2025:
// headers Sec-Session-Registration, Sec-Session-Challenge,
// Sec-Session-Response and Sec-Session-Id, a 401 (not 403) to ask for a
// signed challenge, and JWTs with "typ":"jwt" and the public key in the
// payload's "key" claim (plus "aud" and "iat"). Requests under the old
// header names are always accepted: a refresh that arrives with
// Sec-Session-Id (and no Sec-Secure-Session-Id) is answered in the old
// dialect (401 and Sec-Session-Challenge), and a proof that arrives in
// Sec-Session-Response may use the old JWT shape. The old registration
// header is sent only with [Config.LegacyHeaders]; current Chromium parses
// only Secure-Session-Registration.
//
// # What the session layer provides
//
// The handlers talk to the session layer through [Store] (find the
// request's ordinary session, store a binding). [NewManagerStore] is the
// Store over a qsessions Manager: the session row keeps the [Binding] in
// its dbsc_key and dbsc_secret columns (see [Binding]), written by
// Backend.Bind; every load of the session reads them, and cached_db caches
// them with the entry. The session itself checks the bound cookie
// (backend.VerifyBound, the same code as [VerifyCredential]) when it loads
// a bound row, so the middleware needs nothing from this package but the
// cookie's name (middleware.Options.BoundCookie, the same default). The
// long-lived session cookie and the bound cookie are two cookies: a
// rotation of the token (Login, CycleKey) carries the binding to the new
// row and the bound cookie stays valid; a revoke deletes the row, which
// ends both at once.
//
// Apps with several processes give them the same [Config.ChallengeKeys]
// and a shared [ReplayGuard]: [NewCacheReplayGuard] over their memcached
// servers.
//
// # What it costs
//
// Per request of a bound session: one HMAC-SHA256 over a few bytes and a
// constant-time compare in [VerifyCredential] (about 1 µs, 608 bytes in
// 10 allocations). Per bound session and
// [Config.CredentialTTL] of activity: one refresh, that is two POSTs (one
// answered 403 with a challenge, one with the signed proof; one POST with
// [Config.PrefetchChallenges]), one [Store.Session] call each, one signature
// verification and one [ReplayGuard.Use]; no database write. Per
// registration: one signature verification, one [ReplayGuard.Use] and one
// [Store.Bind] (one UPDATE).
package dbsc
