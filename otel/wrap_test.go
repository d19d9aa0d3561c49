package qsessionsotel_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/internal/testutil"
	qsessionsotel "github.com/qsessions/qsessions/otel"
)

// plain is a Backend that tells nothing beyond the interface.
type plain struct{ backend.Backend }

// TestWrapForwards: the wrapper forwards SessionStore, CreateCapped and
// Unwrap when the Backend inside has them, and falls back when not.
func TestWrapForwards(t *testing.T) {
	ctx := context.Background()
	store := backend.NewMemStore()
	db := backend.NewDB(store)
	w := qsessionsotel.Wrap(db)
	if w.SessionStore() != store || w.Unwrap() != backend.Backend(db) {
		t.Fatalf("SessionStore/Unwrap not forwarded")
	}
	now := time.Now().UTC()
	rec := &backend.Record{ExpireDate: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, LastActivity: now}
	// Forwarded to DB.CreateCapped, which says that MemStore cannot cap in
	// the same step (TestOperations sees the generated Store do it).
	if _, _, ok, err := w.CreateCapped(ctx, rec, now, 5); err != nil || ok {
		t.Fatalf("CreateCapped over DB on a MemStore: %v %v", ok, err)
	}

	p := qsessionsotel.Wrap(plain{db})
	if p.SessionStore() != nil {
		t.Errorf("SessionStore of a Backend that has none: %v", p.SessionStore())
	}
	rec = &backend.Record{ExpireDate: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, LastActivity: now}
	token, ended, ok, err := p.CreateCapped(ctx, rec, now, 5)
	if err != nil || ok || ended != nil || token == "" {
		t.Fatalf("CreateCapped over a Backend without it: %q %v %v %v", token, ended, ok, err)
	}
	if _, err := p.Load(ctx, rec.Key, now); err != nil {
		t.Fatalf("the session CreateCapped made: %v", err)
	}

	c, err := backend.NewCachedDB(store, backend.NewLocalCache(0), backend.CachedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if backend.CachedOf(qsessionsotel.Wrap(qsessionsotel.Wrap(c))) != c {
		t.Errorf("CachedOf does not see through the wrappers")
	}
	if backend.CachedOf(db) != nil || backend.CachedOf(w) != nil {
		t.Errorf("CachedOf of a db backend")
	}
}

// TestErrorsScrubbed: a failing operation's span has error.type and a
// status whose message never holds a stored key.
func TestErrorsScrubbed(t *testing.T) {
	ctx := context.Background()
	key := backend.KeyOf("some-token-of-a-user-0123456789abcdefghijklmn")
	failing := failingBackend{err: errors.New("driver: row " + key + " is locked")}
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	w := qsessionsotel.Wrap(failing, qsessionsotel.WithTracerProvider(tp))
	if _, err := w.Load(ctx, key, time.Now()); err == nil {
		t.Fatal("no error")
	}
	if _, err := w.Delete(context.Background(), key); err == nil {
		t.Fatal("no error")
	}
	spans := sr.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans", len(spans))
	}
	for _, sp := range spans {
		if sp.Status().Code != codes.Error || sp.Status().Description != "driver: row [key] is locked" {
			t.Errorf("%s status: %+v", sp.Name(), sp.Status())
		}
		if v, _ := attr(sp, "error.type"); v != "*errors.errorString" {
			t.Errorf("%s error.type %q", sp.Name(), v)
		}
		if v, _ := attr(sp, "qsessions.backend"); v != "other" {
			t.Errorf("%s qsessions.backend %q", sp.Name(), v)
		}
		if v, _ := attr(sp, "qsessions.session.id"); v != backend.PublicID(key) {
			t.Errorf("%s session id %q", sp.Name(), v)
		}
	}
	if v, _ := attr(spans[0], "qsessions.load.result"); v != "error" {
		t.Errorf("load result %q", v)
	}
}

type failingBackend struct {
	backend.Backend
	err error
}

func (f failingBackend) Load(context.Context, string, time.Time) (*backend.Record, error) {
	return nil, f.err
}

func (f failingBackend) Delete(context.Context, ...string) (int, error) { return 0, f.err }

// TestConcurrentLoads: loads from many goroutines each get their own
// cache result (run with -race).
func TestConcurrentLoads(t *testing.T) {
	e := newEnv(t, testutil.Open(t, testutil.SQLite), "cached_db", backend.NewLocalCache(0))
	tok := e.login(e.user("alice"))
	e.takeSpans()
	key := backend.KeyOf(tok)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				k := key
				if (g+i)%2 == 1 {
					k = backend.KeyOf("no-such-token-" + string(rune('a'+g)) + string(rune('a'+i)))
				}
				_, _ = e.m.Backend.Load(e.ctx, k, e.clock.Now())
			}
		})
	}
	wg.Wait()
	var hits, misses int
	for _, sp := range e.spans.Ended() {
		r, _ := attr(sp, "qsessions.cache.result")
		l, _ := attr(sp, "qsessions.load.result")
		switch {
		case r == "hit" && l == "found":
			hits++
		case r == "miss" && l == "not_found":
			misses++
		default:
			t.Errorf("load span with cache %q, load %q", r, l)
		}
	}
	if hits != 100 || misses != 100 {
		t.Errorf("%d hits, %d misses, want 100 each", hits, misses)
	}
}
