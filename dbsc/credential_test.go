package dbsc_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dbsc"
)

func TestCredential(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, dbsc.SecretLen)
	other := bytes.Repeat([]byte{8}, dbsc.SecretLen)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	exp := now.Add(dbsc.DefaultCredentialTTL)
	v, err := dbsc.MintCredential(secret, exp)
	if err != nil {
		t.Fatal(err)
	}
	if len(v) < 56 || len(v) > 60 || strings.ContainsAny(v, `";, \`) {
		t.Fatalf("credential %q: not a plain cookie value of 56-60 characters", v)
	}
	skew := dbsc.DefaultClockSkew
	check := func(name string, secret []byte, v string, at time.Time, want error) {
		t.Helper()
		if err := dbsc.VerifyCredential(secret, v, at, skew); !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	check("fresh", secret, v, now, nil)
	check("at expiry", secret, v, exp, nil)
	check("4 s past expiry (skew)", secret, v, exp.Add(4*time.Second), nil)
	check("6 s past expiry", secret, v, exp.Add(6*time.Second), dbsc.ErrCredentialExpired)
	check("other secret", other, v, now, dbsc.ErrCredentialInvalid)
	check("short secret", secret[:16], v, now, dbsc.ErrCredentialInvalid)
	check("empty", secret, "", now, dbsc.ErrNoCredential)
	// A forged later expiry breaks the MAC.
	i := strings.LastIndexByte(v, '.')
	later := "1." + "9999999999" + v[i:]
	check("forged expiry", secret, later, now, dbsc.ErrCredentialInvalid)
	for _, bad := range []string{"1.", "1..", "x", "2" + v[1:], "1.+" + v[2:], "1.0" + v[2:], "1.-5" + v[i:], v + "=", v[:len(v)-1], strings.Repeat("1", 200), "1." + v[2:i] + ".not base64!",
		// encoding/base64 skips CR and LF: these would be second encodings
		// of the one credential (found by FuzzVerifyCredential).
		v[:i+5] + "\r" + v[i+5:], v[:i+5] + "\n" + v[i+5:], v + "\r\n"} {
		check("malformed "+bad, secret, bad, now, dbsc.ErrCredentialInvalid)
	}
	if _, err := dbsc.MintCredential(secret[:31], exp); err == nil {
		t.Error("MintCredential with a short secret")
	}
}

// TestCredentialIsTheCoresFormat: dbsc mints and checks bound cookies with
// the core's implementation (backend.MintBound/VerifyBound), which the
// session uses on every request; the format is pinned, so cookies minted
// before a release still verify after it.
func TestCredentialIsTheCoresFormat(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, dbsc.SecretLen)
	exp := time.Unix(1777636800, 0)
	v, err := dbsc.MintCredential(secret, exp)
	if err != nil {
		t.Fatal(err)
	}
	// Minted by the implementation dbsc had before it moved to the core.
	const golden = "1.1777636800.jznVMQawCVWSrxS8CTylHYl_j6hB2rHXCIUDKP6wnO8"
	if v != golden {
		t.Errorf("MintCredential = %q, want %q", v, golden)
	}
	if b, _ := backend.MintBound(secret, exp); b != v {
		t.Errorf("backend.MintBound = %q, dbsc.MintCredential = %q", b, v)
	}
	if err := backend.VerifyBound(secret, v, exp, 0); err != nil {
		t.Errorf("the core refuses dbsc's credential: %v", err)
	}
	for _, c := range []struct{ dbsc, core error }{
		{dbsc.ErrNoCredential, backend.ErrNoBound},
		{dbsc.ErrCredentialInvalid, backend.ErrBoundInvalid},
		{dbsc.ErrCredentialExpired, backend.ErrBoundExpired},
	} {
		if !errors.Is(c.core, c.dbsc) || !errors.Is(c.dbsc, c.core) {
			t.Errorf("%v and %v are not the same error", c.dbsc, c.core)
		}
	}
	if err := dbsc.VerifyCredential(secret, v, exp.Add(time.Hour), 0); !errors.Is(err, backend.ErrBoundExpired) {
		t.Errorf("expired: %v", err)
	}
	if dbsc.SecretLen != backend.BoundSecretLen {
		t.Errorf("SecretLen %d, the core's %d", dbsc.SecretLen, backend.BoundSecretLen)
	}
}

func BenchmarkVerifyCredential(b *testing.B) {
	secret := bytes.Repeat([]byte{7}, dbsc.SecretLen)
	now := time.Now()
	v, _ := dbsc.MintCredential(secret, now.Add(time.Minute))
	for b.Loop() {
		if dbsc.VerifyCredential(secret, v, now, time.Second) != nil {
			b.Fatal("invalid")
		}
	}
}
