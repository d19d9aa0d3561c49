package qsessionsotel

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/qsessions/qsessions/backend"
)

// The operations: the value of qsessions.operation, and the span name after
// "qsessions." (qsessions.load, ...).
const (
	OpLoad         = "load"          // Backend.Load
	OpCreate       = "create"        // Backend.Create, CappingCreator.CreateCapped
	OpSave         = "save"          // Backend.Save
	OpTouch        = "touch"         // Backend.Touch
	OpBind         = "bind"          // Backend.Bind
	OpRotate       = "rotate"        // Backend.Rotate
	OpRevoke       = "revoke"        // Backend.Delete: every revoke and sign-out
	OpList         = "list"          // Backend.UserSessions
	OpExcessKeys   = "excess_keys"   // Backend.ExcessKeys (per-user cap, RevokeUser)
	OpFind         = "find"          // Backend.Find (lookup by public id; Manager.Ping)
	OpClearExpired = "clear_expired" // Backend.ClearExpired
)

// Metric names (see docs/observability.md for units and attributes).
const (
	MetricDuration       = "qsessions.backend.operation.duration"
	MetricLoads          = "qsessions.loads"
	MetricSaves          = "qsessions.saves"
	MetricExpiredCleared = "qsessions.expired.cleared"
	MetricLogins         = "qsessions.logins"
	MetricLogouts        = "qsessions.logouts"
	MetricRevokes        = "qsessions.revokes"
	MetricCapEvictions   = "qsessions.cap.evictions"
	MetricIPChanges      = "qsessions.ip.changes"
	MetricCacheErrors    = "qsessions.cache.errors"
	MetricCacheFallbacks = "qsessions.cache.fallbacks"
	MetricCachePurges    = "qsessions.cache.purges"
	MetricCacheConflicts = "qsessions.cache.conflicts"
	MetricCacheBad       = "qsessions.cache.bad_entries"
	MetricPurgePending   = "qsessions.cache.purge.pending"
	MetricBreakerOpen    = "qsessions.cache.breaker.open"
	MetricDistrusted     = "qsessions.cache.distrusted"
)

// Span event names.
const (
	// EventCacheError: a cache call of the operation failed; the database
	// answered (attributes qsessions.cache.operation, error.type).
	EventCacheError = "qsessions.cache.error"
	// EventCacheBadEntry: a save found a cache entry that failed
	// authentication (qsessions.cache.operation).
	EventCacheBadEntry = "qsessions.cache.bad_entry"
)

// durationBuckets are the latency histogram's bounds in seconds: from a
// cache hit on loopback (tens of µs) to a stuck database (seconds).
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5}

const (
	opLoad = iota
	opCreate
	opSave
	opTouch
	opBind
	opRotate
	opRevoke
	opList
	opExcessKeys
	opFind
	opClearExpired
	numOps
)

var opNames = [numOps]string{OpLoad, OpCreate, OpSave, OpTouch, OpBind, OpRotate, OpRevoke, OpList, OpExcessKeys, OpFind, OpClearExpired}

// Load results (qsessions.load.result).
const (
	loadFound = iota
	loadNotFound
	loadError
	numLoadResults
)

var loadResultNames = [numLoadResults]string{"found", "not_found", "error"}

// Cache results in the order of cacheResults; index 0 is "none" (db, or
// no result heard).
var cacheResults = []backend.CacheResult{"", backend.CacheHit, backend.CacheMiss, backend.CacheTombstone, backend.CacheError, backend.CacheBadEntry, backend.CacheBypass}

const numCacheResults = 7

func cacheResultIndex(r backend.CacheResult) int {
	for i, c := range cacheResults {
		if c == r {
			return i
		}
	}
	return 0
}

// Backend is a backend.Backend with a span and a latency measurement
// around every operation of the Backend inside. Wrap makes it.
type Backend struct {
	next   backend.Backend
	cached *backend.CachedDB
	tracer trace.Tracer
	// parentOnly: start spans only under a recording one (WithoutRootSpans).
	parentOnly bool
	base       []attribute.KeyValue

	dur            metric.Float64Histogram
	saves, cleared metric.Int64Counter
	// Loads are counted in atomics (a few ns on the hot path) and
	// reported by an observable counter at each collection.
	loads    [numLoadResults][numCacheResults]atomic.Int64
	loadsReg metric.Registration

	ops [numOps]opInfo
	// load's measurement options by load result and cache result.
	loadRec [numLoadResults][numCacheResults][]metric.RecordOption
	loadObs [numLoadResults][numCacheResults]metric.ObserveOption
	saveOK  []metric.AddOption
	clrOpts []metric.AddOption
}

