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
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/dburl"
)

// child is one server process.
type child struct {
	kind   string
	schema string
	addr   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	cookie string
	tokens []string
}

// sample is one measured run of a route on a server.
type sample struct {
	server, route string
	round         int // 1..rounds; 0 outside the rounds
	res           loadResult
	statements    int64
	txControl     int64
	rowWrites     int64
	cpu           time.Duration
	handlerErrors int64
	cache         *cacheDelta
	other         float64 // share of the machine's CPU other processes took
	pgCPU         time.Duration
	dbWait        [len(statementKinds)]time.Duration
}

// dbWaitTotal is the time all statements took.
func (s sample) dbWaitTotal() time.Duration {
	var t time.Duration
	for _, d := range s.dbWait {
		t += d
	}
	return t
}

// cacheDelta is the change of CachedDB's counters over a sample.
type cacheDelta struct{ hits, misses, fallbacks, errors uint64 }

// dbShare is the share of loads that asked the database.
func (c *cacheDelta) dbShare() float64 {
	total := c.hits + c.misses + c.fallbacks
	if total == 0 {
		return 0
	}
	return float64(c.misses+c.fallbacks) / float64(total)
}

// snapshot is a server's counters at one moment.
type snapshot struct {
	st        serverStats
	rowWrites int64
}

// harness holds what a run set up.
type harness struct {
	cfg      config
	ctx      context.Context
	stats    *sql.DB // the run's database, for pg_stat_user_tables
	children map[string]*child
	ctl      *http.Client
	env      environment
}

// environment describes the machine and servers, for the report.
type environment struct {
	start, end          time.Time
	loadBefore, loadEnd string
	postgres, memcached string
	dbName              string
	commit              string // the checkout measured, from git
	autovacuum          string // the server's autovacuum setting
	cacheMem            string // memcached's memory per cached session, after the setup
}

