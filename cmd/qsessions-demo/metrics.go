package main

// Observability in the demo: GET /healthz answers a readiness probe from
// Manager.Ping; --metrics-addr serves the OpenTelemetry metrics of
// package qsessionsotel as Prometheus text (and /healthz again) on a port
// of their own; --trace stdout prints a span per backend operation.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/middleware"
	qsessionsotel "github.com/qsessions/qsessions/otel"
	"github.com/qsessions/qsessions/pages"
)

// metricsConfig is what the observability flags set (config.Metrics).
type metricsConfig struct {
	// Addr serves /metrics (and /healthz) when set (--metrics-addr).
	Addr string
	// Trace is where spans go: "" (nowhere) or "stdout" (--trace).
	Trace string
	// traceOut replaces os.Stdout for --trace stdout (tests).
	traceOut io.Writer

	// set up by setup, released by close
	srv      *http.Server
	addr     string // the address the metrics server listens on
	mp       *sdkmetric.MeterProvider
	tp       *sdktrace.TracerProvider
	unreg    func() error
	serveErr chan error
}

func init() {
	register(feature{
		name:   "metrics and traces",
		flags:  metricsFlags,
		setup:  metricsSetup,
		routes: func(a *app, mux *http.ServeMux) { mux.HandleFunc("GET /healthz", a.healthz) },
		close:  metricsClose,
	})
}

func metricsFlags(fs *flag.FlagSet, cfg *config) {
	fs.StringVar(&cfg.Metrics.Addr, "metrics-addr", "", "serve OpenTelemetry metrics as Prometheus text on http://HOST:PORT/metrics (and /healthz); default: off")
	fs.StringVar(&cfg.Metrics.Trace, "trace", "", `print a span per session backend operation: "stdout"; default: off`)
}

func metricsSetup(ctx context.Context, a *app, _ *middleware.Options, _ *pages.Config) error {
	c := &a.cfg.Metrics
	if c.Trace != "" && c.Trace != "stdout" {
		return fmt.Errorf("--trace %q: the only destination is stdout", c.Trace)
	}
	if c.Addr == "" && c.Trace == "" {
		return nil
	}
	res := resource.NewSchemaless(attribute.String("service.name", "qsessions-demo"))
	var mp metric.MeterProvider = noop.NewMeterProvider()
	var reg *prometheus.Registry
	if c.Addr != "" {
		reg = prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(reg))
		if err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		c.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
		mp = c.mp
	}
	var tp trace.TracerProvider = tracenoop.NewTracerProvider()
	if c.Trace == "stdout" {
		out := c.traceOut
		if out == nil {
			out = os.Stdout
		}
		exp, err := stdouttrace.New(stdouttrace.WithWriter(out), stdouttrace.WithPrettyPrint())
		if err != nil {
			return fmt.Errorf("--trace: %w", err)
		}
		c.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(res))
		tp = c.tp
	}
	unreg, err := qsessionsotel.Instrument(a.m, qsessionsotel.WithMeterProvider(mp), qsessionsotel.WithTracerProvider(tp),
		qsessionsotel.WithDBSystem(qsessionsotel.DBSystem(scheme(a.dbURL))))
	if err != nil {
		return err
	}
	c.unreg = unreg
	if c.Trace != "" {
		a.notes = append(a.notes, "printing a span per session backend operation to stdout (--trace stdout)")
	}
	if c.Addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", a.healthz)
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	c.addr = ln.Addr().String()
	c.serveErr = make(chan error, 1)
	go func() { c.serveErr <- c.srv.Serve(ln) }()
	a.notes = append(a.notes, fmt.Sprintf("metrics on http://%s/metrics, readiness on /healthz", c.addr))
	return nil
}

// scheme is the scheme of an Atlas-style URL ("postgres", "maria", ...).
func scheme(u string) string {
	s, _, _ := strings.Cut(u, "://")
	return s
}

func metricsClose(a *app) {
	c := &a.cfg.Metrics
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c.srv != nil {
		_ = c.srv.Shutdown(ctx)
		if err := <-c.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("demo: metrics server", "err", err)
		}
		c.srv = nil
	}
	if c.unreg != nil {
		_ = c.unreg()
		c.unreg = nil
	}
	if c.mp != nil {
		_ = c.mp.Shutdown(ctx)
		c.mp = nil
	}
	if c.tp != nil {
		_ = c.tp.Shutdown(ctx)
		c.tp = nil
	}
}

// health is the JSON /healthz answers.
type health struct {
	Ready bool `json:"ready"`
	// Database is "ok" or "error" (Error says why).
	Database string `json:"database"`
	Error    string `json:"error,omitempty"`
	// Cache is "none", "healthy" or "degraded" (serving from the
	// database: a breaker is open, keys await a purge, or the cache is
	// distrusted).
	Cache        string   `json:"cache"`
	OpenBreakers []string `json:"open_breakers,omitempty"`
}

// healthz is a readiness probe: 200 when the session table answers (a
// degraded cache still serves), 503 otherwise; one indexed query bounded
// by the Manager's Timeout.
func (a *app) healthz(w http.ResponseWriter, r *http.Request) {
	h, err := a.m.Ping(r.Context())
	out := health{Ready: h.Ready(), Database: "ok", Cache: h.Cache, OpenBreakers: h.OpenBreakers}
	if err != nil {
		out.Database, out.Error = "error", err.Error()
	}
	if c := backend.CachedOf(a.m.Backend); c != nil && h.Cache == "none" {
		// Ping looks for a *backend.CachedDB itself, not through the
		// tracing wrapper (qsessionsotel.Backend): read the same counters.
		out.Cache, out.OpenBreakers = cacheState(c)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !out.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(out)
}

// cacheState is Ping's cache verdict on c: "healthy" or "degraded", and
// the servers whose breaker is open.
func cacheState(c *backend.CachedDB) (string, []string) {
	var open []string
	if mc, ok := c.Cache().(*backend.Memcache); ok {
		for addr, o := range mc.Breakers() {
			if o {
				open = append(open, addr)
			}
		}
	}
	slices.Sort(open)
	st := c.Stats()
	if st.Distrusted || st.PurgePending > 0 || len(open) > 0 {
		return "degraded", open
	}
	return "healthy", open
}
