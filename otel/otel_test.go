package qsessionsotel_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/internal/testutil"
	qsessionsotel "github.com/qsessions/qsessions/otel"
)

const testUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"

// env is a Manager over a real database (and memcached) instrumented with
// in-memory readers.
type env struct {
	t      *testing.T
	ctx    context.Context
	client *ent.Client
	m      *qsessions.Manager
	cached *backend.CachedDB
	clock  *testutil.Clock
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	system string
	kind   string
	// secrets are every token and stored key the test saw: none may show
	// up in a span or a metric.
	secrets []string
}

// newEnv builds the env on db; kind is "db" or "cached_db" (cache then
// names the Cache, nil for the shared test memcached).
func newEnv(t *testing.T, db *testutil.DB, kind string, cache backend.Cache) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, ctx: ctx, clock: testutil.NewClock(), kind: kind, system: qsessionsotel.DBSystem(db.Dialect)}
	e.client = ent.NewClient(ent.Driver(db.Driver()))
	if err := e.client.Schema.Create(ctx); err != nil {
		t.Fatalf("creating schema: %v", err)
	}
	store := ent.NewSessionStore(e.client, backend.WithClock(e.clock.Now))
	var b backend.Backend
	switch kind {
	case "db":
		b = backend.NewDB(store)
	case "cached_db":
		if cache == nil {
			// A generous timeout: on a busy machine a call past the
			// default 100 ms is a cache error and the test's hit a miss.
			mc, err := backend.NewMemcache([]string{testutil.Memcached(t)}, backend.MemcacheOptions{Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { mc.Close() })
			cache = mc
		}
		c, err := backend.NewCachedDB(store, cache, backend.CachedOptions{Prefix: testutil.MemcachedPrefix(t), TTL: time.Minute, Keys: testutil.CacheKeys})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		e.cached, b = c, c
	}
	e.spans = tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.spans))
	e.reader = sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.reader))
	t.Cleanup(func() { _ = tp.Shutdown(ctx); _ = mp.Shutdown(ctx) })
	e.m = qsessions.New(b)
	e.m.Now = e.clock.Now
	stop, err := qsessionsotel.Instrument(e.m, qsessionsotel.WithTracerProvider(tp), qsessionsotel.WithMeterProvider(mp),
		qsessionsotel.WithDBSystem(e.system))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stop() })
	return e
}

func (e *env) user(name string) int {
	e.t.Helper()
	u, err := e.client.User.Create().SetUsername(name + "-" + fmt.Sprint(time.Now().UnixNano())).Save(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return u.ID
}

// login signs userID in from a fresh session and returns its token.
func (e *env) login(userID int) string {
	e.t.Helper()
	s := e.m.Start(e.ctx, "", "192.0.2.1", testUA)
	if err := s.Login(e.ctx, userID); err != nil {
		e.t.Fatalf("Login: %v", err)
	}
	c, err := s.Save(e.ctx)
	if err != nil || c.Token == "" {
		e.t.Fatalf("Save after Login: %+v %v", c, err)
	}
	e.secrets = append(e.secrets, c.Token, backend.KeyOf(c.Token))
	return c.Token
}

// request loads the session of token, runs f on it and saves it.
func (e *env) request(token string, f func(s *qsessions.Session)) qsessions.Commit {
	e.t.Helper()
	s := e.m.Start(e.ctx, token, "192.0.2.1", testUA)
	if err := s.Load(); err != nil {
		e.t.Fatalf("Load: %v", err)
	}
	if f != nil {
		f(s)
	}
	c, err := s.Save(e.ctx)
	if err != nil {
		e.t.Fatalf("Save: %v", err)
	}
	if c.Token != "" {
		e.secrets = append(e.secrets, c.Token, backend.KeyOf(c.Token))
	}
	return c
}

// ended returns the finished spans named name and forgets all spans.
func (e *env) takeSpans() []sdktrace.ReadOnlySpan {
	s := e.spans.Ended()
	e.spans.Reset()
	for _, sp := range s {
		for _, kv := range spanAttrs(sp) {
			e.noSecret(sp.Name()+" "+string(kv.Key), kv.Value.Emit())
		}
		e.noSecret(sp.Name()+" status", sp.Status().Description)
	}
	return s
}

func spanAttrs(sp sdktrace.ReadOnlySpan) []attribute.KeyValue {
	kv := slices.Clone(sp.Attributes())
	for _, ev := range sp.Events() {
		kv = append(kv, ev.Attributes...)
	}
	return kv
}

func (e *env) noSecret(where, v string) {
	e.t.Helper()
	for _, s := range e.secrets {
		if s != "" && strings.Contains(v, s) {
			e.t.Errorf("%s holds a token or stored key: %q", where, v)
		}
	}
}

// span returns the only span named name among spans, failing otherwise.
func (e *env) span(spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	e.t.Helper()
	var found []sdktrace.ReadOnlySpan
	var names []string
	for _, s := range spans {
		names = append(names, s.Name())
		if s.Name() == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		e.t.Fatalf("want one span %s, got %d among %v", name, len(found), names)
	}
	sp := found[0]
	e.wantAttr(sp, "qsessions.backend", e.kind)
	e.wantAttr(sp, "db.system.name", e.system)
	e.wantAttr(sp, "qsessions.operation", strings.TrimPrefix(name, "qsessions."))
	return sp
}

func attr(sp sdktrace.ReadOnlySpan, key string) (string, bool) {
	for _, kv := range sp.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit(), true
		}
	}
	return "", false
}

