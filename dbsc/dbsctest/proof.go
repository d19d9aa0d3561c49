// Package dbsctest is a DBSC protocol client written from the W3C draft
// (github.com/w3c/webappsec-dbsc, commit d346811), with software ECDSA
// P-256 and RSA-2048 keys, for tests of servers such as package dbsc: it
// reads the registration header, signs and POSTs the registration proof,
// sends bound requests, notices an expired bound cookie, answers refresh
// challenges, and misbehaves on demand. It also has an in-memory session
// store and a tiny app around a dbsc.Server for tests that have no real
// session layer.
//
// None of this is for production: the keys live in memory, and the client
// follows one origin only.
package dbsctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

var b64 = base64.RawURLEncoding

// ProofSpec describes a DBSC proof (a JWT) to sign with [SignProof]. The
// zero value of a field gives the well-formed default; tests change fields
// to misbehave.
type ProofSpec struct {
	// Signer signs the proof: *ecdsa.PrivateKey or *rsa.PrivateKey. It may
	// be nil only with Alg "none" or an HMACKey.
	Signer crypto.Signer
	// Alg is the header's "alg"; default ES256 for an ECDSA Signer, RS256
	// for an RSA one.
	Alg string
	// Typ is the header's "typ"; default "dbsc+jwt" ("jwt" with Legacy).
	Typ string
	// JWK is the public key put in the header's "jwk" (registration); nil
	// means none (refresh). It need not belong to Signer.
	JWK crypto.PublicKey
	// Legacy builds the shape of Chrome's first origin trial: typ "jwt",
	// the key in the payload's "key" claim, and "aud" and "iat" claims.
	Legacy bool
	// Audience is the legacy "aud" claim (the URL the proof is sent to).
	Audience string
	// Challenge is the "jti" claim; omitted when OmitJTI.
	Challenge string
	// OmitJTI leaves "jti" out.
	OmitJTI bool
	// Authorization, when set, is the "authorization" claim.
	Authorization string
	// HMACKey, when set, signs with HMAC-SHA256 instead of Signer (for
	// alg-confusion tests; set Alg to "HS256").
	HMACKey []byte
	// ExtraHeader and ExtraPayload add or replace members.
	ExtraHeader  map[string]any
	ExtraPayload map[string]any
}

// JWK returns the public JWK (RFC 7517) of an ECDSA (any NIST curve) or RSA
// public key as a JSON-ready map. It does not judge the key: tests use it
// to send keys the server must refuse.
func JWK(pub crypto.PublicKey) (map[string]any, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		raw, err := k.Bytes()
		if err != nil {
			return nil, err
		}
		return map[string]any{
			"kty": "EC", "crv": k.Curve.Params().Name,
			"x": b64.EncodeToString(raw[1 : 1+size]), "y": b64.EncodeToString(raw[1+size:]),
		}, nil
	case *rsa.PublicKey:
		return map[string]any{
			"kty": "RSA",
			"n":   b64.EncodeToString(k.N.Bytes()),
			"e":   b64.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
		}, nil
	default:
		return nil, fmt.Errorf("dbsctest: unsupported public key %T", pub)
	}
}

// SignProof builds and signs the proof described by spec, as a browser
// does: base64url(header) "." base64url(payload) "." base64url(signature),
// ES256 signatures as 64 raw bytes r||s (P-256; other curves give their own
// size), RS256 as PKCS #1 v1.5 with SHA-256, "none" as an empty signature.
func SignProof(spec ProofSpec) (string, error) {
	alg := spec.Alg
	if alg == "" {
		switch spec.Signer.(type) {
		case *ecdsa.PrivateKey:
			alg = "ES256"
		case *rsa.PrivateKey:
			alg = "RS256"
		default:
			return "", errors.New("dbsctest: ProofSpec needs a Signer or an Alg")
		}
	}
	typ := spec.Typ
	if typ == "" {
		typ = "dbsc+jwt"
		if spec.Legacy {
			typ = "jwt"
		}
	}
	header := map[string]any{"alg": alg, "typ": typ}
	payload := map[string]any{}
	if !spec.OmitJTI {
		payload["jti"] = spec.Challenge
	}
	if spec.Authorization != "" {
		payload["authorization"] = spec.Authorization
	}
	if spec.JWK != nil {
		jwk, err := JWK(spec.JWK)
		if err != nil {
			return "", err
		}
		if spec.Legacy {
			payload["key"] = jwk
		} else {
			header["jwk"] = jwk
		}
	}
	if spec.Legacy {
		payload["aud"] = spec.Audience
		payload["iat"] = 1725579055.0
	}
	for k, v := range spec.ExtraHeader {
		header[k] = v
	}
	for k, v := range spec.ExtraPayload {
		payload[k] = v
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	pb, err := json.Marshal(payload)
	if err != nil {
		return "", err
	}
	input := b64.EncodeToString(hb) + "." + b64.EncodeToString(pb)
	sig, err := sign(spec, alg, input)
	if err != nil {
		return "", err
	}
	return input + "." + b64.EncodeToString(sig), nil
}

func sign(spec ProofSpec, alg, input string) ([]byte, error) {
	if spec.HMACKey != nil {
		m := hmac.New(sha256.New, spec.HMACKey)
		m.Write([]byte(input))
		return m.Sum(nil), nil
	}
	if strings.EqualFold(alg, "none") || spec.Signer == nil {
		return nil, nil
	}
	digest := sha256.Sum256([]byte(input))
	switch k := spec.Signer.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			return nil, err
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		sig := make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
		return sig, nil
	case *rsa.PrivateKey:
		return rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
	default:
		return nil, fmt.Errorf("dbsctest: unsupported signer %T", spec.Signer)
	}
}

// NewKey returns a fresh software key for alg: ECDSA P-256 for "ES256",
// RSA-2048 for "RS256". Tests that need wrong keys generate them directly
// (elliptic.P384(), 1024-bit RSA).
func NewKey(alg string) (crypto.Signer, error) {
	switch alg {
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		return rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("dbsctest: no key for algorithm %q", alg)
	}
}
