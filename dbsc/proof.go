package dbsc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"math/big"
	"slices"
	"strings"
)

// DefaultMaxProofBytes bounds a proof (the JWT's compact serialization)
// before any decoding: 8 KiB. A registration proof with a 4096-bit RSA key
// is about 2 KiB; Go's server accepts 1 MiB of headers, so without a bound
// an attacker could make every refresh decode a megabyte.
const DefaultMaxProofBytes = 8 << 10

// maxChallengeLen bounds the "jti" claim: challenges of this package are 56
// characters; a longer one cannot be ours.
const maxChallengeLen = 256

// ProofType is the JWT "typ" of DBSC proofs.
const ProofType = "dbsc+jwt"

// Proof is a DBSC proof whose signature has been verified. The challenge in
// it is not checked yet: that is the caller's business (the handlers do it).
type Proof struct {
	// Algorithm is the JWT's "alg": [ES256] or [RS256].
	Algorithm string
	// Key is the key the signature verified with: on registration the key
	// from the JWT (the device's new key), on refresh the stored key.
	Key *DeviceKey
	// Challenge is the "jti" claim: a copy of the server's challenge.
	Challenge string
	// Authorization is the "authorization" claim, the copy of the
	// registration header's authorization parameter; "" if absent.
	Authorization string
	// Legacy is true when the proof has the shape of Chrome's first origin
	// trial (typ "jwt", key in the payload's "key" claim).
	Legacy bool
}

// VerifyOptions says what kind of proof [VerifyProof] expects.
type VerifyOptions struct {
	// Key is the stored device key to verify a refresh proof with. Nil
	// means a registration proof: its key comes from the JWT header's "jwk"
	// (and then must be there). On refresh, a "jwk" in the header is an
	// error, as the draft says it "MUST not be present for refresh
	// requests".
	Key *DeviceKey
	// Algorithms are the allowed "alg" values; nil means ES256 and RS256.
	// Only ES256 and RS256 are ever accepted: "none" and HMAC algorithms
	// are refused whatever this list says.
	Algorithms []string
	// MaxBytes bounds the proof's length; 0 means [DefaultMaxProofBytes].
	MaxBytes int
	// Legacy accepts the JWT shape of Chrome's first origin trial too:
	// "typ" "jwt" and, on registration, the key in the payload's "key"
	// claim instead of the header's "jwk". The handlers set it only for
	// proofs that arrive in the old Sec-Session-Response header.
	Legacy bool
}

