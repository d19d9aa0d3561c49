package qsessionsotel

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
)

// Instrument traces and measures m; call it once, before m serves
// requests (it sets m.Backend and m.OnEvent, which the Manager reads
// without locks):
//   - m.Backend becomes Wrap(m.Backend, opts...), unless it already is a
//     *Backend;
//   - m.OnEvent is chained (the earlier one still runs, after): counters of
//     logins, logouts, revokes by cause, cap evictions and address
//     changes. A Manager with OnEvent set reads the keys and owners of
//     sessions ended through ent (one SELECT per ent delete), to report
//     them;
//   - on cached_db, observable counters and gauges read at each collection
//     from CachedDB.Stats (cache errors, fallbacks, purges, conflicts, bad
//     entries, the purge list's length, distrust) and, on memcached, from
//     Memcache.Breakers (an open breaker per server).
//
// The returned func unregisters the observable instruments' callbacks,
// the wrapper's loads counter among them (the other counters and the
// wrapper's spans stay). Instrument errors when the MeterProvider
// refuses to register the callback.
func Instrument(m *qsessions.Manager, opts ...Option) (func() error, error) {
	c := newConfig(opts)
	var made *Backend
	if _, ok := m.Backend.(*Backend); !ok {
		made = Wrap(m.Backend, opts...)
		m.Backend = made
	}
	unwrap := func() error {
		if made != nil {
			return made.Unregister()
		}
		return nil
	}
	meter := c.meter()
	base := c.base(kindOf(m.Backend))
	cached := backend.CachedOf(m.Backend)
	baseSet := attribute.NewSet(base...)
	plain := []metric.AddOption{metric.WithAttributeSet(baseSet)}
	logins := handled(meter.Int64Counter(MetricLogins, metric.WithUnit("{login}"),
		metric.WithDescription("Sign-ins (Session.Login).")))
	logouts := handled(meter.Int64Counter(MetricLogouts, metric.WithUnit("{logout}"),
		metric.WithDescription("Sign-outs of a session from itself (Session.Logout).")))
	revokes := handled(meter.Int64Counter(MetricRevokes, metric.WithUnit("{session}"),
		metric.WithDescription("Sessions ended by someone or something else, by qsessions.revoke.cause.")))
	capped := handled(meter.Int64Counter(MetricCapEvictions, metric.WithUnit("{session}"),
		metric.WithDescription("Sessions ended because a login went past MaxSessionsPerUser (also in qsessions.revokes, cause cap).")))
	moved := handled(meter.Int64Counter(MetricIPChanges, metric.WithUnit("{change}"),
		metric.WithDescription("Sessions seen from a new IP address.")))
	byCause := map[qsessions.Cause][]metric.AddOption{}
	for _, cause := range []qsessions.Cause{qsessions.CauseOwner, qsessions.CauseApp, qsessions.CauseAdmin, qsessions.CauseCap, qsessions.CauseCLI, qsessions.CauseEnt} {
		byCause[cause] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(append(append([]attribute.KeyValue(nil), base...), RevokeCauseKey.String(string(cause)))...))}
	}
	prev := m.OnEvent
	m.OnEvent = func(ctx context.Context, e qsessions.Event) {
		switch e.Kind {
		case qsessions.EventSignIn:
			logins.Add(ctx, 1, plain...)
		case qsessions.EventSignOut:
			logouts.Add(ctx, 1, plain...)
		case qsessions.EventRevoke:
			o, ok := byCause[e.Cause]
			if !ok {
				o = []metric.AddOption{metric.WithAttributes(append(append([]attribute.KeyValue(nil), base...), RevokeCauseKey.String(string(e.Cause)))...)}
			}
			revokes.Add(ctx, 1, o...)
			if e.Cause == qsessions.CauseCap {
				capped.Add(ctx, 1, plain...)
			}
		case qsessions.EventIPChange:
			moved.Add(ctx, 1, plain...)
		}
		if prev != nil {
			prev(ctx, e)
		}
	}
	if cached == nil {
		return unwrap, nil
	}
	errs := handled(meter.Int64ObservableCounter(MetricCacheErrors, metric.WithUnit("{error}"),
		metric.WithDescription("Failed cache calls (down, slow, breaker open, undecodable entry); each was absorbed by the database.")))
	fallbacks := handled(meter.Int64ObservableCounter(MetricCacheFallbacks, metric.WithUnit("{load}"),
		metric.WithDescription("Loads answered by the database without trusting the cache (cache failed, key awaits a purge, cache distrusted).")))
	purges := handled(meter.Int64ObservableCounter(MetricCachePurges, metric.WithUnit("{key}"),
		metric.WithDescription("Keys worked off the purge list (tombstoned after a failure).")))
	conflicts := handled(meter.Int64ObservableCounter(MetricCacheConflicts, metric.WithUnit("{save}"),
		metric.WithDescription("Saves that met a concurrent save in the cache and left a conflict marker.")))
	bad := handled(meter.Int64ObservableCounter(MetricCacheBad, metric.WithUnit("{entry}"),
		metric.WithDescription("Cache entries that failed authentication (forged, corrupt, or signed with a dropped key); never served.")))
	pending := handled(meter.Int64ObservableGauge(MetricPurgePending, metric.WithUnit("{key}"),
		metric.WithDescription("Keys on the purge list: their loads skip the cache until their tombstone is written.")))
	distrusted := handled(meter.Int64ObservableGauge(MetricDistrusted,
		metric.WithDescription("1 while the whole cache is distrusted after the purge list overflowed (every load reads the database), else 0.")))
	breaker := handled(meter.Int64ObservableGauge(MetricBreakerOpen,
		metric.WithDescription("1 while the breaker of a memcached server is open (calls to it are skipped), else 0.")))
	mc, _ := cached.Cache().(*backend.Memcache)
	observed := []metric.Observable{errs, fallbacks, purges, conflicts, bad, pending, distrusted}
	if mc != nil {
		observed = append(observed, breaker)
	}
	obs := metric.WithAttributeSet(baseSet)
	// Breaker attributes per server address, made once per address; the
	// callback may run for several readers at once.
	var mu sync.Mutex
	servers := map[string]metric.ObserveOption{}
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := cached.Stats()
		o.ObserveInt64(errs, int64(st.Errors), obs)
		o.ObserveInt64(fallbacks, int64(st.Fallbacks), obs)
		o.ObserveInt64(purges, int64(st.Purges), obs)
		o.ObserveInt64(conflicts, int64(st.Conflicts), obs)
		o.ObserveInt64(bad, int64(st.BadEntries), obs)
		o.ObserveInt64(pending, int64(st.PurgePending), obs)
		o.ObserveInt64(distrusted, b2i(st.Distrusted), obs)
		if mc != nil {
			mu.Lock()
			defer mu.Unlock()
			for addr, open := range mc.Breakers() {
				opt, ok := servers[addr]
				if !ok {
					opt = metric.WithAttributeSet(attribute.NewSet(append(append([]attribute.KeyValue(nil), base...), serverAttrs(addr)...)...))
					servers[addr] = opt
				}
				o.ObserveInt64(breaker, b2i(open), opt)
			}
		}
		return nil
	}, observed...)
	if err != nil {
		_ = unwrap()
		return nil, err
	}
	return func() error { return errors.Join(reg.Unregister(), unwrap()) }, nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// serverAttrs are server.address and server.port of a memcached address
// ("host:port"; a unix socket path is the address alone).
func serverAttrs(addr string) []attribute.KeyValue {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return []attribute.KeyValue{semconv.ServerAddressKey.String(addr)}
	}
	kv := []attribute.KeyValue{semconv.ServerAddressKey.String(host)}
	if p, err := strconv.Atoi(port); err == nil {
		kv = append(kv, semconv.ServerPortKey.Int(p))
	}
	return kv
}
