package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// loadSpec is one run of the load client: conns keep-alive connections,
// each sending GET path as fast as its answers come back, for duration.
// With tokens, each request carries the cookie of a token picked at random
// (so concurrent requests of one session happen, as from a browser's tabs);
// without, no cookie.
type loadSpec struct {
	addr     string
	path     string
	cookie   string
	tokens   []string
	conns    int
	duration time.Duration
}

// loadResult is what a run measured.
type loadResult struct {
	requests int
	errors   int // transport errors and answers other than 200
	status   map[int]int
	elapsed  time.Duration
	lat      []time.Duration // sorted
}

// rate returns requests per second.
func (r loadResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests) / r.elapsed.Seconds()
}

// pct returns the p-th percentile latency (0 < p <= 100).
func (r loadResult) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat))*p/100+0.5) - 1
	return r.lat[min(max(i, 0), len(r.lat)-1)]
}

// runLoad drives spec. The client is a minimal HTTP/1.1 client over raw
// connections (a prepared request, a response parser that only looks for
// the status, Content-Length, chunked bodies and Connection: close), so
// that it costs the machine little more than wrk would: the servers and
// the database share its CPUs.
func runLoad(spec loadSpec) loadResult {
	type worker struct {
		n, errs int
		status  map[int]int
		lat     []time.Duration
	}
	ws := make([]*worker, spec.conns)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(spec.duration)
	for i := range ws {
		w := &worker{status: map[int]int{}, lat: make([]time.Duration, 0, 4096)}
		ws[i] = w
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
			var c *clientConn
			defer func() {
				if c != nil {
					c.close()
				}
			}()
			var req []byte
			for time.Now().Before(deadline) {
				if c == nil {
					var err error
					if c, err = dial(spec.addr); err != nil {
						w.errs++
						time.Sleep(10 * time.Millisecond)
						continue
					}
				}
				token := ""
				if len(spec.tokens) > 0 {
					token = spec.tokens[rng.IntN(len(spec.tokens))]
				}
				req = buildRequest(req[:0], spec.path, spec.cookie, token)
				t0 := time.Now()
				code, keep, err := c.do(req)
				d := time.Since(t0)
				if err != nil {
					w.errs++
					c.close()
					c = nil
					continue
				}
				w.n++
				w.lat = append(w.lat, d)
				w.status[code]++
				if code != 200 {
					w.errs++
				}
				if !keep {
					c.close()
					c = nil
				}
			}
		}(uint64(i))
	}
	wg.Wait()
	res := loadResult{status: map[int]int{}, elapsed: time.Since(start)}
	for _, w := range ws {
		res.requests += w.n
		res.errors += w.errs
		for k, v := range w.status {
			res.status[k] += v
		}
		res.lat = append(res.lat, w.lat...)
	}
	slices.Sort(res.lat)
	return res
}

// buildRequest appends a GET request for path with the cookie, if any.
func buildRequest(b []byte, path, cookie, token string) []byte {
	b = append(b, "GET "...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: load\r\nUser-Agent: "...)
	b = append(b, benchUA...)
	if token != "" {
		b = append(b, "\r\nCookie: "...)
		b = append(b, cookie...)
		b = append(b, '=')
		b = append(b, token...)
	}
	return append(b, "\r\n\r\n"...)
}

// clientConn is one keep-alive connection.
type clientConn struct {
	c  net.Conn
	br *bufio.Reader
}

func dial(addr string) (*clientConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &clientConn{c: c, br: bufio.NewReaderSize(c, 16<<10)}, nil
}

func (c *clientConn) close() { c.c.Close() }

// do sends req and reads the response; keep reports whether the
// connection can be reused.
func (c *clientConn) do(req []byte) (code int, keep bool, err error) {
	_ = c.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.c.Write(req); err != nil {
		return 0, false, err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	if code, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	length, chunked, keep := -1, false, true
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		if len(line) <= 2 {
			break
		}
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			continue
		}
		name, value := line[:i], bytes.TrimSpace(line[i+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, false, err
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		err = c.discardChunked()
	case length >= 0:
		_, err = c.br.Discard(length)
	default:
		_, err = io.Copy(io.Discard, c.br)
		keep = false
	}
	return code, keep && err == nil, err
}

// discardChunked reads a chunked body and its trailer.
func (c *clientConn) discardChunked() error {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		sz := bytes.TrimSpace(line)
		if i := bytes.IndexByte(sz, ';'); i >= 0 {
			sz = sz[:i]
		}
		n, err := strconv.ParseInt(string(sz), 16, 64)
		if err != nil {
			return err
		}
		if n == 0 {
			for {
				line, err := c.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(line) <= 2 {
					return nil
				}
			}
		}
		if _, err := c.br.Discard(int(n) + 2); err != nil {
			return err
		}
		if n < 0 {
			return errors.New("negative chunk size")
		}
	}
}
