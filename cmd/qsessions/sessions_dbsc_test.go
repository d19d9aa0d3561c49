package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/sqlstore"
)

// TestSessionsListDeviceBound: a device-bound session (dbsc_key set, as
// package dbsc's registration leaves it) is "yes" in the BOUND column and
// "device_bound": true in the JSON; the others "no" and false.
func TestSessionsListDeviceBound(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		f := newSessFixture(t, db)
		ctx := context.Background()
		st, err := sqlstore.New(ctx, db.SQL, db.Dialect)
		if err != nil {
			t.Fatal(err)
		}
		const jwk = `{"crv":"P-256","kty":"EC","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}`
		if err := st.Bind(ctx, f.aliceIPhone.key, jwk, make([]byte, 32), time.Now()); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := sessCLI(t, "sessions", "list", "--db", db.URL, "--user", f.aliceText)
		if code != 0 {
			t.Fatalf("list: exit %d: %s", code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasSuffix(lines[0], "BOUND") {
			t.Fatalf("list:\n%s", out)
		}
		for _, l := range lines[1:] {
			want := "no"
			if strings.HasPrefix(l, f.idIPhone) {
				want = "yes"
			}
			if fields := strings.Fields(l); fields[len(fields)-1] != want {
				t.Errorf("row %q: BOUND should be %s", l, want)
			}
		}
		code, out, errOut = sessCLI(t, "sessions", "list", "--db", db.URL, "--all", "--json")
		if code != 0 {
			t.Fatalf("list --json: exit %d: %s", code, errOut)
		}
		if !strings.Contains(out, `"device_bound": true`) {
			t.Errorf("no device_bound in the JSON:\n%s", out)
		}
		for _, s := range decodeList(t, out) {
			if s.DeviceBound != (s.ID == f.idIPhone) {
				t.Errorf("JSON: %s device_bound %v", s.ID, s.DeviceBound)
			}
		}
	})
}
