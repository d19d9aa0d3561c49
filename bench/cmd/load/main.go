// Command load measures qsessions and scs side by side under concurrency.
//
// It starts three servers as subprocesses of itself, each a tiny net/http
// app on one Postgres database (a schema each): qsessions with the db
// backend, qsessions with cached_db (memcached in front), and scs v2 with
// pgxstore. Each has the routes
//
//	/read       reads a session value
//	/write      sets a counter in the session
//	/untouched  never touches the session (the cookie is sent anyway)
//	/login      no cookie: logs in a fresh user (qsessions Session.Login;
//	            scs RenewToken + Put("userID", id))
//	/login_cap  the same for users that already hold 99 live sessions
//
// and, before the run, 1,000 signed-in sessions with random cookies, the
// fresh users and the at-cap users' sessions, all made through each
// library's own API. A load client in this process (32 keep-alive
// connections, loopback, a minimal HTTP/1.1 client so that it costs about
// what wrk would) drives every route against every server in alternating
// rounds (db, cached_db, scs, db, cached_db, scs, ...), so drift on the
// machine falls on all three alike, and reports per route and server:
// requests per second, p50 and p99 latency, database statements and round
// trips per request (counted at the wire by a pgx QueryTracer in each
// server, the same for both libraries), row writes per request of the
// session table (pg_stat_user_tables, flushed on every pooled connection
// with pg_stat_force_next_flush), the server process's CPU per request,
// and for cached_db the share of loads that went to the database
// (CachedDB.Stats).
//
// After the rounds it measures cached_db's warmth after a write burst (a
// burst of writes, then read rounds), the activity writes of 10 s of
// reads over the 1,000 sessions with every session's ActivityInterval just
// elapsed (each server's clock is moved forward by the interval plus a
// second; one write per session, so at most 1,000, is the target), and the
// statements of one login on each server.
//
//	go run ./cmd/load                         # the full run, about 5 minutes
//	go run ./cmd/load -short                  # CI: a few seconds, proves it works
//	go run ./cmd/load -markdown out.md        # also write the BENCHMARKS.md section
//	go run ./cmd/load -routes login -profile /tmp/prof   # CPU profiles of the rounds (here: logins)
//
// bench/run load runs it and puts its section into BENCHMARKS.md.
//
// Postgres comes from -postgres (default QSESSIONS_TEST_POSTGRES, else the
// tests' default); the run creates a database of its own and drops it at
// the end. memcached: -memcached host:port, or by default a private
// memcached started from PATH on a free port (and stopped at the end), or
// QSESSIONS_TEST_MEMCACHED when there is no memcached binary.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/internal/testutil"
)

// config is the harness's flags.
type config struct {
	postgres  string
	memcached string
	servers   []string
	routes    []string
	rounds    int
	duration  time.Duration
	warmup    time.Duration
	conns     int
	sessions  int
	users     int
	capUsers  int
	perCap    int
	pool      int
	activity  time.Duration
	warmth    int
	short     bool
	markdown  string
	profile   string
	keep      bool
	args      string // the command line, for the report
}

// allRoutes are the routes in the order each round runs them.
var allRoutes = []string{"read", "write", "untouched", "login", "login_cap"}

