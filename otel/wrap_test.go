package qsessionsotel_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
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

// TestWithoutRootSpans: with the option, a call under a recording span
// gets a child span of it, and a call with no span or under one the
// sampler dropped gets none; every call is measured either way.
func TestWithoutRootSpans(t *testing.T) {
	ctx := context.Background()
	sr := tracetest.NewSpanRecorder()
	// Traces that start here are sampled exactly when they are named
	// "sampled"; a child follows its parent.
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr), sdktrace.WithSampler(sdktrace.ParentBased(nameSampler("sampled"))))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = tp.Shutdown(ctx); _ = mp.Shutdown(ctx) })
	db := backend.NewDB(backend.NewMemStore())
	now := time.Now().UTC()
	rec := &backend.Record{ExpireDate: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, LastActivity: now}
	if _, err := db.Create(ctx, rec, now); err != nil {
		t.Fatal(err)
	}
	tracer := tp.Tracer("test")
	sampledCtx, sampled := tracer.Start(ctx, "sampled")
	droppedCtx, dropped := tracer.Start(ctx, "dropped")
	if !sampled.IsRecording() || dropped.IsRecording() {
		t.Fatalf("the sampler: sampled recording %v, dropped recording %v", sampled.IsRecording(), dropped.IsRecording())
	}

	for _, parentOnly := range []bool{false, true} {
		opts := []qsessionsotel.Option{qsessionsotel.WithTracerProvider(tp), qsessionsotel.WithMeterProvider(mp)}
		if parentOnly {
			opts = append(opts, qsessionsotel.WithoutRootSpans())
		}
		w := qsessionsotel.Wrap(db, opts...)
		for _, c := range []context.Context{ctx, sampledCtx, droppedCtx} {
			if _, err := w.Load(c, rec.Key, now); err != nil {
				t.Fatal(err)
			}
		}
		var loads []sdktrace.ReadOnlySpan
		for _, sp := range sr.Ended() {
			if sp.Name() == "qsessions.load" {
				loads = append(loads, sp)
			}
		}
		sr.Reset()
		// Only the call under the sampled span is recorded, with or without
		// the option; what the option changes is below.
		if len(loads) != 1 || loads[0].Parent().SpanID() != sampled.SpanContext().SpanID() {
			t.Fatalf("parentOnly %v: %d load spans, want 1, the child of the sampled span", parentOnly, len(loads))
		}
	}

	// What the option saves: the sampler is not even asked for calls
	// outside a recording span.
	var asked countingSampler
	tp2 := sdktrace.NewTracerProvider(sdktrace.WithSampler(&asked))
	t.Cleanup(func() { _ = tp2.Shutdown(ctx) })
	for _, parentOnly := range []bool{false, true} {
		asked.n.Store(0)
		opts := []qsessionsotel.Option{qsessionsotel.WithTracerProvider(tp2), qsessionsotel.WithMeterProvider(mp)}
		if parentOnly {
			opts = append(opts, qsessionsotel.WithoutRootSpans())
		}
		w := qsessionsotel.Wrap(db, opts...)
		for range 3 {
			if _, err := w.Load(ctx, rec.Key, now); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Load(droppedCtx, rec.Key, now); err != nil {
				t.Fatal(err)
			}
		}
		want := int64(6)
		if parentOnly {
			want = 0
		}
		if got := asked.n.Load(); got != want {
			t.Errorf("parentOnly %v: the sampler was asked %d times for 6 loads outside a recorded trace, want %d", parentOnly, got, want)
		}
	}

	// Every load was measured, traced or not: 3 calls x 2 wrappers, then
	// 6 x 2.
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == qsessionsotel.MetricDuration {
				for _, dp := range h.DataPoints {
					if v, _ := dp.Attributes.Value(qsessionsotel.OperationKey); v.AsString() == "load" {
						n += dp.Count
					}
				}
			}
		}
	}
	if n != 3*2+6*2 {
		t.Errorf("%d loads measured, want %d", n, 3*2+6*2)
	}
}

// nameSampler samples the root spans named name.
type nameSampler string

func (s nameSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if p.Name == string(s) {
		return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample}
	}
	return sdktrace.SamplingResult{Decision: sdktrace.Drop}
}

func (s nameSampler) Description() string { return "name is " + string(s) }

// countingSampler drops every span and counts how often it was asked.
type countingSampler struct{ n atomic.Int64 }

func (s *countingSampler) ShouldSample(sdktrace.SamplingParameters) sdktrace.SamplingResult {
	s.n.Add(1)
	return sdktrace.SamplingResult{Decision: sdktrace.Drop}
}

func (s *countingSampler) Description() string { return "counting" }
