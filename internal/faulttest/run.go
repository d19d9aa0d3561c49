package faulttest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Window is when a fault was in force.
type Window struct {
	Start, End time.Time
	// Note says what happened, e.g. "down 0.41 s".
	Note string
}

// Env is what a fault acts on.
type Env struct {
	Server Server
	Proxy  *Proxy
	DBName string
}

// Fault is one fault of a run.
type Fault struct {
	// Name is the subtest's name, e.g. "restart".
	Name string
	// Label is its row label in the table, e.g. "PostgreSQL restart".
	Label string
	// Length is how long the fault lasts (0 for a restart), so that the
	// run can be made long enough.
	Length time.Duration
	// Clients overrides RunOptions.Clients when > 0.
	Clients int
	// Inject performs the fault and returns when it is over.
	Inject func(ctx context.Context, env Env) (Window, error)
}

// RestartFault stops the server fast and starts it again. While it is down
// the proxy refuses connections, as the server's own port would.
func RestartFault() Fault {
	return Fault{Name: "restart", Label: "restart", Inject: func(ctx context.Context, env Env) (Window, error) {
		return downFor(env, 0)
	}}
}

// StopFault stops the server for d, then starts it.
func StopFault(d time.Duration) Fault {
	return Fault{Name: "stop", Label: fmt.Sprintf("stopped %s", fmtDur(d)), Length: d,
		Inject: func(ctx context.Context, env Env) (Window, error) { return downFor(env, d) }}
}

func downFor(env Env, d time.Duration) (Window, error) {
	w := Window{Start: time.Now()}
	if err := env.Server.Stop(); err != nil {
		return w, err
	}
	env.Proxy.Refuse()
	time.Sleep(d)
	err := env.Server.Start()
	if aerr := env.Proxy.Accept(); err == nil {
		err = aerr
	}
	w.End = time.Now()
	w.Note = fmt.Sprintf("down %.2f s", w.End.Sub(w.Start).Seconds())
	return w, err
}

// LockFault holds a lock on the session table for d from a connection of
// its own (see Server.LockSessions). clients > 0 overrides the run's
// number of clients.
func LockFault(d time.Duration, clients int) Fault {
	f := Fault{Name: "lock", Label: fmt.Sprintf("table lock %s", fmtDur(d)), Length: d, Clients: clients,
		Inject: func(ctx context.Context, env Env) (Window, error) {
			start := time.Now()
			release, err := env.Server.LockSessions(ctx, env.DBName)
			if err != nil {
				return Window{Start: start, End: time.Now()}, fmt.Errorf("taking the lock: %w", err)
			}
			w := Window{Start: time.Now()}
			time.Sleep(d)
			err = release()
			w.End = time.Now()
			w.Note = fmt.Sprintf("lock taken in %s", fmtDur(w.Start.Sub(start)))
			return w, err
		}}
	if clients > 0 {
		f.Name = fmt.Sprintf("lock-%dclients", clients)
		f.Label += fmt.Sprintf(", %d clients", clients)
	}
	return f
}

// SilentFault makes the proxy forward nothing for d.
func SilentFault(d time.Duration) Fault {
	return Fault{Name: "silent", Label: fmt.Sprintf("silent %s", fmtDur(d)), Length: d,
		Inject: func(ctx context.Context, env Env) (Window, error) {
			w := Window{Start: time.Now()}
			env.Proxy.Silence()
			time.Sleep(d)
			env.Proxy.Resume()
			w.End = time.Now()
			return w, nil
		}}
}

// CutFault closes every connection between the demo and the server at
// once, both sides (the server stays up): the pool's connections are all
// stale.
func CutFault() Fault {
	return Fault{Name: "cut", Label: "connections cut", Inject: func(ctx context.Context, env Env) (Window, error) {
		w := Window{Start: time.Now()}
		n := env.Proxy.Cut()
		w.End = time.Now()
		w.Note = fmt.Sprintf("%d cut", n)
		return w, nil
	}}
}

