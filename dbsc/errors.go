package dbsc

import (
	"errors"

	"github.com/qsessions/qsessions/backend"
)

// Errors of proof verification ([VerifyProof]). Returned errors wrap one of
// these with a detail; test with errors.Is.
var (
	// ErrProofMissing: the request carries no Secure-Session-Response (nor
	// Sec-Session-Response) header.
	ErrProofMissing = errors.New("dbsc: no proof")
	// ErrProofTooLarge: the proof is longer than the limit
	// ([DefaultMaxProofBytes] unless configured); nothing of it was decoded.
	ErrProofTooLarge = errors.New("dbsc: proof too large")
	// ErrProofMalformed: the proof is not a compact JWS of three strict
	// base64url parts holding JSON objects with the claims the draft
	// requires, each of the right type, without duplicate names.
	ErrProofMalformed = errors.New("dbsc: malformed proof")
	// ErrProofType: the JWT's "typ" is not "dbsc+jwt".
	ErrProofType = errors.New("dbsc: proof typ is not dbsc+jwt")
	// ErrAlgorithm: the JWT's "alg" is not one of the allowed algorithms
	// (ES256, RS256); "none" and the HMAC algorithms (HS256...) are never
	// allowed.
	ErrAlgorithm = errors.New("dbsc: proof algorithm not allowed")
	// ErrKey: the public key is missing where required, present where
	// forbidden, not a valid JWK, of the wrong type for "alg", on the wrong
	// curve (ES256 needs P-256), of the wrong size (RS256 needs 2048 to
	// 4096 bits), or carries private members.
	ErrKey = errors.New("dbsc: unacceptable public key")
	// ErrSignature: the signature does not verify with the key.
	ErrSignature = errors.New("dbsc: bad proof signature")
)

// Errors of challenges.
var (
	// ErrChallengeInvalid: the challenge was not issued by this server (any
	// of its challenge keys), was issued for another session or purpose, or
	// is malformed.
	ErrChallengeInvalid = errors.New("dbsc: invalid challenge")
	// ErrChallengeExpired: the challenge is older than its lifetime plus the
	// allowed clock skew.
	ErrChallengeExpired = errors.New("dbsc: expired challenge")
	// ErrChallengeUsed: the challenge was already used once.
	ErrChallengeUsed = errors.New("dbsc: challenge already used")
)

// Errors of bound credentials ([VerifyCredential]). They are the core's
// errors of backend.VerifyBound under this package's names, so errors.Is
// matches either name.
var (
	// ErrNoCredential: the request of a bound session carries no bound
	// cookie (backend.ErrNoBound).
	ErrNoCredential = backend.ErrNoBound
	// ErrCredentialInvalid: the bound cookie was not minted with this
	// session's secret, or is malformed (backend.ErrBoundInvalid).
	ErrCredentialInvalid = backend.ErrBoundInvalid
	// ErrCredentialExpired: the bound cookie's lifetime (plus the allowed
	// clock skew) is over (backend.ErrBoundExpired).
	ErrCredentialExpired = backend.ErrBoundExpired
)

// Errors the [Store] returns.
var (
	// ErrNoSession: the request has no live session (no cookie; unknown,
	// expired or revoked session). A Store returns it (or wraps it); the
	// handlers answer it as "this device-bound session is over".
	ErrNoSession = errors.New("dbsc: no live session")
)
