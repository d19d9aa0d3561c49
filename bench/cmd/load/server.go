package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/middleware"
)

// The app's values, as in the one-goroutine benchmarks (about 150 bytes of
// session data), and the request's client.
const (
	benchUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	benchIP = "192.0.2.7"
)

// serverConfig is what a server process is started with (the -serve mode).
type serverConfig struct {
	kind      string // kindDB, kindCached or kindSCS
	dbURL     string // Postgres URL with the server's own search_path
	memcached string // host:port, for cached_db
	sessions  int    // signed-in sessions with cookies, for read/write/untouched
	users     int    // fresh users for the login route
	capUsers  int    // users that hold perCap sessions before the run
	perCap    int
	pool      int // database connections
	listen    string
}

// The three servers.
const (
	kindDB     = "db"
	kindCached = "cached_db"
	kindSCS    = "scs"
)

// server is one server process: the app, its database pool and counters.
type server struct {
	cfg    serverConfig
	tr     *tracer
	offset atomic.Int64 // added to the qsessions clock (nanoseconds)

	cookie   string
	tokens   []string
	freshIDs []int
	capIDs   []int
	nextUser atomic.Uint64
	nextCap  atomic.Uint64

	sqlDB  *sql.DB       // qsessions
	pool   *pgxpool.Pool // scs
	cached *backend.CachedDB

	handlerErrors atomic.Int64
	logged        atomic.Int64

	// anon makes an anonymous session holding the app's values (a visitor
	// who has not signed in yet) and returns its token.
	anon func(ctx context.Context) (string, error)
}

// serverStats is what /_bench/stats answers: counters since the start.
type serverStats struct {
	Statements    int64         `json:"statements"`
	TxControl     int64         `json:"tx_control"`
	CPU           time.Duration `json:"cpu"`
	HandlerErrors int64         `json:"handler_errors"`
	// DBWait is the time statements took, per statementKinds.
	DBWait []time.Duration     `json:"db_wait"`
	Cache  *backend.CacheStats `json:"cache,omitempty"`
}

// serve sets up one server, prints "READY host:port" on stdout and serves
// until its stdin closes (the harness's end, or its death).
func serve(cfg serverConfig) error {
	log.SetPrefix(cfg.kind + ": ")
	log.SetFlags(0)
	ctx := context.Background()
	pcfg, err := pgx.ParseConfig(cfg.dbURL)
	if err != nil {
		return err
	}
	s := &server{cfg: cfg, tr: &tracer{}}
	pcfg.Tracer = s.tr
	start := time.Now()
	var app http.Handler
	switch cfg.kind {
	case kindDB, kindCached:
		app, err = s.setupQSessions(ctx, pcfg)
	case kindSCS:
		app, err = s.setupSCS(ctx, pcfg)
	default:
		err = fmt.Errorf("unknown server %q", cfg.kind)
	}
	if err != nil {
		return err
	}
	log.Printf("set up in %v: %d signed-in sessions, %d users at %d sessions, %d fresh users",
		time.Since(start).Round(time.Millisecond), len(s.tokens), len(s.capIDs), cfg.perCap, len(s.freshIDs))

	mux := http.NewServeMux()
	mux.Handle("/", app)
	mux.HandleFunc("GET /_bench/tokens", s.handleTokens)
	mux.HandleFunc("GET /_bench/stats", s.handleStats)
	mux.HandleFunc("GET /_bench/anon", s.handleAnon)
	mux.HandleFunc("POST /_bench/flush", s.handleFlush)
	mux.HandleFunc("POST /_bench/advance", s.handleAdvance)
	mux.HandleFunc("POST /_bench/trace", s.handleTrace)
	mux.HandleFunc("GET /_bench/trace", s.handleTrace)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	go func() {
		// The harness closes stdin to stop us; so does its death.
		_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		os.Exit(0)
	}()
	fmt.Printf("READY %s\n", ln.Addr())
	return http.Serve(ln, mux)
}