// opInfo is what one operation's spans and measurements share, made once.
type opInfo struct {
	span  string
	start []trace.SpanStartOption
	attrs []attribute.KeyValue // base + operation
	ok    []metric.RecordOption
}

var (
	_ backend.Backend        = (*Backend)(nil)
	_ backend.CappingCreator = (*Backend)(nil)
	_ backend.CappingRotator = (*Backend)(nil)
)

// Wrap returns b with a span and a latency measurement around every
// operation (see the Op constants), counters of loads (by result and, on
// cached_db, by cache result), saves and expired sessions cleared. It
// forwards what the Manager looks for beyond Backend: SessionStore (ent
// deletes, Ping), CreateCapped and RotateCapped (a login in one round
// trip) and Unwrap (backend.CachedOf). When b is or wraps a CachedDB, Wrap sets its
// observer (CachedDB.Observe, replacing any) to learn each load's cache
// result and failed cache calls (span events).
//
// An instrument the MeterProvider refuses goes to otel.Handle (the SDK
// still returns a working one).
func Wrap(b backend.Backend, opts ...Option) *Backend {
	c := newConfig(opts)
	w := &Backend{next: b, cached: backend.CachedOf(b), tracer: c.tracer(), parentOnly: c.parentOnly}
	w.base = c.base(kindOf(b))
	m := c.meter()
	w.dur = handled(m.Float64Histogram(MetricDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of qsessions backend operations (database and cache)."),
		metric.WithExplicitBucketBoundaries(durationBuckets...)))
	loads := handled(m.Int64ObservableCounter(MetricLoads, metric.WithUnit("{load}"),
		metric.WithDescription("Session loads by result and, on cached_db, by what the cache held.")))
	w.saves = handled(m.Int64Counter(MetricSaves, metric.WithUnit("{save}"),
		metric.WithDescription("Session saves (changed sessions written back); error.type when they failed.")))
	w.cleared = handled(m.Int64Counter(MetricExpiredCleared, metric.WithUnit("{session}"),
		metric.WithDescription("Expired sessions deleted by ClearExpired.")))
	for i, name := range opNames {
		attrs := append(append([]attribute.KeyValue(nil), w.base...), OperationKey.String(name))
		w.ops[i] = opInfo{
			span:  "qsessions." + name,
			start: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...)},
			attrs: attrs,
			ok:    []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attrs...))},
		}
	}
	for lr := range numLoadResults {
		for cr := range numCacheResults {
			if w.cached == nil && cr != 0 {
				continue
			}
			// The counter: result and cache result; the histogram: operation
			// and cache result (hit and miss latencies differ tenfold).
			attrs := append(append([]attribute.KeyValue(nil), w.base...), LoadResultKey.String(loadResultNames[lr]))
			hattrs := append([]attribute.KeyValue(nil), w.ops[opLoad].attrs...)
			if cr != 0 {
				attrs = append(attrs, CacheResultKey.String(string(cacheResults[cr])))
				hattrs = append(hattrs, CacheResultKey.String(string(cacheResults[cr])))
			}
			// (NewSet sorts the slice it is given.)
			w.loadObs[lr][cr] = metric.WithAttributeSet(attribute.NewSet(attrs...))
			w.loadRec[lr][cr] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(hattrs...))}
		}
	}
	w.loadsReg = handled(m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for lr := range numLoadResults {
			for cr := range numCacheResults {
				if n := w.loads[lr][cr].Load(); n > 0 {
					o.ObserveInt64(loads, n, w.loadObs[lr][cr])
				}
			}
		}
		return nil
	}, loads))
	w.saveOK = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(w.base...))}
	w.clrOpts = w.saveOK
	if w.cached != nil {
		w.cached.Observe(observeCache)
	}
	return w
}

// handled passes err to otel.Handle and returns v: the SDK returns a
// working instrument along with an error (a name it warns about, say).
func handled[T any](v T, err error) T {
	if err != nil {
		otel.Handle(err)
	}
	return v
}

// kindOf is qsessions.backend for b: "cached_db", "db" or "other".
func kindOf(b backend.Backend) string {
	switch {
	case backend.CachedOf(b) != nil:
		return "cached_db"
	case isDB(b):
		return "db"
	}
	return "other"
}

// isDB reports whether b is or wraps a backend.DB.
func isDB(b backend.Backend) bool {
	for range 16 {
		switch v := b.(type) {
		case *backend.DB:
			return true
		case interface{ Unwrap() backend.Backend }:
			b = v.Unwrap()
		default:
			return false
		}
	}
	return false
}

