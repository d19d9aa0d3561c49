package qsessions_test

import (
	"context"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
)

// TestBoundSessionNeedsItsCredential: a device-bound session is signed in
// only with a valid, unexpired bound cookie; without one the request is
// anonymous, writes nothing and keeps the cookie.
func TestBoundSessionNeedsItsCredential(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		uid := e.newUser("dora")
		tok := e.login(uid, "192.0.2.1", "A")
		secret := []byte("0123456789abcdef0123456789abcdef")
		if err := e.m.Backend.Bind(ctx, backend.KeyOf(tok), `{"kty":"EC"}`, secret, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		valid, _ := backend.MintBound(secret, e.clock.Now().Add(5*time.Minute))
		expired, _ := backend.MintBound(secret, e.clock.Now().Add(-time.Minute))
		other, _ := backend.MintBound([]byte("another secret of thirty-two b.."), e.clock.Now().Add(5*time.Minute))
		for _, c := range []struct {
			name, bound string
			in          bool
		}{
			{"valid", valid, true},
			{"none", "", false},
			{"expired", expired, false},
			{"another binding's", other, false},
			{"garbage", "1.2.3", false},
		} {
			s := e.m.Start(ctx, tok, "192.0.2.1", "A")
			s.SetBoundCredential(c.bound)
			e.drv.Reset()
			got := s.UserID()
			if (got == uid) != c.in || s.NeedsDeviceProof() == c.in {
				t.Fatalf("%s bound cookie: user %v, needs proof %v", c.name, got, s.NeedsDeviceProof())
			}
			e.clock.Advance(2 * qsessions.DefaultActivityInterval) // an activity write would be due
			commit, err := s.Save(ctx)
			if err != nil || commit.Delete || commit.Token != "" && !c.in {
				t.Fatalf("%s: save %+v %v", c.name, commit, err)
			}
			if !c.in && e.drv.Writes() != 0 {
				t.Fatalf("%s: an unproven request wrote %d times", c.name, e.drv.Writes())
			}
			e.clock.Set(e.clock.Now().Add(-2 * qsessions.DefaultActivityInterval))
		}
		// Through the middleware: the bound cookie is read by name.
		if r := e.do(req{path: "/whoami", cookie: tok}); r.body != "<nil>" || r.deleted {
			t.Fatalf("middleware without the bound cookie: %q deleted=%v", r.body, r.deleted)
		}
	})
}
