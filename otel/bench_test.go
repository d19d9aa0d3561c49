package qsessionsotel_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/internal/testutil"
	qsessionsotel "github.com/qsessions/qsessions/otel"
)

// discard is a SpanExporter that drops every span: the SDK records spans
// and hands them to the batch processor as in production, and they go
// nowhere.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkCachedLoad is the cost of a cached_db hit (Backend.Load) bare,
// wrapped with OpenTelemetry's no-op providers (the module on, no SDK),
// and wrapped with the SDK recording every span and measurement into an
// exporter that drops them (otel-sdk: the 10 % budget of the issue; and
// its two halves, traces only and metrics only); on the shared memcached
// and on the in-process cache (where the overhead is not hidden by a
// network round trip).
func BenchmarkCachedLoad(b *testing.B) {
	for _, cache := range []string{"memcached", "local"} {
		b.Run(cache, func(b *testing.B) {
			for _, mode := range []string{"bare", "otel-noop", "otel-sdk", "otel-sdk-traces", "otel-sdk-metrics"} {
				b.Run(mode, func(b *testing.B) { benchCachedLoad(b, cache, mode) })
			}
		})
	}
}

func benchCachedLoad(b *testing.B, cacheKind, mode string) {
	ctx := context.Background()
	db := testutil.Open(b, testutil.SQLite)
	client := ent.NewClient(ent.Driver(db.Driver()))
	if err := client.Schema.Create(ctx); err != nil {
		b.Fatal(err)
	}
	store := ent.NewSessionStore(client)
	var cache backend.Cache = backend.NewLocalCache(0)
	if cacheKind == "memcached" {
		mc, err := backend.NewMemcache([]string{testutil.Memcached(b)}, backend.MemcacheOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { mc.Close() })
		cache = mc
	}
	c, err := backend.NewCachedDB(store, cache, backend.CachedOptions{Prefix: testutil.MemcachedPrefix(b), Keys: testutil.CacheKeys})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	var be backend.Backend = c
	switch mode {
	case "otel-noop":
		be = qsessionsotel.Wrap(c, qsessionsotel.WithTracerProvider(tracenoop.NewTracerProvider()),
			qsessionsotel.WithMeterProvider(metricnoop.NewMeterProvider()))
	case "otel-sdk", "otel-sdk-traces", "otel-sdk-metrics":
		// Spans go through the batch processor, as in production, to an
		// exporter that drops them; measurements are aggregated for a
		// reader that is never collected.
		var tp trace.TracerProvider = tracenoop.NewTracerProvider()
		var mp metric.MeterProvider = metricnoop.NewMeterProvider()
		if mode != "otel-sdk-metrics" {
			sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))
			b.Cleanup(func() { _ = sdk.Shutdown(ctx) })
			tp = sdk
		}
		if mode != "otel-sdk-traces" {
			sdk := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() { _ = sdk.Shutdown(ctx) })
			mp = sdk
		}
		be = wrapSDK(c, tp, mp)
	}
	now := time.Now().UTC()
	u, err := client.User.Create().SetUsername("bench").Save(ctx)
	if err != nil {
		b.Fatal(err)
	}
	rec := &backend.Record{UserID: u.ID, Data: make([]byte, 200), IP: "192.0.2.1", UserAgent: testUA,
		ExpireDate: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, LastActivity: now}
	if _, err := be.Create(ctx, rec, now); err != nil {
		b.Fatal(err)
	}
	hits := c.Stats().Hits
	b.ReportAllocs()
	for b.Loop() {
		if _, err := be.Load(ctx, rec.Key, now); err != nil {
			b.Fatal(err)
		}
	}
	if c.Stats().Hits-hits < uint64(b.N) {
		b.Fatalf("%d hits in %d loads", c.Stats().Hits-hits, b.N)
	}
}

func wrapSDK(b backend.Backend, tp trace.TracerProvider, mp metric.MeterProvider) backend.Backend {
	return qsessionsotel.Wrap(b, qsessionsotel.WithTracerProvider(tp), qsessionsotel.WithMeterProvider(mp),
		qsessionsotel.WithDBSystem("sqlite"))
}