// run sets up the database, memcached and the servers, measures, reports
// and tears everything down. ok is false if any request failed.
func run(cfg config) (ok bool, err error) {
	ctx := context.Background()
	h := &harness{cfg: cfg, ctx: ctx, children: map[string]*child{}, ctl: &http.Client{Timeout: 5 * time.Minute}}
	h.env.start = time.Now()
	h.env.loadBefore = loadavg()
	h.env.commit = gitCommit()

	// A database of our own, with a schema per server.
	admin, err := dburl.Open(cfg.postgres)
	if err != nil {
		return false, err
	}
	defer admin.Close()
	var b [4]byte
	_, _ = rand.Read(b[:])
	dbName := "qs_load_" + hex.EncodeToString(b[:])
	h.env.dbName = dbName
	if _, err := admin.SQL.ExecContext(ctx, "CREATE DATABASE "+dbName); err != nil {
		return false, fmt.Errorf("creating the database: %w", err)
	}
	if !cfg.keep {
		defer func() {
			if _, err := admin.SQL.ExecContext(context.Background(), "DROP DATABASE "+dbName+" WITH (FORCE)"); err != nil {
				fmt.Fprintf(os.Stderr, "load: dropping %s: %v\n", dbName, err)
			}
		}()
	} else {
		fmt.Printf("keeping database %s\n", dbName)
	}
	_ = admin.SQL.QueryRowContext(ctx, "SHOW server_version").Scan(&h.env.postgres)
	u, err := url.Parse(cfg.postgres)
	if err != nil {
		return false, err
	}
	u.Path = "/" + dbName
	q := u.Query()
	q.Del("search_path")
	u.RawQuery = q.Encode()
	statsDB, err := dburl.Open(u.String())
	if err != nil {
		return false, err
	}
	defer statsDB.Close()
	h.stats = statsDB.SQL

	needCache := false
	for _, s := range cfg.servers {
		needCache = needCache || s == kindCached
	}
	if needCache && cfg.memcached == "" {
		addr, stop, err := startMemcached()
		if err != nil {
			return false, err
		}
		defer stop()
		cfg.memcached = addr
		h.cfg.memcached = addr
	}
	if needCache {
		h.env.memcached = memcachedVersion(cfg.memcached)
	}

	// The servers, set up in parallel.
	errs := make(chan error, len(cfg.servers))
	for _, kind := range cfg.servers {
		schema := "qs_" + kind
		if _, err := h.stats.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
			return false, err
		}
		su := *u
		sq := su.Query()
		sq.Set("search_path", schema)
		su.RawQuery = sq.Encode()
		c := &child{kind: kind, schema: schema}
		h.children[kind] = c
		go func() { errs <- h.start(c, su.String()) }()
	}
	defer h.stopAll()
	fmt.Printf("setting up %s (sessions %d, fresh users %d, %d users at %d sessions; database %s)\n",
		strings.Join(cfg.servers, ", "), cfg.sessions, cfg.users, cfg.capUsers, cfg.perCap, dbName)
	for range cfg.servers {
		if err := <-errs; err != nil {
			return false, err
		}
	}
	// Statistics, as autovacuum would keep them on a production server
	// (the shared test server may run with autovacuum off): without them a
	// connection's cached generic plans stay those made for the empty
	// tables of the setup's first statements (sequential scans of the
	// session table for the cap's lookup by user, say) for the whole run.
	// ANALYZE also invalidates the plans cached so far.
	_ = h.stats.QueryRowContext(ctx, "SHOW autovacuum").Scan(&h.env.autovacuum)
	if _, err := h.stats.ExecContext(ctx, "VACUUM ANALYZE"); err != nil {
		return false, fmt.Errorf("analyzing the tables: %w", err)
	}
	if c := h.children[kindCached]; c != nil && cfg.sessions > 0 {
		// The cache holds the signed-in sessions (and the at-cap users'):
		// what one costs in memcached, with its item header and key.
		h.env.cacheMem = memcachedMemory(h.cfg.memcached)
	}
	for _, c := range h.children {
		var t struct {
			Cookie string   `json:"cookie"`
			Tokens []string `json:"tokens"`
		}
		if err := h.getJSON(c, "/_bench/tokens", &t); err != nil {
			return false, err
		}
		c.cookie, c.tokens = t.Cookie, t.Tokens
	}

	samples, err := h.measure()
	if err != nil {
		return false, err
	}
	h.env.end = time.Now()
	h.env.loadEnd = loadavg()
	rep := &report{cfg: h.cfg, env: h.env, samples: samples}
	if err := h.traceLogins(rep); err != nil {
		return false, err
	}
	var sb strings.Builder
	rep.write(&sb)
	fmt.Println()
	fmt.Print(sb.String())
	if cfg.markdown != "" {
		if err := os.WriteFile(cfg.markdown, []byte(sb.String()), 0o644); err != nil {
			return false, err
		}
		fmt.Printf("\nwrote %s\n", cfg.markdown)
	}
	return rep.ok(), nil
}

