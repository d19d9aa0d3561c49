package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report turns the samples into the "Under concurrency" section of
// BENCHMARKS.md.
type report struct {
	cfg     config
	env     environment
	samples []sample
	traces  map[string]map[string][]string // server → route → statements
}

// agg is a route on a server over the rounds.
type agg struct {
	rates, p50s, p99s []float64 // per round; latencies in seconds
	total             sample    // summed counters
}

// aggregate sums the round samples of route on server.
func (r *report) aggregate(server, route string) *agg {
	a := &agg{}
	for _, s := range r.samples {
		if s.server != server || s.route != route || s.round < 1 {
			continue
		}
		a.add(s)
	}
	if len(a.rates) == 0 {
		return nil
	}
	return a
}

func (a *agg) add(s sample) {
	a.rates = append(a.rates, s.res.rate())
	a.p50s = append(a.p50s, s.res.pct(50).Seconds())
	a.p99s = append(a.p99s, s.res.pct(99).Seconds())
	t := &a.total
	t.res.requests += s.res.requests
	t.res.errors += s.res.errors
	t.statements += s.statements
	t.txControl += s.txControl
	t.rowWrites += s.rowWrites
	t.cpu += s.cpu
	t.handlerErrors += s.handlerErrors
	t.pgCPU += s.pgCPU
	for i, d := range s.dbWait {
		t.dbWait[i] += d
	}
	if s.cache != nil {
		if t.cache == nil {
			t.cache = &cacheDelta{}
		}
		t.cache.hits += s.cache.hits
		t.cache.misses += s.cache.misses
		t.cache.fallbacks += s.cache.fallbacks
		t.cache.errors += s.cache.errors
	}
}

// median returns the median of xs.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ok reports whether every request of every sample succeeded and every
// sample served some.
func (r *report) ok() bool {
	for _, s := range r.samples {
		if s.res.requests == 0 || s.res.errors > 0 || s.handlerErrors > 0 {
			return false
		}
	}
	return true
}

var serverTitle = map[string]string{
	kindDB:     "qsessions `db`",
	kindCached: "qsessions `cached_db`",
	kindSCS:    "scs + pgxstore",
}

var routeTitle = map[string]string{
	"read":      "read (one `Get`)",
	"write":     "write (one `Set`)",
	"untouched": "untouched (cookie sent, session unused)",
	"login":     "login, no cookie, fresh user",
	"login_cap": "login, no cookie, user at 99 sessions",
}

