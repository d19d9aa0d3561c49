package qsessions_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
)

func TestMalformedCookiesMakeNoQuery(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		good, _, _ := backend.NewToken(nil)
		cases := map[string]string{
			"short":        good[:42],
			"long":         good + "A",
			"alphabet":     good[:42] + "+",
			"padding bits": good[:42] + "B",
			"spaces":       strings.Repeat(" ", 43),
			"10KB":         strings.Repeat("A", 10<<10),
			"sql":          "' OR 1=1 --" + strings.Repeat("x", 32),
		}
		for name, c := range cases {
			e.drv.Reset()
			e.calls.calls.Store(0)
			r := e.do(req{path: "/whoami", cookie: c})
			if n := e.drv.Count(); n != 0 {
				t.Fatalf("%s cookie made %d queries", name, n)
			}
			if n := e.calls.calls.Load(); n != 0 {
				t.Fatalf("%s cookie made %d backend (database or cache) calls", name, n)
			}
			if r.code != 200 || r.body != "<nil>" || !r.deleted {
				t.Fatalf("%s cookie: code %d body %q deleted %v", name, r.code, r.body, r.deleted)
			}
		}
		// A well-formed token that names no session: one lookup, no session.
		e.drv.Reset()
		r := e.do(req{path: "/whoami", cookie: good})
		if r.body != "<nil>" || e.drv.Count() != 1 {
			t.Fatalf("unknown token: body %q, %d queries", r.body, e.drv.Count())
		}
		// The only value bound into the lookup is the token's hash.
		q := e.drv.Queries()[0]
		for _, a := range q.Args {
			if s, ok := a.(string); ok && (s == good || (len(s) != 64 && strings.Contains(s, good))) {
				t.Fatalf("lookup bound the token: %v", q.Args)
			}
		}
		found := false
		for _, a := range q.Args {
			found = found || a == backend.KeyOf(good)
		}
		if !found {
			t.Fatalf("lookup did not bind the key: %v", q.Args)
		}
	})
}

func TestForwardedFor(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		// Untrusted peer: its X-Forwarded-For is ignored.
		tok := e.do(req{path: "/set?k=a&v=1", ip: "192.0.2.50", xff: "203.0.113.9"}).cookie
		if ip := *e.row(tok).IP; ip != "192.0.2.50" {
			t.Fatalf("forged XFF from untrusted peer used: %q", ip)
		}
		// Trusted proxy: the right-most untrusted hop.
		tok = e.do(req{path: "/set?k=a&v=1", ip: "10.9.0.1", xff: "198.51.100.1, 203.0.113.9, 10.9.3.3"}).cookie
		if ip := *e.row(tok).IP; ip != "203.0.113.9" {
			t.Fatalf("XFF through trusted proxy: %q, want 203.0.113.9", ip)
		}
	})
}

type unencodable struct{ C chan int }

func TestBadValues(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		tok := e.do(req{path: "/set?k=a&v=1"}).cookie
		s := e.m.Start(context.Background(), tok, "192.0.2.1", "test-agent/1.0")
		if err := s.Set("x", unencodable{}); !errors.Is(err, qsessions.ErrUnsupportedValue) || !strings.Contains(err.Error(), "unencodable") {
			t.Fatalf("Set of an unregistered struct: %v", err)
		}
		if err := s.Set("f", func() {}); !errors.Is(err, qsessions.ErrUnsupportedValue) {
			t.Fatalf("Set of a func: %v", err)
		}
		big := strings.Repeat("x", qsessions.DefaultMaxSize)
		if err := s.Set("big", big); !errors.Is(err, qsessions.ErrTooLarge) {
			t.Fatalf("Set over the limit: %v", err)
		}
		if _, ok := s.Get("big"); ok {
			t.Fatal("refused value is present")
		}
		// Many values that pass the limit together: the one that crosses it is refused.
		var err error
		for i := 0; err == nil && i < 100; i++ {
			err = s.Set(strings.Repeat("k", i+1), strings.Repeat("v", 1<<10))
		}
		if !errors.Is(err, qsessions.ErrTooLarge) {
			t.Fatalf("values adding up past the limit: %v", err)
		}
		before := e.row(tok).SessionData
		if _, err := s.Save(context.Background()); err != nil {
			t.Fatalf("save of the accepted values: %v", err)
		}
		after := e.row(tok).SessionData
		if len(after) > qsessions.DefaultMaxSize || len(after) <= len(before) {
			t.Fatalf("stored %d bytes (before %d)", len(after), len(before))
		}
		if _, err := qsessions.DecodeData(after); err != nil {
			t.Fatalf("stored data does not decode: %v", err)
		}
	})
}

func TestSetAfterHeadersIsAnError(t *testing.T) {
	m := qsessions.New(backend.NewDB(backend.NewMemStore()))
	s := m.Start(context.Background(), "", "", "")
	if err := s.Set("a", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Set("b", 2); !errors.Is(err, qsessions.ErrHeadersWritten) {
		t.Fatalf("Set after save: %v, want ErrHeadersWritten", err)
	}
}

func TestDecodeDataNeverPanics(t *testing.T) {
	for _, b := range [][]byte{nil, {1}, {1, 0}, {2, 0, 0, 0}, {1, 0, 0, 1, 1, 'a', 99}, {1, 0, 0, 255, 255, 255, 255, 15}} {
		_, err := qsessions.DecodeData(b)
		if b == nil && err != nil {
			t.Fatalf("empty data: %v", err)
		}
		if b != nil && !errors.Is(err, qsessions.ErrCorruptData) {
			t.Fatalf("%v: err %v, want ErrCorruptData", b, err)
		}
	}
}

func FuzzDecodeData(f *testing.F) {
	m := qsessions.New(backend.NewDB(backend.NewMemStore()))
	s := m.Start(context.Background(), "", "", "")
	_ = s.Set("a", map[string]any{"b": []any{1, "x", 2.5}})
	_ = s.Set("t", []string{"x"})
	c, _ := s.Save(context.Background())
	if rec, err := m.Backend.Load(context.Background(), backend.KeyOf(c.Token), time.Now()); err == nil {
		f.Add(rec.Data)
	}
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := qsessions.DecodeData(b)
		if err == nil && v == nil {
			t.Fatal("nil map without error")
		}
	})
}
