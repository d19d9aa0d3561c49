// Command report reads `go test -bench` output (of the root module's
// BenchmarkSessions and of bench/'s BenchmarkSCS and BenchmarkFloor) and
// prints a Markdown table of the median of each figure with its ratio to its
// floor and to scs, then the targets, each met or missed.
//
//	go run ./cmd/report qsessions.txt bench.txt
//
// Floors: a db figure is compared with the bare point SELECT of the same
// dialect, a cached_db figure with the bare memcached Get; a request figure
// is also compared with the same request through scs on the same dialect.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// sample is one benchmark result line; queries is the root benchmarks'
// queries/op metric (database statements per operation).
type sample struct {
	ns, bytes, allocs, queries float64
	// extra holds the other metrics a benchmark reports (BenchmarkCachedHit's
	// hit-p50-ns, get-p50-ns, floor-p50-ns, hit/get, hit/floor).
	extra map[string]float64
}

// results maps a benchmark name (without "Benchmark" and the -GOMAXPROCS
// suffix) to its samples, and keeps the order of first appearance.
type results struct {
	names []string
	by    map[string][]sample
}

var (
	lineRE  = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)
	fieldRE = regexp.MustCompile(`([0-9.e+]+) ([A-Za-z0-9/_-]+)`)
)

func (r *results) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		s := sample{extra: map[string]float64{}}
		for _, f := range fieldRE.FindAllStringSubmatch(m[2], -1) {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return err
			}
			switch f[2] {
			case "ns/op":
				s.ns = v
			case "B/op":
				s.bytes = v
			case "allocs/op":
				s.allocs = v
			case "queries/op":
				s.queries = v
			default:
				s.extra[f[2]] = v
			}
		}
		if _, ok := r.by[m[1]]; !ok {
			r.names = append(r.names, m[1])
		}
		r.by[m[1]] = append(r.by[m[1]], s)
	}
	return sc.Err()
}

