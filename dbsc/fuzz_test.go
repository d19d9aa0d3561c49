package dbsc_test

import (
	"errors"
	"testing"
	"time"

	"github.com/qsessions/qsessions/dbsc"
)

// fuzzKeys are fixed device keys for refresh-mode verification: the
// foreign vectors' RSA key and the P-256 key of the ES256 seed.
var fuzzKeys = func() []*dbsc.DeviceKey {
	var out []*dbsc.DeviceKey
	for _, j := range []string{
		`{"e":"AQAB","kty":"RSA","n":"qc7RG2bhpr-jx23FN0AmIo4ZyBXKi0kCzlXISEB3Z8DTVC37YkLLaeWYx-xMrNcW-W1MAEGFZiDnTHVVV8tBulkCNkAHuz84Ye68PvlTBo7d4v9TOpK9k3u8Mng8k0cQl4aSUZ0Kz6mo0tuq9ChxNrxlBhbhzaej3quNSj7RfD-8RfOebUmFy5dq3ryAvNjuNyaFt132PTPqe4_DJtpkvfHRq_aUWpBUShsR5do15mv27K-v-2dNC_YVnSU0dufY68Xr2EzWOuJ-XDgSC2qCmidNycofTmSM0x31UoiGEIMD1mP7de5NDf6z8bBiIa7RFa2bYmEe7teuHWdW6MqlpQ"}`,
		`{"crv":"P-256","kty":"EC","x":"I0tJPubav7TOVlnugxfmxahY9NSUAAqCLojv7vslA48","y":"IZWsGetnh0OSHaHcDMAgEQqEOnkBk12W6spvG1i2D_g"}`,
	} {
		k, err := dbsc.ParseDeviceKey([]byte(j))
		if err != nil {
			panic(err)
		}
		out = append(out, k)
	}
	return out
}()

var proofErrors = []error{dbsc.ErrProofTooLarge, dbsc.ErrProofMalformed, dbsc.ErrProofType, dbsc.ErrAlgorithm, dbsc.ErrKey, dbsc.ErrSignature}

// FuzzVerifyProof feeds arbitrary strings to the JWT parser and verifier in
// every mode. It must never panic, every failure must be one of the
// documented errors, and whatever passes must satisfy the draft's rules.
// Seeds: testdata/fuzz/FuzzVerifyProof (valid ES256 and RS256 proofs made
// outside Go, alg none, HS256, wrong curve, malformed and duplicate-member
// JWTs).
func FuzzVerifyProof(f *testing.F) {
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		modes := []dbsc.VerifyOptions{{}, {Legacy: true}, {MaxBytes: 1024}}
		for _, k := range fuzzKeys {
			modes = append(modes, dbsc.VerifyOptions{Key: k}, dbsc.VerifyOptions{Key: k, Legacy: true})
		}
		for _, opts := range modes {
			p, err := dbsc.VerifyProof(tok, opts)
			if err != nil {
				known := false
				for _, e := range proofErrors {
					known = known || errors.Is(err, e)
				}
				if !known {
					t.Fatalf("undocumented error %v", err)
				}
				continue
			}
			if p.Challenge == "" || p.Key == nil || p.Key.Algorithm() != p.Algorithm || (p.Algorithm != dbsc.ES256 && p.Algorithm != dbsc.RS256) {
				t.Fatalf("accepted a proof that breaks the rules: %+v", p)
			}
			if opts.Key != nil && !p.Key.Equal(opts.Key) {
				t.Fatal("refresh proof verified with another key")
			}
			limit := opts.MaxBytes
			if limit == 0 {
				limit = dbsc.DefaultMaxProofBytes
			}
			if len(tok) > limit {
				t.Fatal("accepted an oversized proof")
			}
		}
	})
}

// FuzzVerifyCredential: bound cookie values from the network never panic
// and only a minted one passes.
func FuzzVerifyCredential(f *testing.F) {
	secret := make([]byte, dbsc.SecretLen)
	now := time.Unix(1_800_000_000, 0)
	good, _ := dbsc.MintCredential(secret, now.Add(time.Minute))
	for _, s := range []string{good, "", "1.", "1..", "1.1800000060.", "1.99999999999999999999.x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		err := dbsc.VerifyCredential(secret, v, now, time.Second)
		if err == nil && v != good {
			// Another value with the same expiry and MAC would be a
			// second encoding of one credential.
			t.Fatalf("accepted %q", v)
		}
	})
}

// FuzzParseDeviceKey: stored or received JWKs never panic; what parses
// round-trips through its stored form.
func FuzzParseDeviceKey(f *testing.F) {
	f.Add(`{"kty":"EC","crv":"P-256","x":"I0tJPubav7TOVlnugxfmxahY9NSUAAqCLojv7vslA48","y":"IZWsGetnh0OSHaHcDMAgEQqEOnkBk12W6spvG1i2D_g"}`)
	f.Add(`{"kty":"RSA","n":"AQAB","e":"AQAB"}`)
	f.Fuzz(func(t *testing.T, j string) {
		k, err := dbsc.ParseDeviceKey([]byte(j))
		if err != nil {
			if !errors.Is(err, dbsc.ErrKey) {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		back, err := dbsc.ParseDeviceKey([]byte(k.String()))
		if err != nil || !back.Equal(k) || len(k.String()) > dbsc.MaxDeviceKeyLen {
			t.Fatalf("stored form %q does not round-trip: %v", k.String(), err)
		}
	})
}