// setupQSessions creates the reference schema, the users and the sessions,
// and returns the app behind qsessions' middleware.
func (s *server) setupQSessions(ctx context.Context, pcfg *pgx.ConnConfig) (http.Handler, error) {
	db := sql.OpenDB(stdlib.GetConnector(*pcfg))
	db.SetMaxOpenConns(s.cfg.pool)
	db.SetMaxIdleConns(s.cfg.pool)
	s.sqlDB = db
	client := ent.NewClient(ent.Driver(entsql.OpenDB(dialect.Postgres, db)))
	if err := client.Schema.Create(ctx); err != nil {
		return nil, fmt.Errorf("creating the schema: %w", err)
	}
	store := ent.NewSessionStore(client)
	clock := func() time.Time { return time.Now().Add(time.Duration(s.offset.Load())) }
	var be backend.Backend = backend.NewDB(store)
	if s.cfg.kind == kindCached {
		mc, err := backend.NewMemcache([]string{s.cfg.memcached}, backend.MemcacheOptions{})
		if err != nil {
			return nil, err
		}
		var b [4]byte
		_, _ = rand.Read(b[:])
		cdb, err := backend.NewCachedDB(store, mc, cachedOptions("qsload"+hex.EncodeToString(b[:])+":"))
		if err != nil {
			return nil, err
		}
		s.cached, be = cdb, cdb
	}
	m := qsessions.New(be)
	m.Now = clock

	ids, err := s.createUsers(ctx, client)
	if err != nil {
		return nil, err
	}
	newSession := func(uid int) (string, error) {
		sess := m.Start(ctx, "", benchIP, benchUA)
		for _, kv := range sessionValues {
			if err := sess.Set(kv.k, kv.v); err != nil {
				return "", err
			}
		}
		if err := sess.Login(ctx, uid); err != nil {
			return "", err
		}
		c, err := sess.Save(ctx)
		if err != nil {
			return "", err
		}
		if c.Token == "" {
			return "", errors.New("no token after a login")
		}
		return c.Token, nil
	}
	if err := s.createSessions(ids, newSession); err != nil {
		return nil, err
	}
	s.cookie = "sessionid"
	s.anon = func(ctx context.Context) (string, error) {
		sess := m.Start(ctx, "", benchIP, benchUA)
		for _, kv := range sessionValues {
			if err := sess.Set(kv.k, kv.v); err != nil {
				return "", err
			}
		}
		c, err := sess.Save(ctx)
		return c.Token, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		name := qsessions.FromContext(r.Context()).GetString("name")
		if name == "" {
			s.fail(w, "read: no session value", http.StatusNotFound)
			return
		}
		io.WriteString(w, name)
	})
	var n atomic.Int64
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		if err := qsessions.FromContext(r.Context()).Set("n", n.Add(1)); err != nil {
			s.fail(w, "write: "+err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/untouched", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	login := func(next func() int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := qsessions.FromContext(r.Context()).Login(r.Context(), next()); err != nil {
				s.fail(w, "login: "+err.Error(), http.StatusInternalServerError)
				return
			}
			io.WriteString(w, "ok")
		}
	}
	mux.HandleFunc("/login", login(s.freshUser))
	mux.HandleFunc("/login_cap", login(s.capUser))
	return middleware.New(m, middleware.Options{
		Cookie: middleware.Cookie{Insecure: true},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.fail(w, "save: "+err.Error(), http.StatusBadRequest)
		},
	})(mux), nil
}