// VerifyProof parses token (a JWT in compact serialization) and verifies it
// as a DBSC proof: length at most opts.MaxBytes (checked before decoding),
// three strict base64url parts, a JSON header with "typ" "dbsc+jwt" and an
// allowed "alg" (ES256 or RS256, never "none" or HS256), no "crit", the key
// (opts.Key, or on registration the header's "jwk") of the type "alg" needs,
// a payload with a non-empty string "jti", and a valid signature (ES256: 64
// raw bytes r||s; RS256: PKCS #1 v1.5 of the key's size). "iat", "aud" and
// other claims are ignored: freshness comes from the single-use challenge,
// and a client's clock is not to be trusted with it.
//
// Every failure is an error wrapping one of [ErrProofTooLarge],
// [ErrProofMalformed], [ErrProofType], [ErrAlgorithm], [ErrKey],
// [ErrSignature]; VerifyProof never panics on any input. Cost: one
// signature verification (ES256 about 50 µs, RS256-2048 about 20 µs) plus
// decoding at most MaxBytes.
func VerifyProof(token string, opts VerifyOptions) (*Proof, error) {
	limit := opts.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxProofBytes
	}
	if len(token) > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrProofTooLarge, len(token), limit)
	}
	h64, rest, ok1 := strings.Cut(token, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") {
		return nil, fmt.Errorf("%w: not three dot-separated parts", ErrProofMalformed)
	}
	hb, err := b64.DecodeString(h64)
	if err != nil {
		return nil, fmt.Errorf("%w: header is not base64url without padding", ErrProofMalformed)
	}
	pb, err := b64.DecodeString(p64)
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not base64url without padding", ErrProofMalformed)
	}
	sig, err := b64.DecodeString(s64)
	if err != nil {
		return nil, fmt.Errorf("%w: signature is not base64url without padding", ErrProofMalformed)
	}
	header, err := decodeObject(hb)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrProofMalformed, err)
	}
	payload, err := decodeObject(pb)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrProofMalformed, err)
	}

	p := &Proof{}
	typ, err := stringMember(header, "typ")
	if err != nil {
		return nil, fmt.Errorf("%w: header %v", ErrProofType, err)
	}
	// Media types are case-insensitive and RFC 7515 allows the
	// "application/" prefix.
	typ = strings.TrimPrefix(strings.ToLower(typ), "application/")
	switch {
	case typ == ProofType:
	case opts.Legacy && typ == "jwt":
		p.Legacy = true
	default:
		return nil, fmt.Errorf("%w: typ %q", ErrProofType, typ)
	}

	alg, err := stringMember(header, "alg")
	if err != nil {
		return nil, fmt.Errorf("%w: header %v", ErrAlgorithm, err)
	}
	allowed := opts.Algorithms
	if allowed == nil {
		allowed = []string{ES256, RS256}
	}
	if (alg != ES256 && alg != RS256) || !slices.Contains(allowed, alg) {
		return nil, fmt.Errorf("%w: alg %q", ErrAlgorithm, alg)
	}
	p.Algorithm = alg
	if _, ok := header["crit"]; ok {
		return nil, fmt.Errorf("%w: header has crit extensions this server does not understand", ErrProofMalformed)
	}

	jti, err := stringMember(payload, "jti")
	if err != nil {
		return nil, fmt.Errorf("%w: payload %v", ErrProofMalformed, err)
	}
	if jti == "" || len(jti) > maxChallengeLen {
		return nil, fmt.Errorf("%w: jti of %d bytes", ErrProofMalformed, len(jti))
	}
	p.Challenge = jti
	if _, ok := payload["authorization"]; ok {
		if p.Authorization, err = stringMember(payload, "authorization"); err != nil {
			return nil, fmt.Errorf("%w: payload %v", ErrProofMalformed, err)
		}
	}

	jwk, hasJWK := header["jwk"]
	if opts.Key != nil {
		if hasJWK {
			return nil, fmt.Errorf("%w: refresh proof carries a jwk", ErrKey)
		}
		p.Key = opts.Key
	} else {
		if !hasJWK && p.Legacy {
			jwk, hasJWK = payload["key"]
		}
		if !hasJWK {
			return nil, fmt.Errorf("%w: registration proof has no jwk", ErrKey)
		}
		if p.Key, err = ParseDeviceKey(jwk); err != nil {
			return nil, err
		}
	}
	if p.Key.Algorithm() != alg {
		return nil, fmt.Errorf("%w: alg %s with a key for %s", ErrKey, alg, p.Key.Algorithm())
	}

	digest := sha256.Sum256([]byte(token[:len(h64)+1+len(p64)]))
	switch alg {
	case ES256:
		if len(sig) != 64 {
			return nil, fmt.Errorf("%w: ES256 signature of %d bytes, want 64 (r||s)", ErrSignature, len(sig))
		}
		r := new(big.Int).SetBytes(sig[:32])
		s := new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(p.Key.ec, digest[:], r, s) {
			return nil, fmt.Errorf("%w: ES256", ErrSignature)
		}
	case RS256:
		if len(sig) != p.Key.rsa.Size() {
			return nil, fmt.Errorf("%w: RS256 signature of %d bytes, want %d", ErrSignature, len(sig), p.Key.rsa.Size())
		}
		if rsa.VerifyPKCS1v15(p.Key.rsa, crypto.SHA256, digest[:], sig) != nil {
			return nil, fmt.Errorf("%w: RS256", ErrSignature)
		}
	}
	return p, nil
}
