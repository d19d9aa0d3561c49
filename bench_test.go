package qsessions_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/middleware"
)

// The hot-path benchmarks (issue 8). Every figure is one operation on one
// goroutine against a real database, so it is dominated by the round trip;
// bench/ holds the floors (a bare point SELECT, a bare memcached Get) and
// the comparison with scs, and bench/run prints the ratios.
//
// Names: BenchmarkSessions/<dialect>/<backend>/<op>. A dialect whose server
// is absent skips (testutil), as does cached_db without a memcached.
//
//	go test -run '^$' -bench . -benchtime=1x .      # CI smoke run
//	go test -run '^$' -bench Sessions -count 5 .    # real figures

// benchUA is a typical desktop browser User-Agent.
const benchUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// benchIP is the client address of every benchmark request.
const benchIP = "192.0.2.7"

// benchBackends lists the backends benchmarked on each dialect.
var benchBackends = []string{"db", "cached_db"}

// benchEnv is one dialect and backend with a seeded user and session.
type benchEnv struct {
	client *ent.Client
	drv    *testutil.CountingDriver
	be     *countingBackend
	m      *qsessions.Manager
	h      http.Handler
	now    time.Time
	ctx    context.Context
	// setupQueries counts the queries of setup done inside a timed loop
	// (seedSessions), so queries/op leaves them out.
	setupQueries int
	// mc and prefix are cached_db's memcached client and key prefix.
	mc     *backend.Memcache
	prefix string
}

// newBenchEnv builds a Manager over the reference ent store on db with the
// named backend, or skips b when that backend's server is absent.
func newBenchEnv(b *testing.B, db *testutil.DB, kind string) *benchEnv {
	b.Helper()
	ctx := context.Background()
	clock := testutil.NewClock()
	e := &benchEnv{ctx: ctx, now: clock.Now()}
	e.drv = testutil.NewCountingDriver(db.Driver())
	e.client = ent.NewClient(ent.Driver(e.drv))
	if err := e.client.Schema.Create(ctx); err != nil {
		b.Fatalf("creating schema: %v", err)
	}
	store := ent.NewSessionStore(e.client, backend.WithClock(clock.Now))
	var be backend.Backend
	switch kind {
	case "db":
		be = backend.NewDB(store)
	case "cached_db", "cached_db_nokeys":
		addr := testutil.Memcached(b)
		mc, err := backend.NewMemcache([]string{addr}, backend.MemcacheOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { mc.Close() })
		opts := backend.CachedOptions{
			Prefix: testutil.MemcachedPrefix(b),
			Keys:   testutil.CacheKeys, // authenticated entries, the default for a shared cache
		}
		if kind == "cached_db_nokeys" {
			opts.Keys, opts.UnauthenticatedCache = nil, true
		}
		c, err := backend.NewCachedDB(store, mc, opts)
		if err != nil {
			b.Fatal(err)
		}
		be, e.mc, e.prefix = c, mc, opts.Prefix
	default:
		b.Fatalf("unknown backend %q", kind)
	}
	e.be = &countingBackend{Backend: be}
	e.m = qsessions.New(e.be)
	// A fixed clock: last_activity never falls an ActivityInterval behind,
	// so a read-only request never writes.
	e.m.Now = clock.Now
	e.h = middleware.New(e.m, middleware.Options{Cookie: middleware.Cookie{Insecure: true}})(benchRoutes())
	return e
}

// benchRoutes is the app: /noop never touches the session, /get reads one
// value, /set writes one.
func benchRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/noop", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		v, _ := qsessions.FromContext(r.Context()).Get("name")
		s, _ := v.(string)
		io.WriteString(w, s)
	})
	var n atomic.Int64
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		if err := qsessions.FromContext(r.Context()).Set("n", n.Add(1)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	})
	return mux
}

// newUser creates a user and returns its ID.
func (e *benchEnv) newUser(b *testing.B, name string) int {
	b.Helper()
	u, err := e.client.User.Create().SetUsername(name).Save(e.ctx)
	if err != nil {
		b.Fatal(err)
	}
	return u.ID
}

