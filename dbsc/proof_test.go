package dbsc_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/qsessions/qsessions/dbsc"
	"github.com/qsessions/qsessions/dbsc/dbsctest"
)

func sign(t *testing.T, spec dbsctest.ProofSpec) string {
	t.Helper()
	tok, err := dbsctest.SignProof(spec)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerifyProofAccepts(t *testing.T) {
	ec := mustP256(t)
	rs := mustRSA(t)
	for _, tc := range []struct {
		name string
		spec dbsctest.ProofSpec
		key  *dbsc.DeviceKey // refresh when set
		opts dbsc.VerifyOptions
	}{
		{name: "ES256 registration", spec: dbsctest.ProofSpec{Signer: ec, JWK: &ec.PublicKey, Challenge: "c1", Authorization: "ac"}},
		{name: "RS256 registration", spec: dbsctest.ProofSpec{Signer: rs, JWK: &rs.PublicKey, Challenge: "c1"}},
		{name: "ES256 refresh", spec: dbsctest.ProofSpec{Signer: ec, Challenge: "c1"}, key: mustDeviceKey(t, &ec.PublicKey)},
		{name: "RS256 refresh", spec: dbsctest.ProofSpec{Signer: rs, Challenge: "c1"}, key: mustDeviceKey(t, &rs.PublicKey)},
		{name: "typ with application/ and upper case", spec: dbsctest.ProofSpec{Signer: ec, JWK: &ec.PublicKey, Challenge: "c1", Typ: "application/DBSC+JWT"}},
		{name: "unknown claims ignored", spec: dbsctest.ProofSpec{Signer: ec, JWK: &ec.PublicKey, Challenge: "c1", ExtraPayload: map[string]any{"iat": "not even a number", "aud": 7}}},
		{name: "legacy registration", spec: dbsctest.ProofSpec{Signer: ec, JWK: &ec.PublicKey, Challenge: "c1", Legacy: true, Audience: "https://x/reg"}, opts: dbsc.VerifyOptions{Legacy: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Key = tc.key
			p, err := dbsc.VerifyProof(sign(t, tc.spec), opts)
			if err != nil {
				t.Fatal(err)
			}
			if p.Challenge != "c1" || p.Authorization != tc.spec.Authorization || p.Legacy != tc.spec.Legacy {
				t.Fatalf("proof %+v", p)
			}
			want, _ := dbsc.NewDeviceKey(tc.spec.Signer.Public())
			if !p.Key.Equal(want) || p.Algorithm != want.Algorithm() {
				t.Fatalf("key %s alg %s", p.Key, p.Algorithm)
			}
		})
	}
}

// Proofs signed outside Go (Python's cryptography package, with Chromium's
// JSON shapes: sorted members, raw r||s), so the r||s and PKCS #1 handling
// is checked against another implementation. (The draft's own example proof
// in spec.bs, section "Secure-Session-Response", does not verify with the
// key it shows, with this package or with Python's cryptography: it is
// illustrative only.)
func TestVerifyProofForeignVectors(t *testing.T) {
	const es256 = "eyJhbGciOiJFUzI1NiIsImp3ayI6eyJjcnYiOiJQLTI1NiIsImt0eSI6IkVDIiwieCI6IkkwdEpQdWJhdjdUT1ZsbnVneGZteGFoWTlOU1VBQXFDTG9qdjd2c2xBNDgiLCJ5IjoiSVpXc0dldG5oME9TSGFIY0RNQWdFUXFFT25rQmsxMlc2c3B2RzFpMkRfZyJ9LCJ0eXAiOiJkYnNjK2p3dCJ9.eyJhdXRob3JpemF0aW9uIjoiYWMiLCJqdGkiOiJjdiJ9.aagUqoUN7SEHMwe0p9dAq_o0tY7qywivGICNFOyoT_cwQkP5KOVpJfSkYdzPnRLi5eNDtV6DUKJU2PMFZZfcvQ"
	p, err := dbsc.VerifyProof(es256, dbsc.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Challenge != "cv" || p.Authorization != "ac" || p.Algorithm != dbsc.ES256 {
		t.Fatalf("%+v", p)
	}
	const rsaJWK = `{"e":"AQAB","kty":"RSA","n":"qc7RG2bhpr-jx23FN0AmIo4ZyBXKi0kCzlXISEB3Z8DTVC37YkLLaeWYx-xMrNcW-W1MAEGFZiDnTHVVV8tBulkCNkAHuz84Ye68PvlTBo7d4v9TOpK9k3u8Mng8k0cQl4aSUZ0Kz6mo0tuq9ChxNrxlBhbhzaej3quNSj7RfD-8RfOebUmFy5dq3ryAvNjuNyaFt132PTPqe4_DJtpkvfHRq_aUWpBUShsR5do15mv27K-v-2dNC_YVnSU0dufY68Xr2EzWOuJ-XDgSC2qCmidNycofTmSM0x31UoiGEIMD1mP7de5NDf6z8bBiIa7RFa2bYmEe7teuHWdW6MqlpQ"}`
	const rs256 = "eyJhbGciOiJSUzI1NiIsInR5cCI6ImRic2Mrand0In0.eyJqdGkiOiJyZWZyZXNoLWNoYWxsZW5nZSJ9.Iz2BLhaSB7ToSIsPi-wqstOwgt8uRQayiboSLxzNHtm26vuyosIIMz9vf9rxUwT2cT-uY6rsiTuQrBqRie8IGeuqMwi77osZFDmS6bZG_GiGfbZqrDq7n0VDfDsKF0an-De77J0p5kUyeEwhUIWXMtZTZRGnVwhr5SXUCqozVik8VQm4U3QkrlRtHRBP6dYsdDEiobrMk2ey4iaZV8DWyPLOj-NHS0McGnvGSlTargQJpUFQWJTbVdsBNrOCc7ng7TFMXLPdm4vIkl_u9NWG7CEiQiY6K6RinwFD-rWiELQU_u525sT24Qosp24QwoUm0F1NjnCMWz70lxfdrDc7EA"
	key, err := dbsc.ParseDeviceKey([]byte(rsaJWK))
	if err != nil {
		t.Fatal(err)
	}
	if key.String() != rsaJWK {
		t.Errorf("canonical form %s differs from the RFC 7638 input %s", key, rsaJWK)
	}
	if p, err = dbsc.VerifyProof(rs256, dbsc.VerifyOptions{Key: key}); err != nil || p.Challenge != "refresh-challenge" {
		t.Fatalf("%+v %v", p, err)
	}
	// One changed signature character must fail.
	for tok, opts := range map[string]dbsc.VerifyOptions{es256: {}, rs256: {Key: key}} {
		repl := byte('A')
		if tok[len(tok)-3] == 'A' {
			repl = 'B'
		}
		bad := tok[:len(tok)-3] + string(repl) + tok[len(tok)-2:]
		if _, err := dbsc.VerifyProof(bad, opts); !errors.Is(err, dbsc.ErrSignature) {
			t.Errorf("tampered foreign proof: %v", err)
		}
	}
}

func TestVerifyProofRefuses(t *testing.T) {
	ec := mustP256(t)
	other := mustP256(t)
	rs := mustRSA(t)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecKey := mustDeviceKey(t, &ec.PublicKey)
	rsKey := mustDeviceKey(t, &rs.PublicKey)
	jwkJSON := []byte(ecKey.String())
	good := sign(t, dbsctest.ProofSpec{Signer: ec, JWK: &ec.PublicKey, Challenge: "c"})
	parts := strings.Split(good, ".")
	enc := base64.RawURLEncoding.EncodeToString

	type tc struct {
		name string
		tok  string
		key  *dbsc.DeviceKey
		opts dbsc.VerifyOptions
		want error
	}
	cases := []tc{
		{name: "alg none", tok: sign(t, dbsctest.ProofSpec{Alg: "none", JWK: &ec.PublicKey, Challenge: "c"}), want: dbsc.ErrAlgorithm},
		{name: "alg None refresh", tok: sign(t, dbsctest.ProofSpec{Alg: "None", Challenge: "c"}), key: ecKey, want: dbsc.ErrAlgorithm},
		// The classic confusion: HMAC keyed with the public key.
		{name: "HS256 with the public key as secret", tok: sign(t, dbsctest.ProofSpec{Alg: "HS256", HMACKey: jwkJSON, Challenge: "c"}), key: ecKey, want: dbsc.ErrAlgorithm},
		{name: "HS256 registration", tok: sign(t, dbsctest.ProofSpec{Alg: "HS256", HMACKey: []byte("k"), JWK: &ec.PublicKey, Challenge: "c"}), want: dbsc.ErrAlgorithm},
		{name: "ES384", tok: sign(t, dbsctest.ProofSpec{Signer: p384, Alg: "ES384", JWK: &p384.PublicKey, Challenge: "c"}), want: dbsc.ErrAlgorithm},
		{name: "PS256", tok: sign(t, dbsctest.ProofSpec{Signer: rs, Alg: "PS256", JWK: &rs.PublicKey, Challenge: "c"}), want: dbsc.ErrAlgorithm},
		{name: "RS256 not allowed", tok: sign(t, dbsctest.ProofSpec{Signer: rs, JWK: &rs.PublicKey, Challenge: "c"}), opts: dbsc.VerifyOptions{Algorithms: []string{dbsc.ES256}}, want: dbsc.ErrAlgorithm},
		{name: "P-384 key as ES256", tok: sign(t, dbsctest.ProofSpec{Signer: p384, Alg: "ES256", JWK: &p384.PublicKey, Challenge: "c"}), want: dbsc.ErrKey},
		{name: "RSA-1024", tok: sign(t, dbsctest.ProofSpec{Signer: rsa1024, JWK: &rsa1024.PublicKey, Challenge: "c"}), want: dbsc.ErrKey},
		{name: "ES256 with an RSA jwk", tok: sign(t, dbsctest.ProofSpec{Signer: ec, JWK: &rs.PublicKey, Challenge: "c"}), want: dbsc.ErrKey},
		{name: "RS256 with an EC jwk", tok: sign(t, dbsctest.ProofSpec{Signer: rs, JWK: &ec.PublicKey, Challenge: "c"}), want: dbsc.ErrKey},
		{name: "RS256 proof for a bound EC key", tok: sign(t, dbsctest.ProofSpec{Signer: rs, Challenge: "c"}), key: ecKey, want: dbsc.ErrKey},
		{name: "registration without jwk", tok: sign(t, dbsctest.ProofSpec{Signer: ec, Challenge: "c"}), want: dbsc.ErrKey},
		{name: "refresh with jwk", tok: sign(t, dbsctest.ProofSpec{Signer: ec, JWK: &ec.PublicKey, Challenge: "c"}), key: ecKey, want: dbsc.ErrKey},
		{name: "legacy payload key without Legacy", tok: sign(t, dbsctest.ProofSpec{Signer: ec, JWK: &ec.PublicKey, Challenge: "c", Legacy: true}), want: dbsc.ErrProofType},
		{name: "wrong key signs registration", tok: sign(t, dbsctest.ProofSpec{Signer: other, JWK: &ec.PublicKey, Challenge: "c"}), want: dbsc.ErrSignature},
		{name: "wrong key signs refresh", tok: sign(t, dbsctest.ProofSpec{Signer: other, Challenge: "c"}), key: ecKey, want: dbsc.ErrSignature},
		{name: "wrong RSA key signs refresh", tok: sign(t, dbsctest.ProofSpec{Signer: rs, Challenge: "c"}), key: mustDeviceKey(t, &rsa1024KeyAs2048(t).PublicKey), want: dbsc.ErrSignature},
		{name: "RS256 refresh", tok: sign(t, dbsctest.ProofSpec{Signer: rs, Challenge: "c"}), key: rsKey, want: nil},
		{name: "payload swapped", tok: parts[0] + "." + enc([]byte(`{"jti":"other"}`)) + "." + parts[2], want: dbsc.ErrSignature},
		{name: "ES256 signature of 65 bytes", tok: parts[0] + "." + parts[1] + "." + enc(append(mustB64(t, parts[2]), 0)), want: dbsc.ErrSignature},
		{name: "ES256 signature DER-shaped", tok: parts[0] + "." + parts[1] + "." + enc(make([]byte, 70)), want: dbsc.ErrSignature},
		{name: "ES256 zero signature", tok: parts[0] + "." + parts[1] + "." + enc(make([]byte, 64)), want: dbsc.ErrSignature},
		{name: "typ jwt", tok: sign(t, dbsctest.ProofSpec{Signer: ec, JWK: &ec.PublicKey, Challenge: "c", Typ: "JWT"}), want: dbsc.ErrProofType},
		{name: "typ missing", tok: sign(t, dbsctest.ProofSpec{Signer: ec, JWK: &ec.PublicKey, Challenge: "c", ExtraHeader: map[string]any{"typ": nil}}), want: dbsc.ErrProofType},
		{name: "crit", tok: sign(t, dbsctest.ProofSpec{Signer: ec, JWK: &ec.PublicKey, Challenge: "c", ExtraHeader: map[string]any{"crit": []string{"b64"}}}), want: dbsc.ErrProofMalformed},
		{name: "jti missing", tok: sign(t, dbsctest.ProofSpec{Signer: ec, JWK: &ec.PublicKey, OmitJTI: true}), want: dbsc.ErrProofMalformed},
		{name: "jti empty", tok: sign(t, dbsctest.ProofSpec{Signer: ec, JWK: &ec.PublicKey}), want: dbsc.ErrProofMalformed},
		{name: "jti number", tok: sign(t, dbsctest.ProofSpec{Signer: ec, JWK: &ec.PublicKey, ExtraPayload: map[string]any{"jti": 5}}), want: dbsc.ErrProofMalformed},
		{name: "jti huge", tok: sign(t, dbsctest.ProofSpec{Signer: ec, JWK: &ec.PublicKey, Challenge: strings.Repeat("c", 300)}), want: dbsc.ErrProofMalformed},
		{name: "authorization number", tok: sign(t, dbsctest.ProofSpec{Signer: ec, JWK: &ec.PublicKey, Challenge: "c", ExtraPayload: map[string]any{"authorization": 1}}), want: dbsc.ErrProofMalformed},
		{name: "duplicate alg", tok: enc([]byte(`{"alg":"none","typ":"dbsc+jwt","alg":"ES256"}`)) + "." + parts[1] + "." + parts[2], want: dbsc.ErrProofMalformed},
		{name: "header not an object", tok: enc([]byte(`["ES256"]`)) + "." + parts[1] + "." + parts[2], want: dbsc.ErrProofMalformed},
		{name: "header not JSON", tok: enc([]byte(`{alg:ES256}`)) + "." + parts[1] + "." + parts[2], want: dbsc.ErrProofMalformed},
		{name: "padded base64", tok: parts[0] + "=." + parts[1] + "." + parts[2], want: dbsc.ErrProofMalformed},
		{name: "standard base64", tok: standardBase64Proof(t, ec), want: dbsc.ErrProofMalformed},
		{name: "CR in the signature", tok: parts[0] + "." + parts[1] + "." + parts[2][:10] + "\r" + parts[2][10:], want: dbsc.ErrProofMalformed},
		{name: "LF in the signature", tok: good + "\n", want: dbsc.ErrProofMalformed},
		{name: "two parts", tok: parts[0] + "." + parts[1], want: dbsc.ErrProofMalformed},
		{name: "four parts", tok: good + ".x", want: dbsc.ErrProofMalformed},
		{name: "empty", tok: "", want: dbsc.ErrProofMalformed},
		{name: "dots", tok: "..", want: dbsc.ErrProofMalformed},
		{name: "oversized", tok: sign(t, dbsctest.ProofSpec{Signer: ec, JWK: &ec.PublicKey, Challenge: "c", ExtraPayload: map[string]any{"pad": strings.Repeat("x", 9000)}}), want: dbsc.ErrProofTooLarge},
		{name: "over a custom limit", tok: good, opts: dbsc.VerifyOptions{MaxBytes: 100}, want: dbsc.ErrProofTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := c.opts
			opts.Key = c.key
			p, err := dbsc.VerifyProof(c.tok, opts)
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %+v, %v; want %v", p, err, c.want)
			}
		})
	}
}

// standardBase64Proof returns a valid proof re-encoded in standard base64
// ('+' and '/' for '-' and '_'). Only the signature part is random (the
// base64url of ASCII JSON holds neither '-' nor '_'), and about one
// signature in 15 has neither either, so it signs again until the
// re-encoding changes the token.
func standardBase64Proof(t *testing.T, key *ecdsa.PrivateKey) string {
	t.Helper()
	for range 1000 {
		tok := sign(t, dbsctest.ProofSpec{Signer: key, JWK: &key.PublicKey, Challenge: "c"})
		if std := strings.NewReplacer("-", "+", "_", "/").Replace(tok); std != tok {
			return std
		}
	}
	t.Fatal("1000 signatures without '-' or '_' in base64url")
	return ""
}

// rsa1024KeyAs2048 returns another RSA-2048 key than mustRSA's.
func rsa1024KeyAs2048(t *testing.T) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustB64(t *testing.T, s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