func (e *env) wantAttr(sp sdktrace.ReadOnlySpan, key, want string) {
	e.t.Helper()
	if got, ok := attr(sp, key); !ok || got != want {
		e.t.Errorf("span %s: %s = %q (set %v), want %q; all: %v", sp.Name(), key, got, ok, want, sp.Attributes())
	}
}

func (e *env) noAttr(sp sdktrace.ReadOnlySpan, key string) {
	e.t.Helper()
	if got, ok := attr(sp, key); ok {
		e.t.Errorf("span %s: %s = %q, want it unset", sp.Name(), key, got)
	}
}

// metrics collects the metrics now.
func (e *env) metrics() map[string]metricdata.Metrics {
	e.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := e.reader.Collect(e.ctx, &rm); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != qsessionsotel.ScopeName {
			e.t.Errorf("scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
			for _, set := range attrSets(m) {
				for _, kv := range set.ToSlice() {
					e.noSecret(m.Name+" "+string(kv.Key), kv.Value.Emit())
				}
			}
		}
	}
	return out
}

func attrSets(m metricdata.Metrics) []attribute.Set {
	var out []attribute.Set
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes)
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes)
		}
	}
	return out
}

// match reports whether set has every key=value of want.
func match(set attribute.Set, want map[string]string) bool {
	for k, v := range want {
		got, ok := set.Value(attribute.Key(k))
		if !ok || got.Emit() != v {
			return false
		}
	}
	return true
}

// value sums the data points of metric name whose attributes match want:
// a counter's or a gauge's value, a histogram's count.
func value(ms map[string]metricdata.Metrics, name string, want map[string]string) (int64, bool) {
	m, ok := ms[name]
	if !ok {
		return 0, false
	}
	var n int64
	found := false
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes, want) {
				n, found = n+p.Value, true
			}
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes, want) {
				n, found = n+p.Value, true
			}
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes, want) {
				n, found = n+int64(p.Count), true
			}
		}
	}
	return n, found
}

func (e *env) want(ms map[string]metricdata.Metrics, name string, want map[string]string, n int64) {
	e.t.Helper()
	got, ok := value(ms, name, want)
	if !ok || got != n {
		e.t.Errorf("%s%v = %d (found %v), want %d", name, want, got, ok, n)
	}
}

func (e *env) atLeast(ms map[string]metricdata.Metrics, name string, want map[string]string, n int64) {
	e.t.Helper()
	got, ok := value(ms, name, want)
	if !ok || got < n {
		e.t.Errorf("%s%v = %d (found %v), want at least %d", name, want, got, ok, n)
	}
}