// measure runs the warmup, the rounds, the warmth and activity
// measurements.
func (h *harness) measure() ([]sample, error) {
	cfg := h.cfg
	if cfg.profile != "" {
		if err := os.MkdirAll(cfg.profile, 0o755); err != nil {
			return nil, err
		}
	}
	for _, kind := range cfg.servers {
		c := h.children[kind]
		runLoad(loadSpec{addr: c.addr, path: "/read", cookie: c.cookie, tokens: c.tokens, conns: cfg.conns, duration: cfg.warmup})
	}
	var samples []sample
	for r := 1; r <= cfg.rounds; r++ {
		for _, route := range cfg.routes {
			for _, kind := range cfg.servers {
				s, err := h.sample(h.children[kind], route, r, cfg.duration, cfg.profile != "")
				if err != nil {
					return nil, err
				}
				fmt.Printf("round %d %-9s %-9s %s\n", r, route, kind, s.line())
				samples = append(samples, s)
			}
		}
	}
	if c := h.children[kindCached]; c != nil && cfg.warmth > 0 {
		s, err := h.sample(c, "read", -1, cfg.duration, false)
		if err != nil {
			return nil, err
		}
		s.route = "warmth/before"
		fmt.Printf("warmth    before    %-9s %s\n", c.kind, s.line())
		samples = append(samples, s)
		s, err = h.sample(c, "write", -1, cfg.duration, false)
		if err != nil {
			return nil, err
		}
		s.route = "warmth/burst"
		fmt.Printf("warmth    burst     %-9s %s\n", c.kind, s.line())
		samples = append(samples, s)
		for i := 1; i <= cfg.warmth; i++ {
			s, err := h.sample(c, "read", -1, cfg.duration, false)
			if err != nil {
				return nil, err
			}
			s.route = fmt.Sprintf("warmth/read%d", i)
			fmt.Printf("warmth    read %d    %-9s %s\n", i, c.kind, s.line())
			samples = append(samples, s)
		}
	}
	if cfg.activity > 0 {
		for _, kind := range cfg.servers {
			c := h.children[kind]
			if kind != kindSCS {
				by := qsessions.DefaultActivityInterval + time.Second
				if err := h.post(c, "/_bench/advance?by="+by.String()); err != nil {
					return nil, err
				}
			}
			s, err := h.sample(c, "read", -1, cfg.activity, false)
			if err != nil {
				return nil, err
			}
			s.route = "activity"
			fmt.Printf("activity  read      %-9s %s\n", kind, s.line())
			samples = append(samples, s)
		}
	}
	return samples, nil
}

// sample runs route on c for d and measures it.
func (h *harness) sample(c *child, route string, round int, d time.Duration, profile bool) (sample, error) {
	before, err := h.snapshot(c)
	if err != nil {
		return sample{}, err
	}
	spec := loadSpec{addr: c.addr, path: "/" + route, cookie: c.cookie, conns: h.cfg.conns, duration: d}
	if !strings.HasPrefix(route, "login") {
		spec.tokens = c.tokens
	}
	var prof chan error
	if profile {
		prof = make(chan error, 1)
		secs := max(int((d+time.Second-1)/time.Second), 1)
		file := filepath.Join(h.cfg.profile, fmt.Sprintf("%s-%s-r%d.pprof", route, c.kind, round))
		go func() { prof <- h.saveProfile(c, secs, file) }()
		time.Sleep(20 * time.Millisecond) // let the profile start first
	}
	pids := []int{os.Getpid()}
	for _, ch := range h.children {
		pids = append(pids, ch.cmd.Process.Pid)
	}
	cpu0 := cpuSnapshot(pids)
	res := runLoad(spec)
	cpu1 := cpuSnapshot(pids)
	if prof != nil {
		if err := <-prof; err != nil {
			return sample{}, err
		}
	}
	after, err := h.snapshot(c)
	if err != nil {
		return sample{}, err
	}
	s := sample{
		server: c.kind, route: route, round: round, res: res,
		statements:    after.st.Statements - before.st.Statements,
		txControl:     after.st.TxControl - before.st.TxControl,
		rowWrites:     after.rowWrites - before.rowWrites,
		cpu:           after.st.CPU - before.st.CPU,
		handlerErrors: after.st.HandlerErrors - before.st.HandlerErrors,
		other:         otherShare(cpu0, cpu1),
		pgCPU:         postgresCPU(cpu0, cpu1),
	}
	for i := range s.dbWait {
		if i < len(after.st.DBWait) && i < len(before.st.DBWait) {
			s.dbWait[i] = after.st.DBWait[i] - before.st.DBWait[i]
		}
	}
	if a, b := after.st.Cache, before.st.Cache; a != nil && b != nil {
		s.cache = &cacheDelta{
			hits: a.Hits - b.Hits, misses: a.Misses - b.Misses,
			fallbacks: a.Fallbacks - b.Fallbacks, errors: a.Errors - b.Errors,
		}
	}
	return s, nil
}