// BenchmarkCachedLoadPaired measures the same cache hit bare and through
// the wrapper in alternation, one of each per iteration, and reports the
// median of each and the overhead: on a busy machine the pairing cancels
// the drift that separate benchmarks suffer. Modes: noop (the module on,
// no SDK), metrics (the SDK's metrics, aggregated for a reader that is
// never collected), sdk (metrics and a span per operation, every span
// sampled and handed to the batch processor and an exporter that drops
// it: the "no-op exporter"), sdk-sampled (the same with
// ParentBased(TraceIDRatioBased(0.1)), a common production sampler),
// sdk-sampled-parent (each load under a request span that sampler
// started, as under an HTTP server's instrumentation: a tenth of the loads
// are in a recorded trace) and sdk-sampled-parent-noroot (the same with
// WithoutRootSpans, which starts no span under a dropped parent).
func BenchmarkCachedLoadPaired(b *testing.B) {
	for _, cache := range []string{"memcached", "local"} {
		b.Run(cache, func(b *testing.B) {
			for _, mode := range []string{"noop", "metrics", "sdk", "sdk-sampled", "sdk-sampled-parent", "sdk-sampled-parent-noroot"} {
				b.Run(mode, func(b *testing.B) { benchPaired(b, cache, mode) })
			}
		})
	}
}

func benchPaired(b *testing.B, cacheKind, mode string) {
	ctx := context.Background()
	db := testutil.Open(b, testutil.SQLite)
	client := ent.NewClient(ent.Driver(db.Driver()))
	if err := client.Schema.Create(ctx); err != nil {
		b.Fatal(err)
	}
	var cache backend.Cache = backend.NewLocalCache(0)
	if cacheKind == "memcached" {
		mc, err := backend.NewMemcache([]string{testutil.Memcached(b)}, backend.MemcacheOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { mc.Close() })
		cache = mc
	}
	c, err := backend.NewCachedDB(ent.NewSessionStore(client), cache, backend.CachedOptions{Prefix: testutil.MemcachedPrefix(b), Keys: testutil.CacheKeys})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	var tp trace.TracerProvider = tracenoop.NewTracerProvider()
	var mp metric.MeterProvider = metricnoop.NewMeterProvider()
	if mode != "noop" {
		sdk := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() { _ = sdk.Shutdown(ctx) })
		mp = sdk
	}
	underParent := strings.HasPrefix(mode, "sdk-sampled-parent")
	if mode != "noop" && mode != "metrics" {
		sampler := sdktrace.AlwaysSample()
		if mode != "sdk" {
			sampler = sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1))
		}
		sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}), sdktrace.WithSampler(sampler))
		b.Cleanup(func() { _ = sdk.Shutdown(ctx) })
		tp = sdk
	}
	w := wrapSDK(c, tp, mp)
	if mode == "sdk-sampled-parent-noroot" {
		w = qsessionsotel.Wrap(c, qsessionsotel.WithTracerProvider(tp), qsessionsotel.WithMeterProvider(mp),
			qsessionsotel.WithDBSystem("sqlite"), qsessionsotel.WithoutRootSpans())
	}
	requests := tp.Tracer("request")
	now := time.Now().UTC()
	rec := &backend.Record{Data: make([]byte, 200), IP: "192.0.2.1", UserAgent: testUA,
		ExpireDate: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now, LastActivity: now}
	if _, err := c.Create(ctx, rec, now); err != nil {
		b.Fatal(err)
	}
	var bare, otel []time.Duration
	lctx := ctx
	load := func(be backend.Backend) time.Duration {
		t0 := time.Now()
		if _, err := be.Load(lctx, rec.Key, now); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	i := 0
	for b.Loop() {
		var parent trace.Span
		if underParent {
			// The request's span, outside the timed loads.
			lctx, parent = requests.Start(ctx, "request")
		}
		if i%2 == 0 {
			bare = append(bare, load(c))
			otel = append(otel, load(w))
		} else {
			otel = append(otel, load(w))
			bare = append(bare, load(c))
		}
		if parent != nil {
			parent.End()
		}
		i++
	}
	mb, mo := median(bare), median(otel)
	b.ReportMetric(float64(mb.Nanoseconds()), "bare-ns")
	b.ReportMetric(float64(mo.Nanoseconds()), "otel-ns")
	b.ReportMetric(100*(float64(mo)/float64(mb)-1), "overhead-%")
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2]
}