// TestOperations runs every backend operation through an instrumented
// Manager on each database, db and cached_db, and checks its span and its
// metrics.
func TestOperations(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		for _, kind := range []string{"db", "cached_db"} {
			t.Run(kind, func(t *testing.T) { testOperations(t, newEnv(t, db, kind, nil)) })
		}
	})
}

func testOperations(t *testing.T, e *env) {
	ctx := e.ctx
	cached := e.kind == "cached_db"
	alice := e.user("alice")

	// Login: a capped create.
	token := e.login(alice)
	sp := e.span(e.takeSpans(), "qsessions.create")
	e.wantAttr(sp, "qsessions.session.id", backend.PublicID(backend.KeyOf(token)))
	e.wantAttr(sp, "qsessions.sessions.capped", "0")
	if sp.SpanKind().String() != "client" || sp.Status().Code != codes.Unset {
		t.Errorf("create span: kind %v status %v", sp.SpanKind(), sp.Status())
	}

	// A read: a cache hit on cached_db (the create filled it).
	e.request(token, nil)
	sp = e.span(e.takeSpans(), "qsessions.load")
	e.wantAttr(sp, "qsessions.load.result", "found")
	e.wantAttr(sp, "qsessions.session.id", backend.PublicID(backend.KeyOf(token)))
	if cached {
		e.wantAttr(sp, "qsessions.cache.result", "hit")
	} else {
		e.noAttr(sp, "qsessions.cache.result")
	}

	// An unknown session: not found (a miss on cached_db), not an error.
	unknown := "qsess-unknown-token-0000000000000000000000000000"
	if tok, _, err := backend.NewToken(nil); err == nil {
		unknown = tok
	}
	e.secrets = append(e.secrets, unknown, backend.KeyOf(unknown))
	if _, err := e.m.Backend.Load(ctx, backend.KeyOf(unknown), e.clock.Now()); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Load of an unknown key: %v", err)
	}
	sp = e.span(e.takeSpans(), "qsessions.load")
	e.wantAttr(sp, "qsessions.load.result", "not_found")
	if sp.Status().Code != codes.Unset {
		t.Errorf("a load that found nothing is not an error: %v", sp.Status())
	}
	if cached {
		e.wantAttr(sp, "qsessions.cache.result", "miss")
	}

	// A write: one save.
	e.request(token, func(s *qsessions.Session) {
		if err := s.Set("colour", "blue"); err != nil {
			t.Fatal(err)
		}
	})
	spans := e.takeSpans()
	e.span(spans, "qsessions.load")
	sp = e.span(spans, "qsessions.save")
	e.wantAttr(sp, "qsessions.session.id", backend.PublicID(backend.KeyOf(token)))

	// Activity: a touch once ActivityInterval has passed.
	e.clock.Advance(2 * time.Minute)
	e.request(token, nil)
	sp = e.span(e.takeSpans(), "qsessions.touch")
	e.wantAttr(sp, "qsessions.touch.wrote", "true")

	// Login again from the same session: a rotate.
	var rotated string
	c := e.request(token, func(s *qsessions.Session) {
		if err := s.CycleKey(ctx); err != nil {
			t.Fatal(err)
		}
	})
	rotated = c.Token
	sp = e.span(e.takeSpans(), "qsessions.rotate")
	e.wantAttr(sp, "qsessions.session.previous_id", backend.PublicID(backend.KeyOf(token)))
	e.wantAttr(sp, "qsessions.session.id", backend.PublicID(backend.KeyOf(rotated)))
	// Login of a session that has a row: a rotate with the cap in the same
	// step (RotateCapped forwarded).
	anon := e.m.Start(ctx, "", "192.0.2.1", testUA)
	if err := anon.Set("cart", 3); err != nil {
		t.Fatal(err)
	}
	ac, err := anon.Save(ctx)
	if err != nil || ac.Token == "" {
		t.Fatalf("anonymous save: %+v %v", ac, err)
	}
	e.secrets = append(e.secrets, ac.Token, backend.KeyOf(ac.Token))
	e.takeSpans()
	carol := e.user("carol")
	c = e.request(ac.Token, func(s *qsessions.Session) {
		if err := s.Login(ctx, carol); err != nil {
			t.Fatal(err)
		}
	})
	sp = e.span(e.takeSpans(), "qsessions.rotate")
	e.wantAttr(sp, "qsessions.session.previous_id", backend.PublicID(backend.KeyOf(ac.Token)))
	e.wantAttr(sp, "qsessions.session.id", backend.PublicID(backend.KeyOf(c.Token)))
	e.wantAttr(sp, "qsessions.sessions.capped", "0")
	if _, err := e.m.RevokeUser(qsessions.WithCause(ctx, qsessions.CauseCLI), carol); err != nil {
		t.Fatal(err)
	}
	e.takeSpans()

	// The old token is gone: on cached_db its tombstone answers.
	if _, err := e.m.Backend.Load(ctx, backend.KeyOf(token), e.clock.Now()); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Load of the rotated-away key: %v", err)
	}
	sp = e.span(e.takeSpans(), "qsessions.load")
	if cached {
		e.wantAttr(sp, "qsessions.cache.result", "tombstone")
	}

	// A device binding (the session then needs its device's proof).
	if err := e.m.Backend.Bind(ctx, backend.KeyOf(rotated), "device-key-1", []byte("0123456789abcdef0123456789abcdef"), e.clock.Now()); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	e.span(e.takeSpans(), "qsessions.bind")

	// A second session, listed, found, and revoked by its owner.
	other := e.login(alice)
	e.takeSpans()
	infos, err := e.m.UserSessions(ctx, alice)
	if err != nil || len(infos) != 2 {
		t.Fatalf("UserSessions: %v %v", infos, err)
	}
	sp = e.span(e.takeSpans(), "qsessions.list")
	e.wantAttr(sp, "qsessions.sessions", "2")
	otherID := backend.PublicID(backend.KeyOf(other))
	if _, err := e.m.Find(ctx, otherID); err != nil {
		t.Fatalf("Find: %v", err)
	}
	sp = e.span(e.takeSpans(), "qsessions.find")
	e.wantAttr(sp, "qsessions.session.id", otherID)
	if err := e.m.Revoke(ctx, alice, otherID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	spans = e.takeSpans()
	e.span(spans, "qsessions.find")
	sp = e.span(spans, "qsessions.revoke")
	e.wantAttr(sp, "qsessions.session.id", otherID)
	e.wantAttr(sp, "qsessions.sessions", "1")

	// The cap: at most 2 sessions, so the third login ends the oldest.
	e.m.MaxSessionsPerUser = 2
	e.login(alice)
	e.takeSpans()
	e.login(alice)
	spans = e.takeSpans()
	sp = e.span(spans, "qsessions.create")
	// CreateCapped ends the oldest in the same step where the store can
	// (every generated Store); otherwise the Manager lists and revokes.
	if v, _ := attr(sp, "qsessions.sessions.capped"); v != "1" {
		e.span(spans, "qsessions.revoke")
	}

	// RevokeUser: the list of keys and their delete.
	n, err := e.m.RevokeUser(qsessions.WithCause(ctx, qsessions.CauseAdmin), alice)
	if err != nil || n != 2 {
		t.Fatalf("RevokeUser: %d %v", n, err)
	}
	spans = e.takeSpans()
	if !slices.ContainsFunc(spans, func(s sdktrace.ReadOnlySpan) bool { return s.Name() == "qsessions.excess_keys" }) {
		t.Errorf("RevokeUser made no excess_keys span")
	}

	// A save of a session revoked meanwhile: ErrSessionInterrupted.
	tok := e.login(alice)
	s := e.m.Start(ctx, tok, "192.0.2.1", testUA)
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.RevokeUser(ctx, alice); err != nil {
		t.Fatal(err)
	}
	e.takeSpans()
	_ = s.Set("k", 1)
	if _, err := s.Save(ctx); !errors.Is(err, backend.ErrSessionInterrupted) {
		t.Fatalf("Save of a revoked session: %v", err)
	}
	sp = e.span(e.takeSpans(), "qsessions.save")
	e.wantAttr(sp, "error.type", "session_interrupted")
	if sp.Status().Code != codes.Error {
		t.Errorf("interrupted save: status %v", sp.Status())
	}

	// Sign-out.
	tok = e.login(alice)
	s = e.m.Start(ctx, tok, "192.0.2.1", testUA)
	if err := s.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	e.takeSpans()

	// ClearExpired: one session past its lifetime.
	e.login(e.user("bob"))
	e.clock.Advance(qsessions.DefaultLifetime + time.Hour)
	n, err = e.m.ClearExpired(ctx)
	if err != nil || n < 1 {
		t.Fatalf("ClearExpired: %d %v", n, err)
	}
	sp = e.span(e.takeSpans(), "qsessions.clear_expired")
	e.wantAttr(sp, "qsessions.sessions", fmt.Sprint(n))

	// The metrics.
	ms := e.metrics()
	k := map[string]string{"qsessions.backend": e.kind, "db.system.name": e.system}
	with := func(kv ...string) map[string]string {
		out := maps(k)
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	for _, op := range []string{"load", "create", "save", "touch", "bind", "rotate", "revoke", "list", "excess_keys", "find", "clear_expired"} {
		e.atLeast(ms, qsessionsotel.MetricDuration, with("qsessions.operation", op), 1)
	}
	e.atLeast(ms, qsessionsotel.MetricDuration, with("qsessions.operation", "save", "error.type", "session_interrupted"), 1)
	if cached {
		e.atLeast(ms, qsessionsotel.MetricLoads, with("qsessions.load.result", "found", "qsessions.cache.result", "hit"), 3)
		e.want(ms, qsessionsotel.MetricLoads, with("qsessions.load.result", "not_found", "qsessions.cache.result", "miss"), 1)
		e.want(ms, qsessionsotel.MetricLoads, with("qsessions.load.result", "not_found", "qsessions.cache.result", "tombstone"), 1)
		e.atLeast(ms, qsessionsotel.MetricDuration, with("qsessions.operation", "load", "qsessions.cache.result", "hit"), 3)
		for _, name := range []string{qsessionsotel.MetricCacheErrors, qsessionsotel.MetricCacheFallbacks, qsessionsotel.MetricCachePurges,
			qsessionsotel.MetricCacheConflicts, qsessionsotel.MetricCacheBad, qsessionsotel.MetricPurgePending, qsessionsotel.MetricDistrusted} {
			e.want(ms, name, k, 0)
		}
		e.want(ms, qsessionsotel.MetricBreakerOpen, k, 0)
	} else {
		e.atLeast(ms, qsessionsotel.MetricLoads, with("qsessions.load.result", "found"), 3)
		e.want(ms, qsessionsotel.MetricLoads, with("qsessions.load.result", "not_found"), 2)
		if _, ok := ms[qsessionsotel.MetricCacheErrors]; ok {
			t.Errorf("db backend has cache metrics")
		}
	}
	e.want(ms, qsessionsotel.MetricSaves, k, 1+1)
	e.want(ms, qsessionsotel.MetricSaves, with("error.type", "session_interrupted"), 1)
	e.want(ms, qsessionsotel.MetricLogins, k, 8)
	e.want(ms, qsessionsotel.MetricLogouts, k, 1)
	e.want(ms, qsessionsotel.MetricRevokes, with("qsessions.revoke.cause", "owner"), 1)
	e.want(ms, qsessionsotel.MetricRevokes, with("qsessions.revoke.cause", "cap"), 1)
	e.want(ms, qsessionsotel.MetricRevokes, with("qsessions.revoke.cause", "admin"), 2)
	e.want(ms, qsessionsotel.MetricRevokes, with("qsessions.revoke.cause", "app"), 1)
	e.want(ms, qsessionsotel.MetricRevokes, with("qsessions.revoke.cause", "cli"), 1)
	e.want(ms, qsessionsotel.MetricCapEvictions, k, 1)
	e.want(ms, qsessionsotel.MetricExpiredCleared, k, int64(n))
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