// line is a one-line summary of s for the console.
func (s sample) line() string {
	n := float64(max(s.res.requests, 1))
	out := fmt.Sprintf("%8.0f req/s  p50 %-8v p99 %-8v  stmts/req %.3f  rt/req %.3f  rows/req %.3f  cpu/req %v  pg-cpu/req %v  db-wait/req %v",
		s.res.rate(), round(s.res.pct(50)), round(s.res.pct(99)),
		float64(s.statements)/n, float64(s.statements+s.txControl)/n, float64(s.rowWrites)/n,
		(s.cpu / time.Duration(n)).Round(time.Microsecond), (s.pgCPU / time.Duration(n)).Round(time.Microsecond),
		(s.dbWaitTotal() / time.Duration(n)).Round(time.Microsecond))
	if s.cache != nil {
		out += fmt.Sprintf("  db-loads %.1f%% (hits %d misses %d fallbacks %d errors %d)",
			100*s.cache.dbShare(), s.cache.hits, s.cache.misses, s.cache.fallbacks, s.cache.errors)
	}
	out += fmt.Sprintf("  other %.0f%%", 100*s.other)
	if s.res.errors > 0 {
		out += fmt.Sprintf("  ERRORS %d %v", s.res.errors, s.res.status)
	}
	return out
}

// snapshot flushes c's table statistics and reads its counters.
func (h *harness) snapshot(c *child) (snapshot, error) {
	var sn snapshot
	if err := h.post(c, "/_bench/flush"); err != nil {
		return sn, err
	}
	if err := h.getJSON(c, "/_bench/stats", &sn.st); err != nil {
		return sn, err
	}
	err := h.stats.QueryRowContext(h.ctx, `SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)
FROM pg_stat_user_tables WHERE schemaname = $1 AND relname IN ('qsessions_session', 'sessions')`, c.schema).Scan(&sn.rowWrites)
	return sn, err
}

// traceLogins records the statements of one login and one login at the cap
// on each server.
func (h *harness) traceLogins(rep *report) error {
	rep.traces = map[string]map[string][]string{}
	for _, kind := range h.cfg.servers {
		c := h.children[kind]
		rep.traces[kind] = map[string][]string{}
		for _, route := range []string{"login", "login_cap", "login_row"} {
			path, token := "/"+route, ""
			if route == "login_row" {
				// A visitor with a session of their own signs in.
				var t struct {
					Token string `json:"token"`
				}
				if err := h.getJSON(c, "/_bench/anon", &t); err != nil {
					return err
				}
				path, token = "/login", t.Token
			}
			if err := h.post(c, "/_bench/trace?on=1"); err != nil {
				return err
			}
			conn, err := dial(c.addr)
			if err != nil {
				return err
			}
			code, _, err := conn.do(buildRequest(nil, path, c.cookie, token))
			conn.close()
			if err != nil {
				return err
			}
			if code != 200 {
				return fmt.Errorf("%s %s: status %d", kind, route, code)
			}
			var stmts []string
			if err := h.postJSON(c, "/_bench/trace?on=0", &stmts); err != nil {
				return err
			}
			rep.traces[kind][route] = stmts
		}
	}
	return nil
}

// start runs the server process of c and waits until it is ready.
func (h *harness) start(c *child, dbURL string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{
		"-serve", c.kind, "-serve-db", dbURL, "-memcached", h.cfg.memcached,
		"-sessions", strconv.Itoa(h.cfg.sessions), "-users", strconv.Itoa(h.cfg.users),
		"-cap-users", strconv.Itoa(h.cfg.capUsers), "-per-cap", strconv.Itoa(h.cfg.perCap),
		"-pool", strconv.Itoa(h.cfg.pool),
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	c.cmd, c.stdin = cmd, stdin
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
			c.addr = addr
			go func() { _, _ = io.Copy(os.Stdout, stdout) }()
			return nil
		}
		fmt.Println(sc.Text())
	}
	return fmt.Errorf("server %s exited before it was ready: %v", c.kind, cmd.Wait())
}

// stopAll ends the server processes: closing stdin makes each exit.
func (h *harness) stopAll() {
	for _, c := range h.children {
		if c.cmd == nil || c.cmd.Process == nil {
			continue
		}
		c.stdin.Close()
		done := make(chan struct{})
		go func() { _ = c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			<-done
		}
	}
}

