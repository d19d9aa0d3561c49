package qsessionsotel_test

import (
	"context"
	"log"
	"net/http"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/middleware"
	qsessionsotel "github.com/qsessions/qsessions/otel"
)

// Instrument a Manager once, before it serves, with the global providers
// the app's OpenTelemetry set-up installed (otel.SetTracerProvider,
// otel.SetMeterProvider).
func Example() {
	store := backend.NewMemStore() // the app's generated Store: ent.NewSessionStore(client)
	m := qsessions.New(backend.NewDB(store))

	stop, err := qsessionsotel.Instrument(m, qsessionsotel.WithDBSystem("postgresql"))
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	// Serve as before: every backend call now has its span and metrics.
	mux := http.NewServeMux()
	_ = middleware.New(m, middleware.Options{})(mux)
}

// Pass providers of your own instead of the globals, here the SDK's.
func ExampleInstrument_providers() {
	ctx := context.Background()
	tp := sdktrace.NewTracerProvider()
	mp := sdkmetric.NewMeterProvider()
	defer tp.Shutdown(ctx)
	defer mp.Shutdown(ctx)

	m := qsessions.New(backend.NewDB(backend.NewMemStore()))
	stop, err := qsessionsotel.Instrument(m,
		qsessionsotel.WithTracerProvider(tp),
		qsessionsotel.WithMeterProvider(mp),
		qsessionsotel.WithDBSystem(qsessionsotel.DBSystem("postgres")))
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
}

// Wrap alone traces and times a Backend (no event counters, no gauges):
// hand the wrapped Backend to qsessions.New.
func ExampleWrap() {
	b := qsessionsotel.Wrap(backend.NewDB(backend.NewMemStore()), qsessionsotel.WithDBSystem("sqlite"))
	m := qsessions.New(b)
	_ = m
}

// WithoutRootSpans traces only the backend calls of requests your HTTP
// instrumentation sampled; the rest are measured, not traced.
func ExampleWithoutRootSpans() {
	m := qsessions.New(backend.NewDB(backend.NewMemStore()))
	stop, err := qsessionsotel.Instrument(m, qsessionsotel.WithoutRootSpans())
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
}