// Unregister stops reporting qsessions.loads (an observable counter whose
// callback lives as long as the MeterProvider otherwise); the spans and
// the other instruments stay. Instrument's stop func calls it for the
// wrapper Instrument made.
func (w *Backend) Unregister() error {
	if w.loadsReg == nil {
		return nil
	}
	return w.loadsReg.Unregister()
}

// Unwrap returns the Backend inside.
func (w *Backend) Unwrap() backend.Backend { return w.next }

// SessionStore returns the Store under the Backend inside, or nil.
func (w *Backend) SessionStore() backend.Store {
	if s, ok := w.next.(interface{ SessionStore() backend.Store }); ok {
		return s.SessionStore()
	}
	return nil
}

// loadCtx carries a load's context and the cache result the observer
// heard, in one allocation.
type loadCtx struct {
	context.Context
	result backend.CacheResult
}

type loadKey struct{}

func (c *loadCtx) Value(k any) any {
	if k == (loadKey{}) {
		return c
	}
	return c.Context.Value(k)
}

// observeCache is the CachedDB's observer: a load's result goes to the
// wrapper's loadCtx; a failed cache call of any operation becomes an event
// on the span in ctx.
func observeCache(ctx context.Context, op string, r backend.CacheResult, err error) {
	if op == OpLoad {
		if lc, ok := ctx.Value(loadKey{}).(*loadCtx); ok {
			lc.result = r
		}
		return
	}
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	switch r {
	case backend.CacheBadEntry:
		span.AddEvent(EventCacheBadEntry, trace.WithAttributes(CacheOperationKey.String(op)))
	default:
		span.AddEvent(EventCacheError, trace.WithAttributes(CacheOperationKey.String(op), semconv.ErrorTypeKey.String(errorType(err))))
	}
}

// noSpan is the span of a call WithoutRootSpans does not trace: it records
// nothing and its End does nothing.
var noSpan = trace.SpanFromContext(context.Background())

// start begins the span of op (none, with WithoutRootSpans, when ctx
// carries no recording span).
func (w *Backend) start(ctx context.Context, op int) (context.Context, trace.Span, time.Time) {
	if w.parentOnly && !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, noSpan, time.Now()
	}
	ctx, span := w.tracer.Start(ctx, w.ops[op].span, w.ops[op].start...)
	return ctx, span, time.Now()
}

// end records op's latency and ends its span with err's status.
func (w *Backend) end(ctx context.Context, op int, span trace.Span, t0 time.Time, err error) {
	d := time.Since(t0).Seconds()
	if err == nil {
		w.dur.Record(ctx, d, w.ops[op].ok...)
		span.End()
		return
	}
	et := semconv.ErrorTypeKey.String(errorType(err))
	w.dur.Record(ctx, d, metric.WithAttributes(append(append([]attribute.KeyValue(nil), w.ops[op].attrs...), et)...))
	fail(span, et, err)
	span.End()
}

// fail marks span as failed with err (its message scrubbed of stored keys).
func fail(span trace.Span, et attribute.KeyValue, err error) {
	if span.IsRecording() {
		span.SetAttributes(et)
		span.SetStatus(codes.Error, scrub(err.Error()))
	}
}

// sessionID sets the public id of key on span.
func sessionID(span trace.Span, k attribute.Key, key string) {
	if span.IsRecording() && backend.ValidKey(key) {
		span.SetAttributes(k.String(backend.PublicID(key)))
	}
}

// Load loads through the Backend inside; on cached_db the span and the
// measurements say what the cache held.
func (w *Backend) Load(ctx context.Context, key string, now time.Time) (*backend.Record, error) {
	ctx, span, t0 := w.start(ctx, opLoad)
	lctx := ctx
	var lc *loadCtx
	if w.cached != nil {
		lc = &loadCtx{Context: ctx}
		lctx = lc
	}
	rec, err := w.next.Load(lctx, key, now)
	d := time.Since(t0).Seconds()
	lr := loadFound
	switch {
	case errors.Is(err, backend.ErrNotFound):
		lr = loadNotFound
	case err != nil:
		lr = loadError
	}
	cr := 0
	if lc != nil {
		cr = cacheResultIndex(lc.result)
	}
	w.loads[lr][cr].Add(1)
	if span.IsRecording() {
		kv := make([]attribute.KeyValue, 0, 3)
		kv = append(kv, LoadResultKey.String(loadResultNames[lr]))
		if cr != 0 {
			kv = append(kv, CacheResultKey.String(string(cacheResults[cr])))
		}
		if backend.ValidKey(key) {
			kv = append(kv, SessionIDKey.String(backend.PublicID(key)))
		}
		span.SetAttributes(kv...)
	}
	if lr != loadError {
		w.dur.Record(ctx, d, w.loadRec[lr][cr]...)
		span.End()
		return rec, err
	}
	et := semconv.ErrorTypeKey.String(errorType(err))
	attrs := append([]attribute.KeyValue(nil), w.ops[opLoad].attrs...)
	if cr != 0 {
		attrs = append(attrs, CacheResultKey.String(string(cacheResults[cr])))
	}
	w.dur.Record(ctx, d, metric.WithAttributes(append(attrs, et)...))
	fail(span, et, err)
	span.End()
	return rec, err
}