// RunOptions configure one run.
type RunOptions struct {
	Server Server
	// DemoBin is the built demo.
	DemoBin string
	// Memcache is the demo's --memcache ("" for its in-process cache).
	Memcache string
	Clients  int
	// Duration of the timed run; At: when the fault begins in it.
	Duration, At time.Duration
	Think        time.Duration
	// ClientTimeout bounds each request on the client side.
	ClientTimeout time.Duration
	// Recover bounds the wait, after the run, for the demo to serve again.
	Recover time.Duration
	// Grace is how long after a fault ends a 5xx still counts as "while
	// unreachable" (requests that began later must succeed).
	Grace time.Duration
	// Sample is the interval of the connection count on the server.
	Sample time.Duration
	// Logf receives progress lines (t.Logf).
	Logf func(format string, args ...any)
}

// Result is what one run found.
type Result struct {
	Dialect, Fault string
	Clients        int
	Window         Window
	// FaultAt and FaultFor place the window relative to the run's start.
	FaultAt, FaultFor time.Duration
	RunFor            time.Duration

	Status5xx        int
	NoAnswer         int // transport errors and client timeouts
	WronglySignedOut int
	RevokedAccepted  int // in the run and in the check
	CookieDeleted    int
	Anomalies        map[string]int
	Check            CheckResult
	Worst            time.Duration
	WorstOp          string
	P50, P99         time.Duration
	// Over is, per limit, the number of requests slower than it.
	Over map[time.Duration]int
	// MaxConnsProxy is the most connections the demo held open through the
	// proxy at once (exact); MaxConnsServer the most the server counted
	// for the demo's user (sampled).
	MaxConnsProxy, MaxConnsServer int
	// ConnsOpened is the number of connections the demo opened during the
	// run (at the proxy): pool churn.
	ConnsOpened int
	// Outside5xx counts 5xx answers to requests that did not overlap the
	// fault window (extended by Grace).
	Outside5xx int
	// Unlogged5xx is, as issue 19 counted it, the 5xx answers of the run
	// less the ERROR and WARN events the demo logged meanwhile (lines plus
	// the repeats they fold, LogEntry.Count), when positive. It is a rough
	// figure: lines of failures that are no 5xx count too.
	Unlogged5xx int
	Classes5xx  []Class5xx
	Logs        []LogClass
	// Load is the machine's 1-minute load average at the end of the run
	// (Linux; 0 elsewhere), to tell figures taken on a busy machine.
	Load float64
	// WrongFrom and WrongTo span the wrongly signed-out answers, relative
	// to the fault's start (requests' starts and ends).
	WrongFrom, WrongTo time.Duration
	// During maps each route to its answers (status, 0 for none) among the
	// requests that overlapped the fault window.
	During map[string]map[int]int
	// Hung counts requests in flight for at least half the fault's length.
	Hung int
	// Requests are the requests of the timed run.
	Requests []Request
}

// Class5xx is one kind of 5xx answer: route, status and the start of the
// body.
type Class5xx struct {
	Op     string
	Status int
	Body   string
	N      int
	First  time.Time // first request's start
	Last   time.Time // last answer
	// Logged: an ERROR or WARN line of the demo names the route's path
	// (e.g. path=/api/sessions, as the pages log it) between a second
	// before First and two seconds after Last. This is what -faults.strict
	// asks of every class.
	Logged bool
	// Near: any ERROR or WARN line came in that time (weaker: another
	// failure's line may be the one).
	Near bool
}