// median returns the median sample of name (each field separately) and
// whether there is one.
func (r *results) median(name string) (sample, bool) {
	ss := r.by[name]
	if len(ss) == 0 {
		return sample{}, false
	}
	med := func(f func(sample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	out := sample{
		ns:      med(func(s sample) float64 { return s.ns }),
		bytes:   med(func(s sample) float64 { return s.bytes }),
		allocs:  med(func(s sample) float64 { return s.allocs }),
		queries: med(func(s sample) float64 { return s.queries }),
		extra:   map[string]float64{},
	}
	for k := range ss[0].extra {
		out.extra[k] = med(func(s sample) float64 { return s.extra[k] })
	}
	return out, true
}

// dur formats nanoseconds for people.
func dur(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

// ratio formats a/b, or "—" when b is missing.
func (r *results) ratio(a sample, other string) string {
	o, ok := r.median(other)
	if !ok || o.ns == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a.ns/o.ns)
}

// floorOf names the floor of a Sessions or SCS figure, or "".
func floorOf(name string) string {
	p := strings.Split(name, "/")
	switch {
	case p[0] == "Sessions" && len(p) == 4:
		if p[3] != "Load" && p[3] != "BackendLoad" && p[3] != "RequestRead" {
			return ""
		}
		if p[2] == "cached_db" {
			return "Floor/memcached/Get"
		}
		return "Floor/" + p[1] + "/PointSelect"
	case p[0] == "SCS" && len(p) == 3 && p[2] == "RequestRead":
		return "Floor/" + p[1] + "/PointSelect"
	}
	return ""
}

// scsOf names the scs figure a Sessions request figure compares with, or "".
func scsOf(name string) string {
	p := strings.Split(name, "/")
	if p[0] == "Sessions" && len(p) == 4 && strings.HasPrefix(p[3], "Request") {
		return "SCS/" + p[1] + "/" + p[3]
	}
	return ""
}

func main() {
	r := &results{by: map[string][]sample{}}
	for _, path := range os.Args[1:] {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(1)
		}
		err = r.read(f)
		f.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, "report:", path+":", err)
			os.Exit(1)
		}
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()

	fmt.Fprintln(w, "| benchmark | median time/op | B/op | allocs/op | queries/op | floor | × floor | × scs |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
	for _, name := range r.names {
		if strings.HasPrefix(name, "CachedHit/") {
			continue // its own table below
		}
		m, _ := r.median(name)
		floor, xf, xs := "", "", ""
		if f := floorOf(name); f != "" {
			floor, xf = f, r.ratio(m, f)
		}
		if s := scsOf(name); s != "" {
			xs = r.ratio(m, s)
		}
		q := ""
		if strings.HasPrefix(name, "Sessions/") {
			q = strconv.FormatFloat(m.queries, 'f', -1, 64)
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %.0f | %s | %s | %s | %s |\n", name, dur(m.ns), m.bytes, m.allocs, q, floor, xf, xs)
	}

	// The MAC's cost: BenchmarkCachedHit's paired timings.
	var hitRows []string
	for _, name := range r.names {
		if strings.HasPrefix(name, "CachedHit/") {
			hitRows = append(hitRows, name)
		}
	}
	if len(hitRows) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Cache hits with and without `CachedOptions.Keys` (`BenchmarkCachedHit`: each operation is a `cached_db` hit, a bare `Get` of the same entry through the same `backend.Memcache` client, and a plain gomemcache `Get` of 200 bytes like `Floor/memcached/Get`, in rotating order on one goroutine; medians of the three timings per run, then the median over runs):")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| benchmark | entry bytes | hit (median) | bare Get, same entry and client | hit ÷ bare Get | plain gomemcache Get, 200 B | hit ÷ plain Get |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, name := range hitRows {
			m, _ := r.median(name)
			fmt.Fprintf(w, "| %s | %.0f | %s | %s | %.2f× | %s | %.2f× |\n", name, m.extra["entry-bytes"],
				dur(m.extra["hit-p50-ns"]), dur(m.extra["get-p50-ns"]), m.extra["hit/get"], dur(m.extra["floor-p50-ns"]), m.extra["hit/floor"])
		}
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "### Targets")
	fmt.Fprintln(w)
	target := func(what string, ok bool, detail string) {
		mark := "MISSED"
		if ok {
			mark = "met"
		}
		fmt.Fprintf(w, "- **%s** %s: %s\n", mark, what, detail)
	}
	if k, ok := r.median("CachedHit/keys"); ok {
		target("cached_db hit with Keys (MAC) ≤ 1.15× a bare memcached get of the same entry, timed alongside", k.extra["hit/get"] <= 1.15,
			fmt.Sprintf("%s vs %s = %.2f×", dur(k.extra["hit-p50-ns"]), dur(k.extra["get-p50-ns"]), k.extra["hit/get"]))
		if n, ok := r.median("CachedHit/no_keys"); ok {
			fmt.Fprintf(w, "- the MAC's share: a hit is %.2f× its bare get with Keys, %.2f× without (BenchmarkCacheEntry in backend/ has the MAC check alone)\n",
				k.extra["hit/get"], n.extra["hit/get"])
		}
	}
	for _, d := range []string{"sqlite", "postgres", "mysql"} {
		if m, ok := r.median("Sessions/" + d + "/cached_db/BackendLoad"); ok {
			if f, ok := r.median("Floor/memcached/Get"); ok {
				x := m.ns / f.ns
				target("cached_db hit ≤ 1.15× memcached Get ("+d+")", x <= 1.15,
					fmt.Sprintf("%s vs %s = %.2f×", dur(m.ns), dur(f.ns), x))
			}
		}
		if m, ok := r.median("Sessions/" + d + "/db/BackendLoad"); ok {
			if f, ok := r.median("Floor/" + d + "/PointSelect"); ok {
				x := m.ns / f.ns
				target("db load ≤ 1.15× point SELECT ("+d+")", x <= 1.15,
					fmt.Sprintf("%s vs %s = %.2f×", dur(m.ns), dur(f.ns), x))
			}
		}
		for _, kind := range []string{"db", "cached_db"} {
			if m, ok := r.median("Sessions/" + d + "/" + kind + "/RequestRead"); ok {
				if s, ok := r.median("SCS/" + d + "/RequestRead"); ok {
					target("read-only request ≤ scs ("+d+", "+kind+")", m.ns <= s.ns,
						fmt.Sprintf("%s vs %s = %.2f×", dur(m.ns), dur(s.ns), m.ns/s.ns))
				}
			}
			if m, ok := r.median("Sessions/" + d + "/" + kind + "/RequestUntouched"); ok {
				target("untouched request < 2 µs with a handful (≤ 5) of allocations ("+d+", "+kind+")",
					m.ns < 2000 && m.allocs <= 5,
					fmt.Sprintf("%s, %.0f allocs/op", dur(m.ns), m.allocs))
			}
		}
	}
}