// Create creates through the Backend inside.
func (w *Backend) Create(ctx context.Context, rec *backend.Record, now time.Time) (string, error) {
	ctx, span, t0 := w.start(ctx, opCreate)
	token, err := w.next.Create(ctx, rec, now)
	if err == nil {
		sessionID(span, SessionIDKey, rec.Key)
	}
	w.end(ctx, opCreate, span, t0, err)
	return token, err
}

// CreateCapped forwards to the Backend inside when it is a
// backend.CappingCreator; otherwise it is Create and reports ok false (the
// Manager then enforces the cap itself).
func (w *Backend) CreateCapped(ctx context.Context, rec *backend.Record, now time.Time, keep int) (string, []string, bool, error) {
	cc, ok := w.next.(backend.CappingCreator)
	if !ok {
		token, err := w.Create(ctx, rec, now)
		return token, nil, false, err
	}
	ctx, span, t0 := w.start(ctx, opCreate)
	token, ended, ok, err := cc.CreateCapped(ctx, rec, now, keep)
	if err == nil && span.IsRecording() {
		sessionID(span, SessionIDKey, rec.Key)
		span.SetAttributes(CappedKey.Int(len(ended)))
	}
	w.end(ctx, opCreate, span, t0, err)
	return token, ended, ok, err
}

// RotateCapped forwards to the Backend inside when it is a
// backend.CappingRotator; otherwise it is Rotate and reports ok false (the
// Manager then enforces the cap itself).
func (w *Backend) RotateCapped(ctx context.Context, oldKey string, rec *backend.Record, now time.Time, keep int) (string, []string, bool, error) {
	cr, ok := w.next.(backend.CappingRotator)
	if !ok {
		token, err := w.Rotate(ctx, oldKey, rec, now)
		return token, nil, false, err
	}
	ctx, span, t0 := w.start(ctx, opRotate)
	sessionID(span, PreviousSessionIDKey, oldKey)
	token, ended, ok, err := cr.RotateCapped(ctx, oldKey, rec, now, keep)
	if err == nil && span.IsRecording() {
		sessionID(span, SessionIDKey, rec.Key)
		span.SetAttributes(CappedKey.Int(len(ended)))
	}
	w.end(ctx, opRotate, span, t0, err)
	return token, ended, ok, err
}

// Save saves through the Backend inside.
func (w *Backend) Save(ctx context.Context, rec *backend.Record, now time.Time) error {
	ctx, span, t0 := w.start(ctx, opSave)
	sessionID(span, SessionIDKey, rec.Key)
	err := w.next.Save(ctx, rec, now)
	if err == nil {
		w.saves.Add(ctx, 1, w.saveOK...)
	} else {
		w.saves.Add(ctx, 1, metric.WithAttributes(append(append([]attribute.KeyValue(nil), w.base...), semconv.ErrorTypeKey.String(errorType(err)))...))
	}
	w.end(ctx, opSave, span, t0, err)
	return err
}

// Touch touches through the Backend inside.
func (w *Backend) Touch(ctx context.Context, rec *backend.Record, cutoff, now time.Time) (bool, error) {
	ctx, span, t0 := w.start(ctx, opTouch)
	sessionID(span, SessionIDKey, rec.Key)
	wrote, err := w.next.Touch(ctx, rec, cutoff, now)
	if err == nil && span.IsRecording() {
		span.SetAttributes(WroteKey.Bool(wrote))
	}
	w.end(ctx, opTouch, span, t0, err)
	return wrote, err
}

// Bind binds through the Backend inside.
func (w *Backend) Bind(ctx context.Context, key, deviceKey string, secret []byte, now time.Time) error {
	ctx, span, t0 := w.start(ctx, opBind)
	sessionID(span, SessionIDKey, key)
	err := w.next.Bind(ctx, key, deviceKey, secret, now)
	w.end(ctx, opBind, span, t0, err)
	return err
}