func main() {
	var sc serverConfig
	flag.StringVar(&sc.kind, "serve", "", "internal: run as the named server (db, cached_db, scs)")
	flag.StringVar(&sc.dbURL, "serve-db", "", "internal: the server's database URL")
	flag.StringVar(&sc.listen, "serve-listen", "127.0.0.1:0", "internal: the server's listen address")

	var cfg config
	var servers, routes string
	flag.StringVar(&cfg.postgres, "postgres", testutil.Env("QSESSIONS_TEST_POSTGRES", testutil.DefaultPostgres), "Postgres server URL (a database of its own is created in it)")
	flag.StringVar(&cfg.memcached, "memcached", "", "memcached host:port for cached_db (default: start a private memcached, else QSESSIONS_TEST_MEMCACHED)")
	flag.StringVar(&servers, "servers", "db,cached_db,scs", "servers, in the order of each round")
	flag.StringVar(&routes, "routes", strings.Join(allRoutes, ","), "routes, in the order of each round")
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds (each runs every route on every server)")
	flag.DurationVar(&cfg.duration, "duration", 5*time.Second, "length of one route on one server in a round")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "reads on each server before the rounds")
	flag.IntVar(&cfg.conns, "conns", 32, "client connections")
	flag.IntVar(&cfg.sessions, "sessions", 1000, "signed-in sessions per server")
	flag.IntVar(&cfg.users, "users", 100_000, "fresh users for the login route, per server")
	flag.IntVar(&cfg.capUsers, "cap-users", 100, "users at the cap, per server")
	flag.IntVar(&cfg.perCap, "per-cap", qsessions.DefaultMaxSessionsPerUser-1, "sessions each at-cap user holds before the run")
	flag.IntVar(&cfg.pool, "pool", 16, "database connections per server")
	flag.DurationVar(&cfg.activity, "activity", 10*time.Second, "length of the activity-writes measurement (0 skips it)")
	flag.IntVar(&cfg.warmth, "warmth", 3, "read rounds after a write burst on cached_db (0 skips them)")
	flag.BoolVar(&cfg.short, "short", false, "CI mode: 1 round of 1 s, 100 sessions, few users; fails on any error")
	flag.StringVar(&cfg.markdown, "markdown", "", "write the BENCHMARKS.md section to this file")
	flag.StringVar(&cfg.profile, "profile", "", "directory for CPU profiles of each server during every round of the routes run (-routes picks them)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the database afterwards")
	flag.Parse()

	if sc.kind != "" {
		sc.memcached = cfg.memcached
		sc.sessions, sc.users, sc.capUsers, sc.perCap, sc.pool = cfg.sessions, cfg.users, cfg.capUsers, cfg.perCap, cfg.pool
		if err := serve(sc); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", sc.kind, err)
			os.Exit(1)
		}
		return
	}

	if cfg.short {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("rounds", func() { cfg.rounds = 1 })
		def("duration", func() { cfg.duration = time.Second })
		def("warmup", func() { cfg.warmup = 200 * time.Millisecond })
		def("sessions", func() { cfg.sessions = 100 })
		def("users", func() { cfg.users = 2000 })
		def("cap-users", func() { cfg.capUsers = 4 })
		def("activity", func() { cfg.activity = time.Second })
		def("warmth", func() { cfg.warmth = 1 })
		def("conns", func() { cfg.conns = 8 })
	}
	cfg.servers = strings.Split(servers, ",")
	cfg.routes = strings.Split(routes, ",")
	var args []string
	flag.Visit(func(f *flag.Flag) {
		if f.Name != "markdown" && f.Name != "postgres" && f.Name != "memcached" {
			args = append(args, "-"+f.Name+"="+f.Value.String())
		}
	})
	cfg.args = strings.Join(args, " ")
	if err := validate(&cfg); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(2)
	}
	ok, err := run(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
	if !ok {
		fmt.Fprintln(os.Stderr, "load: some requests failed (see the errors column)")
		os.Exit(1)
	}
}

// validate checks the flags.
func validate(cfg *config) error {
	for _, s := range cfg.servers {
		if s != kindDB && s != kindCached && s != kindSCS {
			return fmt.Errorf("unknown server %q (want db, cached_db, scs)", s)
		}
	}
	for _, r := range cfg.routes {
		found := false
		for _, a := range allRoutes {
			found = found || a == r
		}
		if !found {
			return fmt.Errorf("unknown route %q (want %s)", r, strings.Join(allRoutes, ", "))
		}
	}
	if cfg.rounds < 1 || cfg.conns < 1 || cfg.sessions < 1 || cfg.users < 1 || cfg.capUsers < 1 || cfg.pool < 1 {
		return fmt.Errorf("rounds, conns, sessions, users, cap-users and pool must be positive")
	}
	if runtime.GOOS != "linux" {
		fmt.Fprintln(os.Stderr, "load: note: written for Linux (process CPU via getrusage)")
	}
	return nil
}