// newSession stores a logged-in session of userID holding a few typical
// values (about 150 bytes of data) and returns its cookie token.
func (e *benchEnv) newSession(b *testing.B, userID int) string {
	b.Helper()
	s := e.m.Start(e.ctx, "", benchIP, benchUA)
	for _, kv := range [][2]any{
		{"name", "Ada Lovelace"},
		{"csrf", "3f9a1c0e6b2d4f8a7e5c9b1d0a2f4e6c"},
		{"theme", "dark"},
		{"cart", []string{"sku-1001", "sku-2002", "sku-3003"}},
	} {
		if err := s.Set(kv[0].(string), kv[1]); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Login(e.ctx, userID); err != nil {
		b.Fatal(err)
	}
	c, err := s.Save(e.ctx)
	if err != nil {
		b.Fatal(err)
	}
	if c.Token == "" {
		b.Fatal("no token after login")
	}
	return c.Token
}

// seedSessions inserts n live sessions of userID in one statement, copies
// of the session of token (the benchmarks' setup, not the API under test).
func (e *benchEnv) seedSessions(b *testing.B, userID int, token string, n int) {
	b.Helper()
	before := e.drv.Count()
	defer func() { e.setupQueries += e.drv.Count() - before }()
	s := e.m.Start(e.ctx, token, benchIP, benchUA)
	if err := s.Load(); err != nil {
		b.Fatal(err)
	}
	rec := s.Record()
	if rec == nil {
		b.Fatal("session not found")
	}
	bs := make([]*ent.SessionCreate, n)
	for i := range bs {
		_, key, err := backend.NewToken(nil)
		if err != nil {
			b.Fatal(err)
		}
		bs[i] = e.client.Session.Create().
			SetID(key).
			SetSessionData(rec.Data).
			SetExpireDate(rec.ExpireDate).
			SetUserID(userID).
			SetUserAgent(rec.UserAgent).
			SetIP(rec.IP).
			SetCreatedAt(rec.CreatedAt).
			SetUpdatedAt(rec.UpdatedAt).
			// Distinct activity times: the list is ordered by them.
			SetLastActivity(rec.LastActivity.Add(-time.Duration(i) * time.Second))
	}
	if err := e.client.Session.CreateBulk(bs...).Exec(e.ctx); err != nil {
		b.Fatal(err)
	}
}

// benchWriter is a ResponseWriter that keeps nothing, so the benchmark
// counts the middleware's allocations, not a recorder's.
type benchWriter struct {
	h    http.Header
	code int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.code = code }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }

