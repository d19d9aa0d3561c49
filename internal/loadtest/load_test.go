package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/middleware"
)

var loadFor = flag.Duration("load", 0, "run the load-and-fault test for this long (e.g. 2m)")

const (
	users          = 12 // simulated accounts
	clientsPerUser = 3  // browsers per account
	appName        = "qsessions_load"
)

// server is the system under test.
type server struct {
	m     *qsessions.Manager
	cache *backend.CachedDB
	store *ent.SessionStore
	srv   *httptest.Server
}

func newServer(t *testing.T, pgURL string, mcAddrs []string) *server {
	u, _ := url.Parse(pgURL)
	q := u.Query()
	q.Set("application_name", appName)
	u.RawQuery = q.Encode()
	db, err := dburl.Open(u.String())
	if err != nil {
		t.Fatal(err)
	}
	db.SQL.SetMaxOpenConns(16)
	t.Cleanup(func() { db.Close() })
	client := ent.NewClient(ent.Driver(entsql.OpenDB(db.Dialect, db.SQL)))
	if err := client.Schema.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= users; i++ {
		client.User.Create().SetUsername("u" + strconv.Itoa(i)).ExecX(context.Background())
	}
	mc, err := backend.NewMemcache(mcAddrs, backend.MemcacheOptions{Timeout: 100 * time.Millisecond, MaxIdleConns: 32})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	store := ent.NewSessionStore(client)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cache, err := backend.NewCachedDB(store, mc, backend.CachedOptions{TTL: time.Minute, Logger: quiet, Keys: testutil.CacheKeys})
	if err != nil {
		t.Fatal(err)
	}
	m := qsessions.New(cache)
	m.Logger = quiet
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.Atoi(r.FormValue("user"))
		if err := qsessions.FromContext(r.Context()).Login(r.Context(), id); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /read", func(w http.ResponseWriter, r *http.Request) {
		s := qsessions.FromContext(r.Context())
		if err := s.Load(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, s.UserID())
	})
	mux.HandleFunc("POST /write", func(w http.ResponseWriter, r *http.Request) {
		s := qsessions.FromContext(r.Context())
		if err := s.Load(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if s.UserID() == nil {
			http.Error(w, "anonymous", http.StatusUnauthorized)
			return
		}
		if err := s.Set(r.FormValue("k"), r.FormValue("v")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /list", func(w http.ResponseWriter, r *http.Request) {
		list, err := m.UserSessions(r.Context(), qsessions.FromContext(r.Context()).UserID())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(len(list))
	})
	mux.HandleFunc("POST /revoke-others", func(w http.ResponseWriter, r *http.Request) {
		s := qsessions.FromContext(r.Context())
		if s.UserID() == nil {
			http.Error(w, "anonymous", http.StatusUnauthorized)
			return
		}
		if _, err := m.RevokeOthers(r.Context(), s.UserID()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	h := middleware.New(m, middleware.Options{Cookie: middleware.Cookie{Insecure: true}, Logger: quiet})(mux)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &server{m: m, cache: cache, store: store, srv: srv}
}

// ledger is what the clients observed.
type ledger struct {
	mu        sync.Mutex
	tokens    map[int][]tokenInfo          // user -> sessions, in login order
	revokedAt map[string]time.Time         // token -> when the revoke that ended it returned
	revokes   map[int][]*span              // user -> the revoke requests sent, each from send to answer
	ambiguous map[string]bool              // logged in while a revoke of its user ran: may or may not have ended
	acked     map[string]map[string]string // token -> writes answered 200
	lost      []string
	violation []string
	errs      map[string]int
	codes500  []time.Time
	lat       map[string][]time.Duration
	requests  atomic.Int64
	interrupt atomic.Int64
}

// span is a request's time from send to answer (end zero while in flight).
type span struct{ start, end time.Time }

type tokenInfo struct {
	token string
	at    time.Time // when the login returned
}

func (l *ledger) errorf(kind string) {
	l.mu.Lock()
	l.errs[kind]++
	l.mu.Unlock()
}

type client struct {
	t     *testing.T
	l     *ledger
	srv   *server
	hc    *http.Client
	user  int
	token string
	seq   int
	rng   *rand.Rand
}

func (c *client) do(op, method, path string) (int, string, string, time.Time) {
	start := time.Now()
	req, _ := http.NewRequest(method, c.srv.srv.URL+path, nil)
	req.Header.Set("User-Agent", fmt.Sprintf("loadtest/1.0 user %d", c.user))
	if c.token != "" {
		req.AddCookie(&http.Cookie{Name: "sessionid", Value: c.token})
	}
	res, err := c.hc.Do(req)
	c.l.requests.Add(1)
	if err != nil {
		c.l.errorf("transport: " + op)
		return 0, "", "", start
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	d := time.Since(start)
	c.l.mu.Lock()
	c.l.lat[op] = append(c.l.lat[op], d)
	if res.StatusCode >= 500 {
		c.l.codes500 = append(c.l.codes500, time.Now())
		c.l.errs[fmt.Sprintf("%d %s", res.StatusCode, op)]++
	}
	c.l.mu.Unlock()
	cookie := ""
	for _, ck := range res.Cookies() {
		if ck.Name == "sessionid" && ck.MaxAge >= 0 {
			cookie = ck.Value
		}
	}
	return res.StatusCode, string(body), cookie, start
}

func (c *client) revoked(tok string) (time.Time, bool) {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	at, ok := c.l.revokedAt[tok]
	return at, ok
}

func (c *client) isAmbiguous(tok string) bool {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	return c.l.ambiguous[tok]
}

func (c *client) login() {
	code, _, cookie, start := c.do("login", "POST", "/login?user="+strconv.Itoa(c.user))
	if code != 200 || cookie == "" {
		return
	}
	end := time.Now()
	c.token = cookie
	c.l.mu.Lock()
	c.l.tokens[c.user] = append(c.l.tokens[c.user], tokenInfo{cookie, end})
	c.l.acked[cookie] = map[string]string{}
	// A revoke of this user that overlapped the login may have listed the
	// new session (committed before its answer was read) and ended it,
	// even if the revoke answered first: neither revoked nor kept for sure.
	for _, r := range c.l.revokes[c.user] {
		if r.start.Before(end) && (r.end.IsZero() || r.end.After(start)) {
			c.l.ambiguous[cookie] = true
			break
		}
	}
	c.l.mu.Unlock()
}

// sessionGone handles a session that no longer works: revoked (expected)
// or lost (a failure).
func (c *client) sessionGone(start time.Time) {
	if _, ok := c.revoked(c.token); !ok && !c.isAmbiguous(c.token) {
		// Not revoked by a RevokeOthers that returned; one may still be in
		// flight: wait for it to answer (revokes take up to about a second
		// under this load).
		for i := 0; i < 50; i++ {
			if _, ok := c.revoked(c.token); ok || c.isAmbiguous(c.token) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if _, ok := c.revoked(c.token); !ok && !c.isAmbiguous(c.token) {
			c.l.mu.Lock()
			c.l.lost = append(c.l.lost, fmt.Sprintf("user %d session lost at %s (%s)", c.user, start.Format(time.RFC3339Nano), c.l.history(c.user, c.token)))
			c.l.mu.Unlock()
		}
	}
	c.token = ""
}

// history tells, for a failure message, when tok's login returned and
// when the revokes of user ran. Caller holds l.mu.
func (l *ledger) history(user int, tok string) string {
	var b strings.Builder
	var at time.Time
	for _, ti := range l.tokens[user] {
		if ti.token == tok {
			at = ti.at
			fmt.Fprintf(&b, "login returned %s; revokes of the user within 5 s:", at.Format(time.StampMicro))
		}
	}
	for _, r := range l.revokes[user] {
		if d := r.start.Sub(at); d > -5*time.Second && d < 5*time.Second {
			fmt.Fprintf(&b, " %s-%s", r.start.Format(time.StampMicro), r.end.Format(time.StampMicro))
		}
	}
	return b.String()
}

func (c *client) step() {
	if c.token == "" {
		c.login()
		return
	}
	switch p := c.rng.IntN(100); {
	case p < 55:
		code, body, _, start := c.do("read", "GET", "/read")
		if code != 200 {
			return
		}
		if body == "<nil>" {
			c.sessionGone(start)
			return
		}
		if at, ok := c.revoked(c.token); ok && start.After(at) {
			c.l.mu.Lock()
			c.l.violation = append(c.l.violation, fmt.Sprintf("user %d: a session revoked at %s was accepted at %s", c.user, at.Format(time.StampMicro), start.Format(time.StampMicro)))
			c.l.mu.Unlock()
		}
	case p < 85:
		c.seq++
		k, v := "w"+strconv.Itoa(c.seq), strconv.Itoa(c.rng.IntN(1e9))
		code, _, _, start := c.do("write", "POST", "/write?k="+k+"&v="+v)
		switch code {
		case 200:
			if at, ok := c.revoked(c.token); ok && start.After(at) {
				c.l.mu.Lock()
				c.l.violation = append(c.l.violation, fmt.Sprintf("user %d: a write to a revoked session was accepted", c.user))
				c.l.mu.Unlock()
			}
			c.l.mu.Lock()
			c.l.acked[c.token][k] = v
			c.l.mu.Unlock()
		case 400:
			c.l.interrupt.Add(1)
			c.sessionGone(start)
		case 401:
			c.sessionGone(start)
		}
	case p < 99:
		c.do("list", "GET", "/list")
	default:
		start := time.Now()
		c.l.mu.Lock()
		rs := &span{start: start}
		c.l.revokes[c.user] = append(c.l.revokes[c.user], rs)
		var others []string
		for _, ti := range c.l.tokens[c.user] {
			if ti.token != c.token && ti.at.Before(start) {
				others = append(others, ti.token)
			}
		}
		c.l.mu.Unlock()
		code, _, _, _ := c.do("revoke", "POST", "/revoke-others")
		c.l.mu.Lock()
		rs.end = time.Now()
		c.l.mu.Unlock()
		if code != 200 {
			// A failed revoke (the database cut) may have ended some.
			c.l.mu.Lock()
			for _, tok := range others {
				c.l.ambiguous[tok] = true
			}
			c.l.mu.Unlock()
		}
		if code == 200 {
			done := time.Now()
			c.l.mu.Lock()
			for _, tok := range others {
				if _, ok := c.l.revokedAt[tok]; !ok {
					c.l.revokedAt[tok] = done
				}
			}
			// Sessions whose login returned while the revoke ran may or may
			// not have been listed by it.
			for _, ti := range c.l.tokens[c.user] {
				if ti.token != c.token && !ti.at.Before(start) {
					c.l.ambiguous[ti.token] = true
				}
			}
			c.l.mu.Unlock()
		}
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(float64(len(ds))*p))]
}

func TestLoadWithFaults(t *testing.T) {
	if *loadFor <= 0 {
		t.Skip("load test: run with -load=2m (.ci/run does)")
	}
	db := testutil.Open(t, testutil.Postgres)
	var mcs []*testutil.MemcachedProc
	var addrs []string
	for range 3 {
		p := testutil.StartMemcached(t)
		mcs = append(mcs, p)
		addrs = append(addrs, p.Addr)
	}
	srv := newServer(t, db.URL, addrs)
	l := &ledger{tokens: map[int][]tokenInfo{}, revokedAt: map[string]time.Time{}, ambiguous: map[string]bool{}, revokes: map[int][]*span{}, acked: map[string]map[string]string{},
		errs: map[string]int{}, lat: map[string][]time.Duration{}}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: users * clientsPerUser}}

	total := *loadFor
	began := time.Now()
	deadline := began.Add(total)
	var wg sync.WaitGroup
	for u := 1; u <= users; u++ {
		for i := range clientsPerUser {
			c := &client{t: t, l: l, srv: srv, hc: hc, user: u, rng: rand.New(rand.NewPCG(uint64(u), uint64(i)))}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					c.step()
				}
			}()
		}
	}

	// Faults, on a schedule.
	at := func(frac float64) { time.Sleep(time.Until(began.Add(time.Duration(frac * float64(total))))) }
	at(0.25)
	t.Logf("%5.1fs: killing memcached %s", time.Since(began).Seconds(), mcs[0].Addr)
	mcs[0].Kill()
	at(0.45)
	t.Logf("%5.1fs: restarting memcached %s", time.Since(began).Seconds(), mcs[0].Addr)
	mcs[0].Restart()
	at(0.6)
	cutStart := time.Now()
	admin, err := dburl.Open(testutil.Env("QSESSIONS_TEST_POSTGRES", testutil.DefaultPostgres))
	if err != nil {
		t.Fatal(err)
	}
	var cut int
	err = admin.SQL.QueryRow("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", appName).Scan(&cut)
	admin.Close()
	if err != nil {
		t.Fatalf("cutting the pool's connections: %v", err)
	}
	cutEnd := time.Now()
	t.Logf("%5.1fs: terminated %d Postgres connections of the pool", time.Since(began).Seconds(), cut)
	at(0.8)
	late := srv.cache.Stats()
	if cut == 0 {
		t.Error("the database cut terminated no connection")
	}
	wg.Wait()

	// Every write answered 200 on a session nobody revoked is in the database.
	ctx := context.Background()
	now := time.Now()
	checked, missing := 0, 0
	for tok, writes := range l.acked {
		if _, ok := l.revokedAt[tok]; ok || l.ambiguous[tok] || len(writes) == 0 {
			continue
		}
		rec, err := srv.store.Get(ctx, backend.KeyOf(tok), now)
		if errors.Is(err, backend.ErrNotFound) {
			t.Errorf("a session with %d acknowledged writes is gone from the database", len(writes))
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := qsessions.DecodeData(rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range writes {
			checked++
			if data[k] != v {
				missing++
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged writes are not in the database", missing, checked)
	}
	for _, v := range l.violation {
		t.Error(v)
	}
	for _, v := range l.lost {
		t.Error(v)
	}
	// No 500 outside the moment of the database cut.
	var outside int
	for _, when := range l.codes500 {
		if when.Before(cutStart.Add(-time.Second)) || when.After(cutEnd.Add(3*time.Second)) {
			outside++
		}
	}
	if outside > 0 {
		t.Errorf("%d responses were 5xx outside the database cut", outside)
	}
	// Recovered by itself: the cache is used again.
	st := srv.cache.Stats()

	t.Logf("requests %d in %v (%.0f/s), acknowledged writes checked %d, revoked sessions %d, 400 for sessions revoked mid-request %d",
		l.requests.Load(), total, float64(l.requests.Load())/total.Seconds(), checked, len(l.revokedAt), l.interrupt.Load())
	t.Logf("5xx during the database cut: %d; errors by kind: %v", len(l.codes500)-outside, l.errs)
	t.Logf("cache: hits %d misses %d errors %d fallbacks %d purges %d", st.Hits, st.Misses, st.Errors, st.Fallbacks, st.Purges)
	for _, op := range []string{"login", "read", "write", "list", "revoke"} {
		ds := l.lat[op]
		t.Logf("%-6s n=%6d p50=%8v p90=%8v p99=%8v max=%8v", op, len(ds),
			percentile(ds, .5).Round(time.Microsecond), percentile(ds, .9).Round(time.Microsecond),
			percentile(ds, .99).Round(time.Microsecond), percentile(ds, 1).Round(time.Microsecond))
	}
	// Recovered by itself: in the last fifth the cache serves hits and
	// reports no failure.
	if st.Hits <= late.Hits {
		t.Errorf("no cache hits in the last fifth of the run (hits %d -> %d)", late.Hits, st.Hits)
	}
	if st.Errors != late.Errors {
		t.Errorf("cache errors went on after the restart: %d -> %d", late.Errors, st.Errors)
	}
}
