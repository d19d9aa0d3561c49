package dbsc_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/qsessions/qsessions/dbsc"
)

// RFC 7638 section 3.1: the thumbprint of the RFC 7517 A.1 RSA key.
func TestThumbprintRFC7638(t *testing.T) {
	jwk := `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`
	k, err := dbsc.ParseDeviceKey([]byte(jwk))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k.Thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Fatalf("thumbprint %s, want %s", got, want)
	}
	if k.Algorithm() != dbsc.RS256 {
		t.Fatalf("algorithm %s", k.Algorithm())
	}
	if !strings.HasPrefix(k.String(), `{"e":"AQAB","kty":"RSA","n":"0vx7`) {
		t.Fatalf("canonical form %s", k.String())
	}
}

func TestDeviceKeyRoundTripAndSizes(t *testing.T) {
	ec := mustDeviceKey(t, &mustP256(t).PublicKey)
	r2048 := mustDeviceKey(t, &mustRSA(t).PublicKey)
	// A 4096-bit modulus (need not be a product of primes to measure).
	n := new(big.Int).Lsh(big.NewInt(1), 4095)
	n.Add(n, big.NewInt(12345))
	r4096 := mustDeviceKey(t, &rsa.PublicKey{N: n, E: 65537})
	for _, tc := range []struct {
		k    *dbsc.DeviceKey
		size int
		alg  string
	}{{ec, 126, dbsc.ES256}, {r2048, 373, dbsc.RS256}, {r4096, 714, dbsc.RS256}} {
		s := tc.k.String()
		if len(s) != tc.size || len(s) > dbsc.MaxDeviceKeyLen {
			t.Errorf("%s key stored form is %d bytes, want %d (max %d)", tc.alg, len(s), tc.size, dbsc.MaxDeviceKeyLen)
		}
		back, err := dbsc.ParseDeviceKey([]byte(s))
		if err != nil || !back.Equal(tc.k) || back.Thumbprint() != tc.k.Thumbprint() || back.Algorithm() != tc.alg {
			t.Errorf("round trip of %s: %v", s, err)
		}
		if len(tc.k.Thumbprint()) != 43 {
			t.Errorf("thumbprint %q", tc.k.Thumbprint())
		}
	}
	if ec.Equal(r2048) {
		t.Error("different keys are Equal")
	}
}

func TestParseDeviceKeyRefuses(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p256 := mustP256(t)
	raw, _ := p256.PublicKey.Bytes()
	x := base64.RawURLEncoding.EncodeToString(raw[1:33])
	y := base64.RawURLEncoding.EncodeToString(raw[33:])
	badY := make([]byte, 32)
	copy(badY, raw[33:])
	badY[31] ^= 1
	n2048 := base64.RawURLEncoding.EncodeToString(mustRSA(t).N.Bytes())
	n1024 := base64.RawURLEncoding.EncodeToString(new(big.Int).Lsh(big.NewInt(1), 1023).Bytes())
	n8192 := base64.RawURLEncoding.EncodeToString(new(big.Int).Lsh(big.NewInt(1), 8191).Bytes())
	p384raw, _ := p384.PublicKey.Bytes()
	cases := map[string]string{
		"P-384":            `{"kty":"EC","crv":"P-384","x":"` + base64.RawURLEncoding.EncodeToString(p384raw[1:49]) + `","y":"` + base64.RawURLEncoding.EncodeToString(p384raw[49:]) + `"}`,
		"off the curve":    `{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + base64.RawURLEncoding.EncodeToString(badY) + `"}`,
		"short x":          `{"kty":"EC","crv":"P-256","x":"` + x[:40] + `","y":"` + y + `"}`,
		"padded base64":    `{"kty":"EC","crv":"P-256","x":"` + x + `=","y":"` + y + `"}`,
		"private member":   `{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + y + `","d":"AAAA"}`,
		"duplicate member": `{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + y + `","x":"` + x + `"}`,
		"no kty":           `{"crv":"P-256","x":"` + x + `","y":"` + y + `"}`,
		"kty oct":          `{"kty":"oct","k":"c2VjcmV0"}`,
		"kty OKP":          `{"kty":"OKP","crv":"Ed25519","x":"` + x + `"}`,
		"RSA 1024":         `{"kty":"RSA","n":"` + n1024 + `","e":"AQAB"}`,
		"RSA 8192":         `{"kty":"RSA","n":"` + n8192 + `","e":"AQAB"}`,
		"RSA even e":       `{"kty":"RSA","n":"` + n2048 + `","e":"AQAA"}`,
		"RSA e=1":          `{"kty":"RSA","n":"` + n2048 + `","e":"AQ"}`,
		"RSA huge e":       `{"kty":"RSA","n":"` + n2048 + `","e":"AQAAAAE"}`,
		"RSA leading zero": `{"kty":"RSA","n":"AA` + n2048 + `","e":"AQAB"}`,
		"number x":         `{"kty":"EC","crv":"P-256","x":1,"y":"` + y + `"}`,
		"array":            `[]`,
		"trailing":         `{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + y + `"} {}`,
		"empty":            ``,
		"huge":             `{"kty":"EC","pad":"` + strings.Repeat("a", 5000) + `"}`,
	}
	for name, jwk := range cases {
		if k, err := dbsc.ParseDeviceKey([]byte(jwk)); !errors.Is(err, dbsc.ErrKey) {
			t.Errorf("%s: got %v, %v; want ErrKey", name, k, err)
		}
	}
	if _, err := dbsc.NewDeviceKey(&p384.PublicKey); !errors.Is(err, dbsc.ErrKey) {
		t.Errorf("NewDeviceKey(P-384) = %v", err)
	}
	if _, err := dbsc.NewDeviceKey("not a key"); !errors.Is(err, dbsc.ErrKey) {
		t.Errorf("NewDeviceKey(string) = %v", err)
	}
}

func TestParseBinding(t *testing.T) {
	k := mustDeviceKey(t, &mustP256(t).PublicKey)
	secret := make([]byte, dbsc.SecretLen)
	b, err := dbsc.ParseBinding(k.String(), secret)
	if err != nil || b.ID() != k.Thumbprint() {
		t.Fatalf("ParseBinding = %v, %v", b, err)
	}
	if _, err := dbsc.ParseBinding(k.String(), secret[:31]); err == nil {
		t.Error("short secret accepted")
	}
	if _, err := dbsc.ParseBinding("{}", secret); !errors.Is(err, dbsc.ErrKey) {
		t.Errorf("bad key: %v", err)
	}
}