// write writes the section.
func (r *report) write(w io.Writer) {
	cfg := r.cfg
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("## Under concurrency\n\n")
	p("Measured by `go run ./cmd/load%s` (bench/cmd/load; `bench/run load` writes this section) on %s. Do not edit by hand: rerun it.\n\n",
		strings.TrimRight(" "+cfg.args, " "), r.env.start.UTC().Format("2006-01-02 15:04 UTC"))
	p("| setup | |\n| --- | --- |\n")
	p("| code | %s |\n", r.env.commit)
	p("| machine | %d CPUs (%s), %s %s/%s |\n", runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	p("| servers | PostgreSQL %s, memcached %s, all on loopback |\n", orDash(r.env.postgres), orDash(r.env.memcached))
	p("| load average (1/5/15 min) before / after | %s / %s |\n", r.env.loadBefore, r.env.loadEnd)
	var others []float64
	for _, s := range r.samples {
		others = append(others, s.other)
	}
	if len(others) > 0 {
		p("| other work on the machine | median %.0f%%, highest %.0f%% of all CPUs during a sample (CPU time of processes other than the harness, its servers, memcached and postgres; the figures' noise) |\n",
			100*median(others), 100*slices.Max(others))
	}
	p("| client | %d keep-alive connections (Go, raw HTTP/1.1), %d round(s) of %v per route and server, servers alternating in the order %s |\n",
		cfg.conns, cfg.rounds, cfg.duration, strings.Join(cfg.servers, ", "))
	p("| per server | %s signed-in sessions with random cookies (about 150 bytes of data); login: %s fresh users, one login each at most; login at cap: %d users holding %d live sessions (qsessions' cap: %d); %d database connections |\n",
		thousands(cfg.sessions), thousands(cfg.users), cfg.capUsers, cfg.perCap, cfg.perCap+1, cfg.pool)
	p("| database | one PostgreSQL database, a schema per server, `VACUUM ANALYZE` after the setup (the server's autovacuum: %s); qsessions: the reference ent schema, ent over database/sql and pgx's stdlib; scs: pgxstore over pgxpool |\n", orDash(r.env.autovacuum))
	if r.env.cacheMem != "" {
		p("| memcached after the setup | %s |\n", r.env.cacheMem)
	}
	p("| counted | statements and round trips (statements plus BEGIN/COMMIT) at the wire by a pgx QueryTracer in each server; row writes of the session table from `pg_stat_user_tables` (n_tup_ins + n_tup_upd + n_tup_del); server CPU from getrusage of the server process |\n\n")

	// Throughput and latency.
	p("### Requests per second and latency\n\n")
	p("req/s: the median of the rounds (lowest–highest); p50 and p99: the medians of the rounds'. `÷ scs`: req/s over scs's, and p99 over scs's.\n\n")
	p("| route |")
	for _, s := range cfg.servers {
		p(" %s |", serverTitle[s])
	}
	scsIn := slices.Contains(cfg.servers, kindSCS)
	var qs []string
	for _, s := range cfg.servers {
		if s != kindSCS && scsIn {
			qs = append(qs, s)
			p(" `%s` ÷ scs |", s)
		}
	}
	p("\n| --- |%s\n", strings.Repeat(" ---: |", len(cfg.servers)+len(qs)))
	for _, route := range cfg.routes {
		p("| %s |", routeTitle[route])
		for _, s := range cfg.servers {
			a := r.aggregate(s, route)
			if a == nil {
				p(" – |")
				continue
			}
			rng := ""
			if len(a.rates) > 1 {
				rng = fmt.Sprintf(" (%s–%s)", kilo(slices.Min(a.rates)), kilo(slices.Max(a.rates)))
			}
			p(" %s%s<br>p50 %s · p99 %s |", kilo(median(a.rates)), rng, ms(median(a.p50s)), ms(median(a.p99s)))
		}
		ref := r.aggregate(kindSCS, route)
		for _, s := range qs {
			a := r.aggregate(s, route)
			if a == nil || ref == nil {
				p(" – |")
				continue
			}
			p(" %.2f× (p99 %.2f×) |", median(a.rates)/median(ref.rates), median(a.p99s)/median(ref.p99s))
		}
		p("\n")
	}
	p("\n")

	// Costs.
	p("### Cost per request\n\n")
	p("Totals over the rounds divided by the requests. Server CPU: the server process; postgres CPU: all postgres processes (other clients of the server count too). DB time: from sending each statement to its result, the pool's connection already held, by statement. DB share of loads: cached_db loads that asked the database (misses and fallbacks over all loads, `CachedDB.Stats`).\n\n")
	p("| route | server | statements | round trips | row writes | server CPU | postgres CPU | DB time | DB share of loads | errors |\n")
	p("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |\n")
	for _, route := range cfg.routes {
		for _, s := range cfg.servers {
			a := r.aggregate(s, route)
			if a == nil {
				continue
			}
			p("| %s | %s | %s |\n", route, s, costCells(a.total))
		}
	}
	p("\n")

	// Per round.
	if cfg.rounds > 1 {
		p("Per round (req/s, p99, statements/request%s; other work on the machine):\n\n", map[bool]string{true: ", cached_db's DB share of loads", false: ""}[slices.Contains(cfg.servers, kindCached)])
		p("| route | server |")
		for i := 1; i <= cfg.rounds; i++ {
			p(" round %d |", i)
		}
		p("\n| --- | --- |%s\n", strings.Repeat(" ---: |", cfg.rounds))
		for _, route := range cfg.routes {
			for _, s := range cfg.servers {
				p("| %s | %s |", route, s)
				for _, smp := range r.samples {
					if smp.server == s && smp.route == route && smp.round >= 1 {
						n := float64(max(smp.res.requests, 1))
						p(" %s, %s, %.2f", kilo(smp.res.rate()), ms(smp.res.pct(99).Seconds()), float64(smp.statements)/n)
						if smp.cache != nil {
							p(", %.1f%%", 100*smp.cache.dbShare())
						}
						p("; %.0f%% |", 100*smp.other)
					}
				}
				p("\n")
			}
		}
		p("\n")
	}

	// Warmth.
	var warmth []sample
	for _, s := range r.samples {
		if strings.HasPrefix(s.route, "warmth/") {
			warmth = append(warmth, s)
		}
	}
	if len(warmth) > 0 {
		p("### cached_db after a write burst\n\n")
		p("After the rounds, on cached_db alone: %v of reads, a %v burst of writes (%d connections), then %d read runs of %v each, back to back.\n\n",
			cfg.duration, cfg.duration, cfg.conns, len(warmth)-2, cfg.duration)
		p("| | ")
		for _, s := range warmth {
			p("%s | ", strings.TrimPrefix(s.route, "warmth/"))
		}
		p("\n| --- |%s\n", strings.Repeat(" ---: |", len(warmth)))
		rows := []struct {
			name string
			f    func(s sample) string
		}{
			{"req/s", func(s sample) string { return kilo(s.res.rate()) }},
			{"p99", func(s sample) string { return ms(s.res.pct(99).Seconds()) }},
			{"statements per request", func(s sample) string {
				return fmt.Sprintf("%.3f", float64(s.statements)/float64(max(s.res.requests, 1)))
			}},
			{"DB share of loads", func(s sample) string {
				if s.cache == nil {
					return "–"
				}
				return fmt.Sprintf("%.1f%%", 100*s.cache.dbShare())
			}},
			{"loads: hits / misses / fallbacks", func(s sample) string {
				if s.cache == nil {
					return "–"
				}
				return fmt.Sprintf("%d / %d / %d", s.cache.hits, s.cache.misses, s.cache.fallbacks)
			}},
		}
		for _, row := range rows {
			p("| %s |", row.name)
			for _, s := range warmth {
				p(" %s |", row.f(s))
			}
			p("\n")
		}
		p("\n")
	}

	// Activity.
	var act []sample
	for _, s := range r.samples {
		if s.route == "activity" {
			act = append(act, s)
		}
	}
	if len(act) > 0 {
		p("### Activity writes\n\n")
		p("Each qsessions server's clock moved forward by `ActivityInterval` + 1 s (every session due for exactly one `last_activity` write), then %v of reads over the %s sessions from %d connections. Target: at most one write per session, %s row writes.\n\n",
			cfg.activity, thousands(cfg.sessions), cfg.conns, thousands(cfg.sessions))
		p("| server | reads | req/s | row writes | per session | statements per read | verdict |\n")
		p("| --- | ---: | ---: | ---: | ---: | ---: | --- |\n")
		for _, s := range act {
			verdict := ""
			switch {
			case s.server == kindSCS:
				verdict = "scs writes on reads only with an IdleTimeout (then on every request); none is set"
			case s.rowWrites <= int64(cfg.sessions):
				verdict = "**met**"
			default:
				verdict = fmt.Sprintf("**MISSED** by %d (%.1f%%)", s.rowWrites-int64(cfg.sessions), 100*float64(s.rowWrites-int64(cfg.sessions))/float64(cfg.sessions))
			}
			p("| %s | %s | %s | %s | %.3f | %.3f | %s |\n", s.server, thousands(s.res.requests), kilo(s.res.rate()),
				thousands(int(s.rowWrites)), float64(s.rowWrites)/float64(cfg.sessions),
				float64(s.statements)/float64(max(s.res.requests, 1)), verdict)
		}
		p("\n")
	}

	// Logins.
	if len(r.traces) > 0 {
		p("### Round trips of one login\n\n")
		p("One request on an idle server, every statement it sent to Postgres (BEGIN/COMMIT included), in order: with no cookie (a fresh user, a user at the cap), and with the cookie of an anonymous session that holds the app's values (a visitor who put something in the session before signing in; the load, then the login).\n\n")
		p("| server | login, fresh user | login, user at the cap | login of a session with a row |\n| --- | --- | --- | --- |\n")
		for _, s := range cfg.servers {
			t := r.traces[s]
			p("| %s | %s | %s | %s |\n", s, traceCell(t["login"]), traceCell(t["login_cap"]), traceCell(t["login_row"]))
		}
		p("\n")
	}
	if !r.ok() {
		p("**Some requests failed**: see the errors column; the console output of the run has the servers' messages.\n\n")
	}
}

// costCells formats the per-request costs of a total.
func costCells(t sample) string {
	n := float64(max(t.res.requests, 1))
	share := ""
	if t.cache != nil && t.cache.hits+t.cache.misses+t.cache.fallbacks > 0 {
		share = fmt.Sprintf("%.1f%%", 100*t.cache.dbShare())
	}
	var parts []string
	var total time.Duration
	for i, d := range t.dbWait {
		total += d
		if d > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", statementKinds[i], us(d.Seconds()/n)))
		}
	}
	wait := us(total.Seconds() / n)
	if len(parts) > 1 {
		wait += " (" + strings.Join(parts, ", ") + ")"
	}
	return fmt.Sprintf("%.3f | %.3f | %.3f | %s | %s | %s | %s | %d",
		float64(t.statements)/n, float64(t.statements+t.txControl)/n, float64(t.rowWrites)/n,
		us(t.cpu.Seconds()/n), us(t.pgCPU.Seconds()/n), wait, orDash(share), t.res.errors)
}

