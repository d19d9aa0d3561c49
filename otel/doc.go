// Package qsessionsotel traces and measures qsessions with OpenTelemetry,
// in a module of its own so that apps that do not use it carry none of
// OpenTelemetry's dependencies (like go-redis' redisotel).
//
// One call instruments a Manager, before it serves:
//
//	m := qsessions.New(b)
//	stop, err := qsessionsotel.Instrument(m,
//		qsessionsotel.WithDBSystem("postgresql"))
//	if err != nil { ... }
//	defer stop()
//
// Instrument wraps m.Backend with Wrap (a span and a latency measurement
// for every operation that reaches the database or the cache, counters of
// loads, saves and cleared sessions), chains m.OnEvent (counters of
// logins, logouts, revokes by cause, cap evictions) and, for a cached_db
// backend, registers observable counters and gauges read from
// CachedDB.Stats and Memcache.Breakers at each collection. Tracer and
// meter default to the global providers (otel.GetTracerProvider,
// otel.GetMeterProvider); WithTracerProvider and WithMeterProvider pass
// others.
//
// Spans and attributes follow the OpenTelemetry semantic conventions
// v1.43.0 where they have a name for the thing (db.system.name,
// error.type, server.address, server.port); the rest is under
// "qsessions.". A span or a metric never holds a token or a stored key: at
// most the public id (backend.PublicID). docs/observability.md lists every
// span, metric and attribute.
//
// The engine never imports OpenTelemetry: Wrap sets the CachedDB's
// observer (CachedDB.Observe) to learn each load's cache result, and
// finds the CachedDB behind other wrappers with backend.CachedOf.
package qsessionsotel