// setupSCS creates scs's table (as pgxstore documents it), the sessions,
// and returns the app behind scs's LoadAndSave.
func (s *server) setupSCS(ctx context.Context, pcfg *pgx.ConnConfig) (http.Handler, error) {
	cfg, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig = pcfg
	cfg.MaxConns = int32(s.cfg.pool)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.pool = pool
	for _, q := range []string{
		`CREATE TABLE sessions (token TEXT PRIMARY KEY, data BYTEA NOT NULL, expiry TIMESTAMPTZ NOT NULL)`,
		`CREATE INDEX sessions_expiry_idx ON sessions (expiry)`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return nil, err
		}
	}
	sm := scs.New()
	sm.Store = pgxstore.NewWithCleanupInterval(pool, 0)
	sm.Cookie.Secure = false
	sm.Lifetime = qsessions.DefaultLifetime
	ids := make([]int, s.cfg.sessions+s.cfg.capUsers+s.cfg.users)
	for i := range ids {
		ids[i] = i + 1
	}
	s.split(ids)
	newSession := func(uid int) (string, error) {
		c, err := sm.Load(ctx, "")
		if err != nil {
			return "", err
		}
		for _, kv := range sessionValues {
			sm.Put(c, kv.k, kv.v)
		}
		if err := sm.RenewToken(c); err != nil {
			return "", err
		}
		sm.Put(c, "userID", uid)
		token, _, err := sm.Commit(c)
		return token, err
	}
	if err := s.createSessions(nil, newSession); err != nil {
		return nil, err
	}
	s.cookie = sm.Cookie.Name
	s.anon = func(ctx context.Context) (string, error) {
		c, err := sm.Load(ctx, "")
		if err != nil {
			return "", err
		}
		for _, kv := range sessionValues {
			sm.Put(c, kv.k, kv.v)
		}
		token, _, err := sm.Commit(c)
		return token, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/read", func(w http.ResponseWriter, r *http.Request) {
		name := sm.GetString(r.Context(), "name")
		if name == "" {
			s.fail(w, "read: no session value", http.StatusNotFound)
			return
		}
		io.WriteString(w, name)
	})
	var n atomic.Int64
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "n", n.Add(1))
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/untouched", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	login := func(next func() int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := sm.RenewToken(r.Context()); err != nil {
				s.fail(w, "login: "+err.Error(), http.StatusInternalServerError)
				return
			}
			sm.Put(r.Context(), "userID", next())
			io.WriteString(w, "ok")
		}
	}
	mux.HandleFunc("/login", login(s.freshUser))
	mux.HandleFunc("/login_cap", login(s.capUser))
	sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		s.fail(w, "scs: "+err.Error(), http.StatusInternalServerError)
	}
	return sm.LoadAndSave(mux), nil
}

// sessionValues are the values of every signed-in session.
var sessionValues = []struct {
	k string
	v any
}{
	{"name", "Ada Lovelace"},
	{"csrf", "3f9a1c0e6b2d4f8a7e5c9b1d0a2f4e6c"},
	{"theme", "dark"},
	{"cart", []string{"sku-1001", "sku-2002", "sku-3003"}},
}

// createUsers inserts the users of all three groups (signed-in, at the
// cap, fresh) and splits their IDs.
func (s *server) createUsers(ctx context.Context, client *ent.Client) ([]int, error) {
	total := s.cfg.sessions + s.cfg.capUsers + s.cfg.users
	ids := make([]int, 0, total)
	for i := 0; i < total; i += 1000 {
		bs := make([]*ent.UserCreate, 0, 1000)
		for j := i; j < min(i+1000, total); j++ {
			bs = append(bs, client.User.Create().SetUsername(fmt.Sprintf("user%07d", j)))
		}
		us, err := client.User.CreateBulk(bs...).Save(ctx)
		if err != nil {
			return nil, fmt.Errorf("inserting users: %w", err)
		}
		for _, u := range us {
			ids = append(ids, u.ID)
		}
	}
	s.split(ids)
	return ids, nil
}

// split assigns ids: the first cfg.sessions own the signed-in sessions, the
// next cfg.capUsers are at the cap, the rest log in fresh.
func (s *server) split(ids []int) {
	n, c := s.cfg.sessions, s.cfg.capUsers
	s.capIDs = ids[n : n+c]
	s.freshIDs = ids[n+c:]
}