// request runs r through the middleware b.Loop times and fails b on any
// status but 200.
func (e *benchEnv) request(b *testing.B, path, token string) {
	b.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr = benchIP + ":40000"
	r.Header.Set("User-Agent", benchUA)
	r.AddCookie(&http.Cookie{Name: "sessionid", Value: token})
	w := &benchWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		e.h.ServeHTTP(w, r)
		if w.code != 0 && w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// BenchmarkSessions measures the hot paths on each dialect and backend.
func BenchmarkSessions(b *testing.B) {
	for _, dialect := range testutil.AllDialects {
		b.Run(dialect, func(b *testing.B) {
			db := testutil.Open(b, dialect)
			for _, kind := range benchBackends {
				b.Run(kind, func(b *testing.B) { benchHotPaths(b, newBenchEnv(b, db, kind)) })
			}
		})
	}
}

// BenchmarkCachedHit measures what authenticating cache entries costs
// (issue 15: a cached_db hit within 1.15× a bare memcached get): a
// cached_db hit (Backend.Load) with CachedOptions.Keys ("keys") and
// without (UnauthenticatedCache, "no_keys"), against two bare gets timed
// in the same loop: "get", a Get of the very entry the hit reads through
// the same client (backend.Memcache: same value, same client), and
// "floor", a plain gomemcache Get of a 200-byte value, as bench/'s
// BenchmarkFloor/memcached/Get does. Each operation is one hit and one of
// each get, in rotating order, timed separately: their medians
// (hit-p50-ns, get-p50-ns, floor-p50-ns) and the ratios of the medians
// (hit/get, hit/floor) come from the same moments, so noise from other
// work on the machine falls on all alike, and medians leave out its
// outliers (a GC pause, a descheduled goroutine). The store is SQLite's; a
// hit never reaches it.
//
//	go test -run '^$' -bench CachedHit -benchtime 5000x -count 5 .
func BenchmarkCachedHit(b *testing.B) {
	db := testutil.Open(b, testutil.SQLite)
	addr := testutil.Memcached(b)
	floor := memcache.New(addr)
	floor.Timeout, floor.MaxIdleConns = 100*time.Millisecond, 16
	b.Cleanup(func() { floor.Close() })
	floorKey := testutil.MemcachedPrefix(b) + "floor"
	if err := floor.Set(&memcache.Item{Key: floorKey, Value: make([]byte, 200), Expiration: 300}); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, kind string }{{"keys", "cached_db"}, {"no_keys", "cached_db_nokeys"}} {
		e := newBenchEnv(b, db, c.kind)
		user := e.newUser(b, "hit-"+c.name+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
		key := backend.KeyOf(e.newSession(b, user))
		cached := e.be.Backend.(*backend.CachedDB)
		if _, err := cached.Load(e.ctx, key, e.m.Now()); err != nil { // fills the cache
			b.Fatal(err)
		}
		val, _, err := e.mc.Get(e.ctx, e.prefix+key)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			misses := cached.Stats().Misses
			var hits, gets, floors []time.Duration
			ops := []func(){
				func() {
					t0 := time.Now()
					if _, err := cached.Load(e.ctx, key, e.m.Now()); err != nil {
						b.Fatal(err)
					}
					hits = append(hits, time.Since(t0))
				},
				func() {
					t0 := time.Now()
					if _, _, err := e.mc.Get(e.ctx, e.prefix+key); err != nil {
						b.Fatal(err)
					}
					gets = append(gets, time.Since(t0))
				},
				func() {
					t0 := time.Now()
					if _, err := floor.Get(floorKey); err != nil {
						b.Fatal(err)
					}
					floors = append(floors, time.Since(t0))
				},
			}
			i := 0
			for b.Loop() {
				i++
				for j := range ops {
					ops[(i+j)%len(ops)]()
				}
			}
			if n := cached.Stats().Misses - misses; n != 0 {
				b.Fatalf("%d of the loads missed the cache", n)
			}
			hit, get, fl := medianDuration(hits), medianDuration(gets), medianDuration(floors)
			b.ReportMetric(float64(hit.Nanoseconds()), "hit-p50-ns")
			b.ReportMetric(float64(get.Nanoseconds()), "get-p50-ns")
			b.ReportMetric(float64(fl.Nanoseconds()), "floor-p50-ns")
			b.ReportMetric(float64(hit)/float64(get), "hit/get")
			b.ReportMetric(float64(hit)/float64(fl), "hit/floor")
			b.ReportMetric(float64(len(val)), "entry-bytes")
		})
	}
}