// traceCell lists statements for a table cell.
func traceCell(stmts []string) string {
	if len(stmts) == 0 {
		return "–"
	}
	parts := make([]string, len(stmts))
	for i, s := range stmts {
		s = strings.Join(strings.Fields(s), " ")
		if len(s) > 90 {
			s = s[:87] + "…"
		}
		s = strings.ReplaceAll(s, "|", "\\|")
		s = strings.ReplaceAll(s, "`", "'")
		parts[i] = fmt.Sprintf("%d. `%s`", i+1, s)
	}
	unit := "round trips"
	if len(stmts) == 1 {
		unit = "round trip"
	}
	return fmt.Sprintf("**%d %s**<br>%s", len(stmts), unit, strings.Join(parts, "<br>"))
}

func kilo(x float64) string {
	if x >= 1000 {
		return fmt.Sprintf("%.1fk", x/1000)
	}
	return fmt.Sprintf("%.0f", x)
}

func ms(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	if d >= 100*time.Millisecond {
		return fmt.Sprintf("%.0f ms", sec*1000)
	}
	if d >= time.Millisecond {
		return fmt.Sprintf("%.1f ms", sec*1000)
	}
	return fmt.Sprintf("%.2f ms", sec*1000)
}

func us(sec float64) string { return fmt.Sprintf("%.0f µs", sec*1e6) }

func thousands(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// cpuModel returns the CPU's model name from /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return "?"
}