// createSessions makes the signed-in sessions (keeping their tokens) and
// the at-cap users' sessions through the library's own API, 16 at a time.
func (s *server) createSessions(ids []int, newSession func(uid int) (string, error)) error {
	uid := func(i int) int {
		if ids == nil {
			return i + 1
		}
		return ids[i]
	}
	s.tokens = make([]string, s.cfg.sessions)
	if err := parallel(s.cfg.sessions, 16, func(i int) error {
		t, err := newSession(uid(i))
		s.tokens[i] = t
		return err
	}); err != nil {
		return fmt.Errorf("creating sessions: %w", err)
	}
	// Each at-cap user's sessions are made one after the other (the cap's
	// list sees them all); the users in parallel.
	return parallel(len(s.capIDs), 16, func(i int) error {
		for range s.cfg.perCap {
			if _, err := newSession(s.capIDs[i]); err != nil {
				return fmt.Errorf("creating at-cap sessions: %w", err)
			}
		}
		return nil
	})
}

// freshUser returns the next user for the login route.
func (s *server) freshUser() int {
	return s.freshIDs[int(s.nextUser.Add(1)-1)%len(s.freshIDs)]
}

// capUser returns the next at-cap user.
func (s *server) capUser() int {
	return s.capIDs[int(s.nextCap.Add(1)-1)%len(s.capIDs)]
}

// fail answers an error and logs the first few.
func (s *server) fail(w http.ResponseWriter, msg string, code int) {
	s.handlerErrors.Add(1)
	if s.logged.Add(1) <= 5 {
		log.Print(msg)
	}
	http.Error(w, msg, code)
}

func (s *server) handleTokens(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{"cookie": s.cookie, "tokens": s.tokens})
}

func (s *server) handleAnon(w http.ResponseWriter, r *http.Request) {
	token, err := s.anon(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, map[string]string{"token": token})
}

func (s *server) handleStats(w http.ResponseWriter, _ *http.Request) {
	st := serverStats{
		Statements:    s.tr.statements.Load(),
		TxControl:     s.tr.txControl.Load(),
		CPU:           processCPU(),
		HandlerErrors: s.handlerErrors.Load(),
		DBWait:        s.tr.waits(),
	}
	if s.cached != nil {
		cs := s.cached.Stats()
		st.Cache = &cs
	}
	writeJSON(w, st)
}

// handleFlush makes every pooled connection flush its table statistics
// (pg_stat_force_next_flush), so that pg_stat_user_tables is current.
func (s *server) handleFlush(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	const q = "SELECT pg_stat_force_next_flush()"
	var err error
	if s.sqlDB != nil {
		conns := make([]*sql.Conn, 0, s.cfg.pool)
		for range s.cfg.pool {
			c, cerr := s.sqlDB.Conn(ctx)
			if cerr != nil {
				err = cerr
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			if _, e := c.ExecContext(ctx, q); e != nil && err == nil {
				err = e
			}
			c.Close()
		}
	} else {
		for _, c := range s.pool.AcquireAllIdle(ctx) {
			if _, e := c.Exec(ctx, q); e != nil && err == nil {
				err = e
			}
			c.Release()
		}
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	io.WriteString(w, "ok")
}

// handleAdvance moves the qsessions clock forward by ?by= (a duration).
func (s *server) handleAdvance(w http.ResponseWriter, r *http.Request) {
	d, err := time.ParseDuration(r.URL.Query().Get("by"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.offset.Add(int64(d))
	io.WriteString(w, "ok")
}

// handleTrace turns statement tracing on (POST ?on=1) or off (POST ?on=0)
// and returns the statements kept so far.
func (s *server) handleTrace(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		on, _ := strconv.ParseBool(r.URL.Query().Get("on"))
		if on {
			s.tr.setTracing(true)
		} else {
			defer s.tr.setTracing(false)
		}
	}
	writeJSON(w, s.tr.traced())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// processCPU returns the user and system CPU time of this process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// parallel runs f(0..n-1) on workers goroutines and returns the first
// error.
func parallel(n, workers int, f func(i int) error) error {
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	for range min(workers, max(n, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errOnce.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