// RunFault creates a database, puts a proxy in front of the server, starts
// the demo on it, signs the clients in, runs them for opts.Duration with f
// at opts.At, checks every session, stops the demo and returns what it
// found.
func RunFault(ctx context.Context, opts RunOptions, f Fault) (*Result, error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	clients := opts.Clients
	if f.Clients > 0 {
		clients = f.Clients
	}
	dur := opts.Duration
	if min := opts.At + f.Length + 3*time.Second; dur < min {
		logf("run extended from %s to %s to cover the fault and 3 s after it", dur, min)
		dur = min
	}
	srv := opts.Server
	name, err := srv.CreateDatabase(ctx)
	if err != nil {
		return nil, fmt.Errorf("creating the database: %w", err)
	}
	proxy, err := NewProxy(srv.Addr())
	if err != nil {
		return nil, err
	}
	defer proxy.Close()
	dir, err := os.MkdirTemp("", "qsessions-faulttest-demo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	demo, err := StartDemo(opts.DemoBin, DemoOptions{DB: srv.DemoURL(proxy.Addr, name), Memcache: opts.Memcache, Dir: dir}, time.Minute)
	if err != nil {
		return nil, err
	}
	defer demo.Stop()
	w := NewWorkload(WorkloadOptions{BaseURL: demo.URL, Accounts: demo.Accounts, Clients: clients,
		Think: opts.Think, Timeout: opts.ClientTimeout, Seed: uint64(time.Now().UnixNano())})
	defer w.Close()
	if err := w.Warmup(ctx, 30*time.Second); err != nil {
		return nil, fmt.Errorf("warm-up: %w\n%s", err, demo.Logs.Text())
	}
	// Count the demo's connections while the run lasts.
	proxy.ResetMax()
	opened0 := proxy.Total()
	var maxServer, maxProxy int
	var sampler sync.WaitGroup
	stopSampling := make(chan struct{})
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		t := time.NewTicker(opts.Sample)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
			// Connections held, sampled: the high-water mark of the
			// proxy also counts the instant between a closed connection's
			// replacement and its FIN reaching the proxy.
			maxProxy = max(maxProxy, proxy.Open())
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			if n, err := srv.DemoConns(sctx); err == nil && n > maxServer {
				maxServer = n
			}
			cancel()
		}
	}()
	env := Env{Server: srv, Proxy: proxy, DBName: name}
	start := time.Now()
	logf("%s %s: %d clients for %s, the fault at %s", srv.Label(), f.Label, clients, dur, opts.At)
	var window Window
	var faultErr error
	faultDone := make(chan struct{})
	go func() {
		defer close(faultDone)
		select {
		case <-time.After(opts.At):
		case <-ctx.Done():
			return
		}
		window, faultErr = f.Inject(ctx, env)
	}()
	w.Run(ctx, dur)
	<-faultDone
	runFor := time.Since(start)
	opened := proxy.Total() - opened0
	load := loadAverage()
	close(stopSampling)
	sampler.Wait()
	check := w.Check(opts.Recover)
	demo.Stop()
	if faultErr != nil {
		return nil, fmt.Errorf("the fault %s: %w", f.Name, faultErr)
	}
	res := &Result{Dialect: srv.Kind(), Fault: f.Label, Clients: clients, Window: window,
		FaultAt: window.Start.Sub(start), FaultFor: window.End.Sub(window.Start), RunFor: runFor, Load: load,
		Check: check, MaxConnsProxy: maxProxy, MaxConnsServer: maxServer, ConnsOpened: opened,
		Anomalies: map[string]int{}, Over: map[time.Duration]int{}, During: map[string]map[int]int{}, Requests: w.Requests()}
	res.summarise(demo.Logs.Lines(), opts.Grace, f.Length)
	return res, nil
}

// overLimits are the latencies Result.Over counts requests beyond.
var overLimits = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second}

