package qsessionsotel

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the tracer and the meter (the
// otel_scope_name label in Prometheus).
const ScopeName = "github.com/qsessions/qsessions/otel"

// Option configures Wrap and Instrument.
type Option func(*config)

type config struct {
	tp         trace.TracerProvider
	mp         metric.MeterProvider
	dbSystem   string
	parentOnly bool
}

// WithTracerProvider sets the TracerProvider spans come from; default
// otel.GetTracerProvider() at the time of the call.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithMeterProvider sets the MeterProvider metrics go to; default
// otel.GetMeterProvider() at the time of the call.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// WithDBSystem sets db.system.name on every span and measurement: the
// database under the session table, as the semantic conventions name it:
// "postgresql", "mysql", "mariadb", "sqlite" (see DBSystem). Default: not
// set, as the Backend does not tell.
func WithDBSystem(name string) Option {
	return func(c *config) { c.dbSystem = name }
}

// WithoutRootSpans makes the wrapper start a span only for a backend call
// whose context already carries a recording span, such as the server span
// of an HTTP request the app's tracing sampled. Calls outside any recorded
// trace (requests the sampler dropped, the background cleaner, a CLI) are
// still measured by the metrics but start no span, so they cost what the
// no-op tracer costs instead of the SDK's span (about 0.5 µs for a span the
// sampler drops, 2-4 µs for one it records, on the machine of
// BENCHMARKS.md). Default: off; every call starts a span and the
// TracerProvider's sampler decides, so a call with no parent can start a
// trace of its own.
func WithoutRootSpans() Option {
	return func(c *config) { c.parentOnly = true }
}

// DBSystem returns the db.system.name of an ent dialect name (dburl.DB's
// Dialect) or an Atlas-style URL scheme: "postgresql", "mysql", "mariadb"
// or "sqlite"; "" for anything else.
func DBSystem(dialectOrScheme string) string {
	switch dialectOrScheme {
	case "postgres", "postgresql":
		return semconv.DBSystemNamePostgreSQL.Value.AsString()
	case "mysql":
		return semconv.DBSystemNameMySQL.Value.AsString()
	case "maria", "mariadb":
		return semconv.DBSystemNameMariaDB.Value.AsString()
	case "sqlite", "sqlite3":
		return semconv.DBSystemNameSQLite.Value.AsString()
	}
	return ""
}

func newConfig(opts []Option) *config {
	c := &config{}
	for _, o := range opts {
		o(c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	return c
}

func (c *config) tracer() trace.Tracer {
	return c.tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL))
}

func (c *config) meter() metric.Meter {
	return c.mp.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL))
}

// base returns the attributes every span and measurement of a backend
// carries.
func (c *config) base(kind string) []attribute.KeyValue {
	kv := []attribute.KeyValue{BackendKey.String(kind)}
	if c.dbSystem != "" {
		kv = append(kv, semconv.DBSystemNameKey.String(c.dbSystem))
	}
	return kv
}

// Attribute keys of qsessions' own (the semantic conventions' are used
// where they exist: db.system.name, error.type, server.address,
// server.port).
const (
	// BackendKey: "db" or "cached_db" (or "other" for a Backend of
	// another kind).
	BackendKey = attribute.Key("qsessions.backend")
	// OperationKey: the backend operation (see the Op constants).
	OperationKey = attribute.Key("qsessions.operation")
	// CacheResultKey: what a cached_db load found in the cache: hit, miss,
	// tombstone, error, bad-entry or bypass (backend.CacheResult).
	CacheResultKey = attribute.Key("qsessions.cache.result")
	// LoadResultKey: found, not_found or error.
	LoadResultKey = attribute.Key("qsessions.load.result")
	// SessionIDKey: the public id of the session concerned
	// (backend.PublicID), never the token or the stored key.
	SessionIDKey = attribute.Key("qsessions.session.id")
	// PreviousSessionIDKey: on a rotate, the public id of the old session.
	PreviousSessionIDKey = attribute.Key("qsessions.session.previous_id")
	// SessionsKey: how many sessions an operation returned or deleted
	// (list, excess_keys, find, delete, clear_expired), or asked to delete
	// (qsessions.sessions.requested on delete).
	SessionsKey          = attribute.Key("qsessions.sessions")
	SessionsRequestedKey = attribute.Key("qsessions.sessions.requested")
	// CappedKey: on a capped create or rotate (a login), how many of the
	// user's other sessions it ended.
	CappedKey = attribute.Key("qsessions.sessions.capped")
	// WroteKey: on a touch, whether it wrote.
	WroteKey = attribute.Key("qsessions.touch.wrote")
	// CacheOperationKey: on a qsessions.cache.error event, the cache call
	// that failed (get, add, write, tombstone, purge, decode, encode).
	CacheOperationKey = attribute.Key("qsessions.cache.operation")
	// RevokeCauseKey: who ended a session: owner, app, admin, cap, cli,
	// ent (qsessions.Cause).
	RevokeCauseKey = attribute.Key("qsessions.revoke.cause")
)