// medianDuration returns the median of ds (sorting ds).
func medianDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// benchHotPaths runs the sub-benchmarks of one dialect and backend. Both
// backends share the dialect's database; each gets its own users.
func benchHotPaths(parent *testing.B, e *benchEnv) {
	user := e.newUser(parent, "bench-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	token := e.newSession(parent, user)
	cached, _ := e.be.Backend.(*backend.CachedDB)

	// run runs one sub-benchmark and reports the database queries it made
	// per operation (setup before the timed loop not counted) and, for
	// cached_db, the share of loads that missed the cache.
	run := func(name string, f func(b *testing.B, reset func())) {
		parent.Run(name, func(b *testing.B) {
			var misses uint64
			reset := func() {
				e.drv.Reset()
				e.setupQueries = 0
				if cached != nil {
					misses = cached.Stats().Misses
				}
			}
			reset()
			f(b, reset)
			b.ReportMetric(float64(e.drv.Count()-e.setupQueries)/float64(b.N), "queries/op")
			if cached != nil {
				b.ReportMetric(float64(cached.Stats().Misses-misses)/float64(b.N), "misses/op")
			}
		})
	}

	run("Load", func(b *testing.B, reset func()) {
		reset()
		b.ReportAllocs()
		for b.Loop() {
			s := e.m.Start(e.ctx, token, benchIP, benchUA)
			if err := s.Load(); err != nil {
				b.Fatal(err)
			}
			if s.UserID() == nil {
				b.Fatal("session not found")
			}
		}
	})

	// BackendLoad is the backend's load alone (one SELECT, or one cache get
	// and the record decode), without the session's data decode: the figure
	// the floors compare with.
	run("BackendLoad", func(b *testing.B, reset func()) {
		key := backend.KeyOf(token)
		reset()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := e.be.Backend.Load(e.ctx, key, e.m.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})

	run("Save", func(b *testing.B, reset func()) {
		s := e.m.Start(e.ctx, token, benchIP, benchUA)
		if err := s.Load(); err != nil {
			b.Fatal(err)
		}
		rec := s.Record().Clone()
		if rec == nil {
			b.Fatal("session not found")
		}
		data := append([]byte(nil), rec.Data...)
		reset()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			// A modified session: the data differs on every save.
			i++
			data[len(data)-1] = byte(i)
			rec.Data = data
			if err := e.m.Backend.Save(e.ctx, rec, e.now); err != nil {
				b.Fatal(err)
			}
		}
	})

	run("RequestUntouched", func(b *testing.B, reset func()) {
		reset()
		before := e.be.calls.Load()
		e.request(b, "/noop", token)
		if n := e.be.calls.Load() - before; n != 0 {
			b.Fatalf("an untouched request made %d backend calls, want 0", n)
		}
		if n := e.drv.Count(); n != 0 {
			b.Fatalf("an untouched request ran %d queries, want 0", n)
		}
	})

	run("RequestRead", func(b *testing.B, reset func()) {
		reset()
		e.request(b, "/get", token)
		if n := e.drv.Writes(); n != 0 {
			b.Fatalf("read-only requests wrote %d times, want 0", n)
		}
	})

	run("RequestWrite", func(b *testing.B, reset func()) { e.request(b, "/set", token) })

	run("Login", func(b *testing.B, reset func()) {
		// Each login rotates the token of the previous one: one session
		// lives throughout, so the user's list stays short.
		u := e.newUser(b, "login-"+strconv.FormatInt(time.Now().UnixNano(), 36))
		tok := e.newSession(b, u)
		reset()
		b.ReportAllocs()
		for b.Loop() {
			s := e.m.Start(e.ctx, tok, benchIP, benchUA)
			if err := s.Login(e.ctx, u); err != nil {
				b.Fatal(err)
			}
			c, err := s.Save(e.ctx)
			if err != nil {
				b.Fatal(err)
			}
			if c.Token == "" || c.Token == tok {
				b.Fatal("login did not rotate the token")
			}
			tok = c.Token
		}
	})

	for _, n := range []int{10, 100} {
		run(fmt.Sprintf("UserSessions%d", n), func(b *testing.B, reset func()) {
			u := e.newUser(b, fmt.Sprintf("list%d-%d", n, time.Now().UnixNano()))
			e.seedSessions(b, u, token, n)
			reset()
			b.ReportAllocs()
			for b.Loop() {
				ss, err := e.m.UserSessions(e.ctx, u)
				if err != nil {
					b.Fatal(err)
				}
				if len(ss) != n {
					b.Fatalf("%d sessions, want %d", len(ss), n)
				}
			}
		})
	}

	run("RevokeUser10", func(b *testing.B, reset func()) {
		// The user's 10 sessions are inserted with the timer stopped.
		u := e.newUser(b, "revoke-"+strconv.FormatInt(time.Now().UnixNano(), 36))
		reset()
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			e.seedSessions(b, u, token, 10)
			b.StartTimer()
			n, err := e.m.RevokeUser(e.ctx, u)
			if err != nil {
				b.Fatal(err)
			}
			if n != 10 {
				b.Fatalf("revoked %d sessions, want 10", n)
			}
		}
	})
}