func (r *Result) summarise(lines []LogLine, grace, length time.Duration) {
	var run []Request
	classes := map[string]*Class5xx{}
	winEnd := r.Window.End.Add(grace)
	for _, q := range r.Requests {
		// Signed out wrongly in the check after the run is a lost session,
		// counted by the check.
		if q.WronglySignedOut && q.Phase != PhaseCheck {
			from, to := q.Start.Sub(r.Window.Start), q.End().Sub(r.Window.Start)
			if r.WronglySignedOut == 0 || from < r.WrongFrom {
				r.WrongFrom = from
			}
			if r.WronglySignedOut == 0 || to > r.WrongTo {
				r.WrongTo = to
			}
			r.WronglySignedOut++
		}
		if q.RevokedAccepted {
			r.RevokedAccepted++
		}
		if q.CookieDeleted && q.Phase != PhaseCheck {
			r.CookieDeleted++
		}
		if q.Anomaly != "" {
			r.Anomalies[q.Anomaly]++
		}
		if q.Phase == PhaseWarmup {
			continue
		}
		if q.Status >= 500 {
			if q.Phase == PhaseRun {
				r.Status5xx++
			}
			if q.End().Before(r.Window.Start) || q.Start.After(winEnd) {
				r.Outside5xx++
			}
			k := fmt.Sprintf("%s|%d|%s", q.Op, q.Status, q.Body)
			c := classes[k]
			if c == nil {
				c = &Class5xx{Op: q.Op, Status: q.Status, Body: q.Body, First: q.Start}
				classes[k] = c
			}
			c.N++
			if q.Start.Before(c.First) {
				c.First = q.Start
			}
			if q.End().After(c.Last) {
				c.Last = q.End()
			}
		}
		if q.Phase != PhaseRun {
			continue
		}
		run = append(run, q)
		if !q.End().Before(r.Window.Start) && !q.Start.After(r.Window.End) {
			if r.During[q.Op] == nil {
				r.During[q.Op] = map[int]int{}
			}
			r.During[q.Op][q.Status]++
		}
		if q.Status == 0 {
			r.NoAnswer++
		}
		if q.Latency > r.Worst {
			r.Worst, r.WorstOp = q.Latency, q.Op
		}
		for _, l := range overLimits {
			if q.Latency > l {
				r.Over[l]++
			}
		}
		if length > 0 && q.Latency >= length/2 && !q.End().Before(r.Window.Start) && !q.Start.After(r.Window.End) {
			r.Hung++
		}
	}
	r.Requests = run
	r.P50, r.P99 = LatencyQuantile(run, 0.50), LatencyQuantile(run, 0.99)
	r.Logs = Classify(lines)
	var errLines []LogLine
	for _, l := range lines {
		if e := ParseLogLine(l.Text); e.Level == "ERROR" || e.Level == "WARN" {
			errLines = append(errLines, l)
		}
	}
	if len(run) > 0 {
		events := 0
		from, to := run[0].Start, run[0].End()
		for _, q := range run {
			from, to = minTime(from, q.Start), maxTime(to, q.End())
		}
		for _, l := range errLines {
			if !l.At.Before(from) && !l.At.After(to.Add(time.Second)) {
				events += ParseLogLine(l.Text).Count
			}
		}
		r.Unlogged5xx = max(0, r.Status5xx-events)
	}
	for _, c := range classes {
		from, to := c.First.Add(-time.Second), c.Last.Add(2*time.Second)
		for _, l := range errLines {
			if l.At.Before(from) || l.At.After(to) {
				continue
			}
			c.Near = true
			if mentionsRoute(l.Text, c.Op) {
				c.Logged = true
				break
			}
		}
		r.Classes5xx = append(r.Classes5xx, *c)
	}
	sort.Slice(r.Classes5xx, func(i, j int) bool { return r.Classes5xx[i].N > r.Classes5xx[j].N })
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// mentionsRoute reports whether a log line names the path of op, e.g.
// "/api/sessions" for OpAPI, "/sessions/…/revoke" for OpRevoke.
func mentionsRoute(line, op string) bool {
	_, path, _ := strings.Cut(op, " ")
	if pre, post, ok := strings.Cut(path, "{id}"); ok {
		i := strings.Index(line, pre)
		return i >= 0 && strings.Contains(line[i+len(pre):], post)
	}
	for i := 0; ; {
		j := strings.Index(line[i:], path)
		if j < 0 {
			return false
		}
		end := i + j + len(path)
		// "/sessions" must not match "/api/sessions" or "/sessions/x/revoke".
		before := i+j == 0 || line[i+j-1] == '=' || line[i+j-1] == ' ' || line[i+j-1] == '"'
		after := end == len(line) || line[end] == ' ' || line[end] == '"' || line[end] == '?'
		if before && after {
			return true
		}
		i = end
	}
}

// Limits are the targets of issue 19 that Violations checks.
type Limits struct {
	// Deadline is the configured database deadline: no request may take
	// longer than Deadline + 1 s.
	Deadline time.Duration
	// Pool is the configured maximum of open database connections.
	Pool int
}

// Violations lists what in r misses the targets: 0 lost sessions, 0
// revoked accepted, 0 wrongly signed out, no request past the deadline
// + 1 s, connections ≤ the pool, 5xx only while the database is
// unreachable, every 5xx class logged, and recovery.
func (r *Result) Violations(l Limits) []string {
	var v []string
	add := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }
	if r.Check.Lost > 0 {
		add("%d live sessions lost", r.Check.Lost)
	}
	if r.Check.Unrecovered {
		add("the demo did not serve a live session again within %s after the run", fmtDur(r.Check.Recovered))
	}
	if r.Check.Unverified > 0 {
		add("%d live sessions gave no clear answer after the recovery", r.Check.Unverified)
	}
	if r.RevokedAccepted > 0 {
		add("%d requests with a revoked or signed-out cookie were served as signed in", r.RevokedAccepted)
	}
	if r.WronglySignedOut > 0 {
		add("%d requests of live sessions answered as signed out (401 or a redirect to /login)", r.WronglySignedOut)
	}
	if r.CookieDeleted > 0 {
		add("%d answers deleted a live session's cookie", r.CookieDeleted)
	}
	if lim := l.Deadline + time.Second; r.Worst > lim {
		n := 0
		for _, q := range r.Requests {
			if q.Latency > lim {
				n++
			}
		}
		add("%d requests took longer than the deadline + 1 s (%s); the worst %s (%s)", n, fmtDur(lim), fmtDur(r.Worst), r.WorstOp)
	}
	// A connection the demo holds is open at the proxy and at the server
	// alike, so at every moment held <= min(proxy, server), and so held
	// <= min(max proxy, max server). Each count alone also has what the
	// other has not: PostgreSQL cancel requests and sockets the client
	// already closed (proxy), statements still waiting for a lock after
	// their client gave up (MariaDB's server).
	held := r.MaxConnsProxy
	if r.MaxConnsServer > 0 {
		held = min(held, r.MaxConnsServer)
	}
	if l.Pool > 0 && held > l.Pool {
		add("the demo held %d database connections at once, more than the pool's %d", held, l.Pool)
	}
	if r.Outside5xx > 0 {
		add("%d 5xx answers outside the fault (it lasted %s from %s)", r.Outside5xx, fmtDur(r.FaultFor), fmtDur(r.FaultAt))
	}
	for _, c := range r.Classes5xx {
		if !c.Logged {
			add("%d× %s %d %q with no ERROR or WARN log line naming the path in their time", c.N, c.Op, c.Status, c.Body)
		}
	}
	for a, n := range r.Anomalies {
		add("%d× %s", n, a)
	}
	return v
}