// saveProfile writes a CPU profile of c over secs seconds to file.
func (h *harness) saveProfile(c *child, secs int, file string) error {
	resp, err := h.ctl.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", c.addr, secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("profile of %s: %s", c.kind, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	fmt.Printf("profile %s\n", file)
	return f.Close()
}

func (h *harness) post(c *child, path string) error {
	return h.postJSON(c, path, nil)
}

func (h *harness) postJSON(c *child, path string, v any) error {
	resp, err := h.ctl.Post("http://"+c.addr+path, "text/plain", nil)
	if err != nil {
		return err
	}
	return decode(resp, c.kind+" "+path, v)
}

func (h *harness) getJSON(c *child, path string, v any) error {
	resp, err := h.ctl.Get("http://" + c.addr + path)
	if err != nil {
		return err
	}
	return decode(resp, c.kind+" "+path, v)
}

func decode(resp *http.Response, what string, v any) error {
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s: %s", what, resp.Status, strings.TrimSpace(string(body)))
	}
	if v == nil {
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// startMemcached starts a private memcached on a free loopback port and
// returns its address and a function that stops it.
func startMemcached() (string, func(), error) {
	bin, err := exec.LookPath("memcached")
	if err != nil {
		if addr := os.Getenv("QSESSIONS_TEST_MEMCACHED"); addr != "" {
			fmt.Printf("no memcached binary; using QSESSIONS_TEST_MEMCACHED=%s\n", addr)
			return addr, func() {}, nil
		}
		return "", nil, errors.New("cached_db needs memcached: install it, pass -memcached host:port, or leave cached_db out of -servers")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	args := []string{"-l", "127.0.0.1", "-p", port, "-m", "64", "-t", "2"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if i == 50 {
			stop()
			return "", nil, fmt.Errorf("memcached on %s did not start: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("started memcached on %s (pid %d)\n", addr, cmd.Process.Pid)
	return addr, stop, nil
}

// memcachedVersion asks the server at addr for its version.
func memcachedVersion(addr string) string {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "not reachable"
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "version\r\n"); err != nil {
		return "?"
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "?"
	}
	return strings.TrimPrefix(strings.TrimSpace(line), "VERSION ")
}

// memcachedMemory describes the memory memcached at addr spends per item
// ("stats": bytes over curr_items, the items' own size with their keys and
// headers; "stats slabs": the chunks holding them, what the items take of
// the memory limit), or "".
func memcachedMemory(addr string) string {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReader(c)
	stats := func(cmd string) map[string]int64 {
		out := map[string]int64{}
		if _, err := io.WriteString(c, cmd+"\r\n"); err != nil {
			return out
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil || strings.TrimSpace(line) == "END" {
				return out
			}
			f := strings.Fields(line)
			if len(f) == 3 && f[0] == "STAT" {
				n, _ := strconv.ParseInt(f[2], 10, 64)
				out[f[1]] += n
				if i := strings.IndexByte(f[1], ':'); i >= 0 { // "1:chunk_size": per slab class
					out["all:"+f[1][i+1:]] += n
				}
			}
		}
	}
	g, sl := stats("stats"), stats("stats slabs")
	items := g["curr_items"]
	if items == 0 {
		return ""
	}
	var chunks int64
	for k, v := range sl {
		// used_chunks times chunk_size, per class.
		if strings.HasSuffix(k, ":used_chunks") && !strings.HasPrefix(k, "all:") {
			class := strings.TrimSuffix(k, ":used_chunks")
			chunks += v * sl[class+":chunk_size"]
		}
	}
	return fmt.Sprintf("%d items: %d bytes per item (value, key and item header; memcached's `bytes` over `curr_items`), %d bytes of slab chunks per item",
		items, g["bytes"]/items, chunks/items)
}

// gitCommit describes the checkout the harness runs in: the short commit,
// and whether files differ from it (the root module is built from the
// working tree through bench/go.mod's replace).
func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown (not a git checkout)"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no", "--", "..").Output(); err == nil && len(st) > 0 {
		c += " with uncommitted changes"
	}
	return c
}

// loadavg returns the 1, 5 and 15 minute load averages.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// round rounds d for display.
func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}