// Rotate rotates through the Backend inside.
func (w *Backend) Rotate(ctx context.Context, oldKey string, rec *backend.Record, now time.Time) (string, error) {
	ctx, span, t0 := w.start(ctx, opRotate)
	sessionID(span, PreviousSessionIDKey, oldKey)
	token, err := w.next.Rotate(ctx, oldKey, rec, now)
	if err == nil {
		sessionID(span, SessionIDKey, rec.Key)
	}
	w.end(ctx, opRotate, span, t0, err)
	return token, err
}

// Delete deletes (revokes) through the Backend inside.
func (w *Backend) Delete(ctx context.Context, keys ...string) (int, error) {
	ctx, span, t0 := w.start(ctx, opRevoke)
	if span.IsRecording() {
		span.SetAttributes(SessionsRequestedKey.Int(len(keys)))
		if len(keys) == 1 {
			sessionID(span, SessionIDKey, keys[0])
		}
	}
	n, err := w.next.Delete(ctx, keys...)
	if span.IsRecording() {
		span.SetAttributes(SessionsKey.Int(n))
	}
	w.end(ctx, opRevoke, span, t0, err)
	return n, err
}

// UserSessions lists through the Backend inside.
func (w *Backend) UserSessions(ctx context.Context, userID any, now time.Time) ([]*backend.Record, error) {
	ctx, span, t0 := w.start(ctx, opList)
	rs, err := w.next.UserSessions(ctx, userID, now)
	if err == nil && span.IsRecording() {
		span.SetAttributes(SessionsKey.Int(len(rs)))
	}
	w.end(ctx, opList, span, t0, err)
	return rs, err
}

// ExcessKeys asks the Backend inside.
func (w *Backend) ExcessKeys(ctx context.Context, userID any, now time.Time, keep int) ([]string, error) {
	ctx, span, t0 := w.start(ctx, opExcessKeys)
	keys, err := w.next.ExcessKeys(ctx, userID, now, keep)
	if err == nil && span.IsRecording() {
		span.SetAttributes(SessionsKey.Int(len(keys)))
	}
	w.end(ctx, opExcessKeys, span, t0, err)
	return keys, err
}

// Find asks the Backend inside.
func (w *Backend) Find(ctx context.Context, publicID string) ([]*backend.Record, error) {
	ctx, span, t0 := w.start(ctx, opFind)
	if id, ok := backend.ParsePublicID(publicID); ok && span.IsRecording() {
		span.SetAttributes(SessionIDKey.String(id))
	}
	rs, err := w.next.Find(ctx, publicID)
	if err == nil && span.IsRecording() {
		span.SetAttributes(SessionsKey.Int(len(rs)))
	}
	w.end(ctx, opFind, span, t0, err)
	return rs, err
}

// ClearExpired clears through the Backend inside and counts what went
// (also when it stopped at an error).
func (w *Backend) ClearExpired(ctx context.Context, now time.Time) (int, error) {
	ctx, span, t0 := w.start(ctx, opClearExpired)
	n, err := w.next.ClearExpired(ctx, now)
	if n > 0 {
		w.cleared.Add(ctx, int64(n), w.clrOpts...)
	}
	if span.IsRecording() {
		span.SetAttributes(SessionsKey.Int(n))
	}
	w.end(ctx, opClearExpired, span, t0, err)
	return n, err
}

// errorType is error.type for err: a short name for qsessions' own errors
// and the context's, else the semantic conventions' type name.
func errorType(err error) string {
	switch {
	case err == nil:
		return semconv.ErrorTypeOther.Value.AsString()
	case errors.Is(err, backend.ErrSessionInterrupted):
		return "session_interrupted"
	case errors.Is(err, backend.ErrNotFound):
		return "not_found"
	case errors.Is(err, backend.ErrKeyExists):
		return "key_exists"
	case errors.Is(err, backend.ErrNoTable):
		return "no_table"
	case errors.Is(err, backend.ErrUserID):
		return "user_id"
	case errors.Is(err, backend.ErrCacheUnavailable):
		return "breaker_open"
	case errors.Is(err, backend.ErrValueTooLarge):
		return "value_too_large"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return semconv.ErrorType(err).Value.AsString()
}

// scrub replaces every run of 32 or more hex digits in s (a stored key,
// should an error message hold one) with "[key]".
func scrub(s string) string {
	var out []byte
	run := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && isHex(s[i]) {
			run++
			continue
		}
		if run >= 32 {
			if out == nil {
				out = append(make([]byte, 0, len(s)), s[:i-run]...)
			}
			out = append(out, "[key]"...)
		} else if out != nil {
			out = append(out, s[i-run:i]...)
		}
		if out != nil && i < len(s) {
			out = append(out, s[i])
		}
		run = 0
	}
	if out == nil {
		return s
	}
	return string(out)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