// fmtDur prints a duration for the table: "332 ms", "10.1 s".
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}

// Table renders results as the Markdown table of issue 19, with the
// details of each run below it.
func Table(results []*Result) string {
	var b strings.Builder
	b.WriteString("| fault | clients | requests | 5xx | wrongly \"signed out\" | revoked accepted | lost | worst latency | max DB conns (proxy / server), opened | ERROR+WARN log lines by class |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range results {
		var logs []string
		for _, c := range r.Logs {
			s := fmt.Sprintf("%s %q ×%d", c.Level, c.Msg, c.Lines)
			if c.Events != c.Lines {
				s += fmt.Sprintf(" (%d events)", c.Events)
			}
			logs = append(logs, s)
		}
		if len(logs) == 0 {
			logs = []string{"none"}
		}
		lost := fmt.Sprint(r.Check.Lost)
		if r.Check.Unverified > 0 {
			lost += fmt.Sprintf(" (+%d unverified)", r.Check.Unverified)
		}
		fivexx := fmt.Sprint(r.Status5xx)
		if r.Unlogged5xx > 0 {
			fivexx += fmt.Sprintf(" (≈%d with no log line)", r.Unlogged5xx)
		}
		label := dialectLabel(r.Dialect) + " " + r.Fault
		if r.Window.Note != "" {
			label += " (" + r.Window.Note + ")"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %d | %d | %s | %s (%s) | %d / %d, %d | %s |\n",
			label, r.Clients, len(r.Requests), fivexx, r.WronglySignedOut,
			r.RevokedAccepted, lost, fmtDur(r.Worst), r.WorstOp, r.MaxConnsProxy, r.MaxConnsServer, r.ConnsOpened, strings.Join(logs, "; "))
	}
	b.WriteString("\n")
	for _, r := range results {
		fmt.Fprintf(&b, "%s %s: fault at %s for %s %s, run %s, load average %.1f; p50 %s, p99 %s; slower than 1/2/5/10/30 s: %d/%d/%d/%d/%d; "+
			"in flight ≥ half the fault: %d; no answer: %d; 5xx outside the fault: %d; 5xx less ERROR/WARN events: %d; live cookies deleted: %d; "+
			"after the run: served again after %s%s, %d live checked (%d lost, %d unverified), %d ended probed (%d accepted), %d uncertain\n",
			dialectLabel(r.Dialect), r.Fault, fmtDur(r.FaultAt), fmtDur(r.FaultFor), r.Window.Note, fmtDur(r.RunFor), r.Load,
			fmtDur(r.P50), fmtDur(r.P99), r.Over[time.Second], r.Over[2*time.Second], r.Over[5*time.Second], r.Over[10*time.Second], r.Over[30*time.Second],
			r.Hung, r.NoAnswer, r.Outside5xx, r.Unlogged5xx, r.CookieDeleted,
			fmtDur(r.Check.Recovered), recoveryNote(r.Check),
			r.Check.Live, r.Check.Lost, r.Check.Unverified, r.Check.Ended, r.Check.Accepted, r.Check.Uncertain)
		var during []string
		for _, op := range []string{OpAPI, OpPage, OpLogin, OpLogout, OpRevoke} {
			m := r.During[op]
			if len(m) == 0 {
				continue
			}
			codes := make([]int, 0, len(m))
			for c := range m {
				codes = append(codes, c)
			}
			slices.Sort(codes)
			var parts []string
			for _, c := range codes {
				parts = append(parts, fmt.Sprintf("%d×%d", c, m[c]))
			}
			during = append(during, op+" "+strings.Join(parts, " "))
		}
		if len(during) > 0 {
			fmt.Fprintf(&b, "    answers during the fault (status×count, 0 = none): %s\n", strings.Join(during, "; "))
		}
		if r.WronglySignedOut > 0 {
			fmt.Fprintf(&b, "    wrongly signed out: %d, from %+.2f s to %+.2f s of the fault's start\n", r.WronglySignedOut, r.WrongFrom.Seconds(), r.WrongTo.Seconds())
		}
		for _, c := range r.Classes5xx {
			fmt.Fprintf(&b, "    5xx: %d× %s → %d %q, from %+.2f s to %+.2f s of the fault's start; an ERROR/WARN line naming the path meanwhile: %v, any: %v\n",
				c.N, c.Op, c.Status, c.Body, c.First.Sub(r.Window.Start).Seconds(), c.Last.Sub(r.Window.Start).Seconds(), c.Logged, c.Near)
		}
		for _, c := range r.Logs {
			fmt.Fprintf(&b, "    log: %d× %s, first at %+.2f s of the fault's start: %s\n", c.Lines, c.Level, c.First.Sub(r.Window.Start).Seconds(), c.Example)
		}
		keys := make([]string, 0, len(r.Anomalies))
		for a := range r.Anomalies {
			keys = append(keys, a)
		}
		slices.Sort(keys)
		for _, a := range keys {
			fmt.Fprintf(&b, "    anomaly: %d× %s\n", r.Anomalies[a], a)
		}
	}
	return b.String()
}

// loadAverage returns the 1-minute load average from /proc/loadavg, or 0.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b) + " 0")[0], 64)
	return f
}

func recoveryNote(c CheckResult) string {
	s := ""
	if len(c.Probes) > 1 {
		s = fmt.Sprintf(" (probes answered %v)", c.Probes)
	}
	if c.Unrecovered {
		s += " NOT RECOVERED"
	}
	return s
}

func dialectLabel(kind string) string {
	switch kind {
	case "postgres":
		return "PostgreSQL"
	case "mysql":
		return "MariaDB"
	}
	return kind
}
