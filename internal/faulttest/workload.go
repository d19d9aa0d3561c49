package faulttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// The demo's routes the workload uses, as they are named in its figures.
const (
	OpLogin    = "POST /login"
	OpLogout   = "POST /logout"
	OpAPI      = "GET /api/sessions"
	OpPage     = "GET /sessions"
	OpRevoke   = "POST /sessions/{id}/revoke"
	cookieName = "sessionid" // the middleware's default, which the demo keeps
)

// Phase is when a request was made.
type Phase int

// The phases of a run.
const (
	PhaseWarmup Phase = iota // the clients sign in before the clock starts
	PhaseRun                 // the timed run; the fault falls into it
	PhaseCheck               // the check after the run and the recovery
)

// Request is one request the workload made and what it found.
type Request struct {
	Client  int
	Phase   Phase
	Op      string
	Start   time.Time
	Latency time.Duration
	// Status is the HTTP status, 0 when no answer came (transport error or
	// the client's timeout; Err says which).
	Status int
	Err    string
	// Body is the start of a 5xx answer's body, to tell error classes apart.
	Body string
	// WronglySignedOut: the session was live (signed in, never ended by
	// the client) and the answer was "signed out": 401, or a redirect to
	// the login page.
	WronglySignedOut bool
	// RevokedAccepted: the session's revoke or logout had returned before
	// this request began, and the answer served it as signed in.
	RevokedAccepted bool
	// CookieDeleted: the answer deleted a live session's cookie.
	CookieDeleted bool
	// Anomaly describes an answer the workload did not expect, if any.
	Anomaly string
}

// End is when the answer (or the error) came.
func (r *Request) End() time.Time { return r.Start.Add(r.Latency) }

// sessState is what a client knows of a session.
type sessState int

const (
	live      sessState = iota // signed in; nobody ended it
	ended                      // its revoke or logout returned success
	uncertain                  // a revoke or logout failed: it may or may not have ended
)

// session is one signed-in cookie a client holds.
type session struct {
	token   string
	id      string // public id, learnt from /api/sessions
	state   sessState
	endedAt time.Time
	keep    bool // never revoke it (a revoke answered 404 for it)
}

// WorkloadOptions configure a Workload.
type WorkloadOptions struct {
	// BaseURL is the demo's "http://host:port".
	BaseURL string
	// Accounts are the demo's users; clients take them in turn.
	Accounts []DemoAccount
	// Clients is the number of concurrent clients (browsers).
	Clients int
	// Think is the pause between two requests of a client.
	Think time.Duration
	// Timeout bounds each request on the client side (it should exceed
	// any fault, so that a hung request is measured, not cut).
	Timeout time.Duration
	// Seed makes the clients' choices repeatable.
	Seed uint64
}

// Workload is the demo's users: each client signs in, reads its sessions
// (JSON and page), signs other devices of its user in and revokes them,
// signs out and in again, and probes cookies it ended, recording what each
// request found.
type Workload struct {
	opts    WorkloadOptions
	hc      *http.Client
	mu      sync.Mutex
	reqs    []Request
	clients []*client
}

// NewWorkload returns a workload for opts.
func NewWorkload(opts WorkloadOptions) *Workload {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        4 * opts.Clients,
		MaxIdleConnsPerHost: 4 * opts.Clients,
		IdleConnTimeout:     time.Minute,
	}
	w := &Workload{opts: opts, hc: &http.Client{
		Transport:     tr,
		Timeout:       opts.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	for i := range opts.Clients {
		w.clients = append(w.clients, &client{
			w: w, n: i, acct: opts.Accounts[i%len(opts.Accounts)],
			rng: rand.New(rand.NewPCG(opts.Seed, uint64(i))),
		})
	}
	return w
}

// Close closes idle connections.
func (w *Workload) Close() { w.hc.CloseIdleConnections() }

// Requests returns every request made so far.
func (w *Workload) Requests() []Request {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Request(nil), w.reqs...)
}

// Warmup signs every client in, retrying for up to within.
func (w *Workload) Warmup(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	var wg sync.WaitGroup
	errs := make([]error, len(w.clients))
	for i, c := range w.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.main == nil {
				if c.main = c.login(PhaseWarmup); c.main != nil {
					c.read(c.main, OpAPI, PhaseWarmup)
					return
				}
				if time.Now().After(deadline) || ctx.Err() != nil {
					errs[i] = fmt.Errorf("client %d could not sign in as %s within %s", c.n, c.acct.Name, within)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Run runs the clients until the run has lasted d (or ctx ends); requests
// in flight then are waited for (each is bounded by Timeout).
func (w *Workload) Run(ctx context.Context, d time.Duration) {
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for _, c := range w.clients {
		wg.Add(1)
		go func() { defer wg.Done(); c.run(ctx, end) }()
	}
	wg.Wait()
}

// CheckResult is what the check after the run found.
type CheckResult struct {
	// Recovered is how long after the check began a live session was
	// served again; Unrecovered is set when none was within the limit.
	Recovered   time.Duration
	Unrecovered bool
	// Probes are the answers (status, 0 for none) to the probes until the
	// first 200, the first 20 of them.
	Probes []int
	// Live sessions checked; Lost: answered "signed out"; Unverified: no
	// clear answer (5xx, none) after retries.
	Live, Lost, Unverified int
	// Ended sessions probed; Accepted: served as signed in.
	Ended, Accepted int
	// Uncertain sessions (a failed revoke or logout) are not checked.
	Uncertain int
}

// Check waits (up to within) until the demo serves a live session again,
// then asks about every session the clients hold: each live one must be
// signed in, each ended one signed out.
func (w *Workload) Check(within time.Duration) CheckResult {
	var res CheckResult
	var lives, ends []*session
	var byClient = map[*session]*client{}
	for _, c := range w.clients {
		for _, s := range c.all() {
			byClient[s] = c
			switch s.state {
			case live:
				lives = append(lives, s)
			case ended:
				ends = append(ends, s)
			default:
				res.Uncertain++
			}
		}
	}
	res.Live, res.Ended = len(lives), len(ends)
	start := time.Now()
	if len(lives) > 0 {
		for i := 0; ; i++ {
			s := lives[i%len(lives)]
			r, a := byClient[s].do(OpAPI, http.MethodGet, "/api/sessions", s, nil, PhaseCheck)
			byClient[s].record(r)
			if len(res.Probes) < 20 {
				res.Probes = append(res.Probes, r.Status)
			}
			if a.status == http.StatusOK {
				res.Recovered = time.Since(start)
				break
			}
			if time.Since(start) > within {
				res.Unrecovered = true
				res.Recovered = time.Since(start)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Then each session, a few tries each for a clear answer.
	type verdict struct{ lost, unverified, accepted bool }
	verdicts := make([]verdict, len(lives)+len(ends))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, s := range append(append([]*session(nil), lives...), ends...) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c := byClient[s]
			for try := 0; ; try++ {
				r := c.read(s, OpAPI, PhaseCheck)
				switch {
				case s.state == ended:
					verdicts[i].accepted = r.RevokedAccepted
					if r.Status != 0 && r.Status < 500 || try >= 4 {
						return
					}
				case r.Status == http.StatusOK:
					return
				case try >= 4:
					if r.WronglySignedOut {
						verdicts[i].lost = true
					} else {
						verdicts[i].unverified = true
					}
					return
				}
				time.Sleep(300 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	for _, v := range verdicts {
		if v.lost {
			res.Lost++
		}
		if v.unverified {
			res.Unverified++
		}
		if v.accepted {
			res.Accepted++
		}
	}
	return res
}

// client is one browser: a main session and perhaps other devices of the
// same user (spares) that it revokes.
type client struct {
	w    *Workload
	n    int
	acct DemoAccount
	rng  *rand.Rand

	mu     sync.Mutex // guards the lists against Check's reading
	failed bool       // the last request failed (5xx, none, or wrongly signed out)
	main   *session
	spares []*session
	ended  []*session
	lost   []*session // uncertain ones, kept only to be counted
}

// all returns every session the client holds or held.
func (c *client) all() []*session {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*session
	if c.main != nil {
		out = append(out, c.main)
	}
	out = append(out, c.spares...)
	out = append(out, c.ended...)
	return append(out, c.lost...)
}

// answer is what came back.
type answer struct {
	status  int
	loc     string
	body    []byte
	token   string // a new value of the session cookie, if set
	deleted bool   // the session cookie was deleted
}

// do makes one request with s's cookie (none when s is nil) and records
// it; the caller's checks go into the returned *Request before record.
func (c *client) do(op, method, path string, s *session, form url.Values, ph Phase) (*Request, answer) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.w.opts.BaseURL+path, body)
	req.Header.Set("User-Agent", fmt.Sprintf("Mozilla/5.0 (X11; Linux x86_64) faulttest/1.0 client/%d", c.n))
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if s != nil {
		req.AddCookie(&http.Cookie{Name: cookieName, Value: s.token})
	}
	r := &Request{Client: c.n, Phase: ph, Op: op, Start: time.Now()}
	var a answer
	res, err := c.w.hc.Do(req)
	if err == nil {
		a.status, a.loc = res.StatusCode, res.Header.Get("Location")
		a.body, err = io.ReadAll(io.LimitReader(res.Body, 64<<10))
		res.Body.Close()
		for _, ck := range res.Cookies() {
			if ck.Name == cookieName {
				if ck.MaxAge < 0 || ck.Value == "" {
					a.deleted = true
				} else {
					a.token = ck.Value
				}
			}
		}
	}
	r.Latency = time.Since(r.Start)
	if err != nil {
		r.Status, r.Err = 0, err.Error()
		a = answer{}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			r.Err = "timeout after " + r.Latency.Round(time.Millisecond).String()
		}
	} else {
		r.Status = a.status
		if a.status >= 500 {
			r.Body = bodySummary(a.body)
		}
	}
	if s != nil && s.state == live {
		if a.deleted && op != OpLogout { // a logout deletes it by design
			r.CookieDeleted = true
		} else if a.token != "" && a.token != s.token && op != OpLogin {
			s.token = a.token // the app cycled the key: follow it, as a browser does
		}
	}
	return r, a
}

// bodySummary returns the start of an error answer's body on one line: an
// HTML page's title, or the text with its white space folded.
func bodySummary(b []byte) string {
	if bytes.Contains(b, []byte("<html")) || bytes.Contains(b, []byte("<!DOCTYPE")) {
		return htmlTitle(b)
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// htmlTitle returns the <title> (or the first heading) of an HTML page.
func htmlTitle(b []byte) string {
	for _, tag := range []string{"title", "h1"} {
		i := bytes.Index(b, []byte("<"+tag))
		if i < 0 {
			continue
		}
		j := bytes.IndexByte(b[i:], '>')
		k := bytes.Index(b[i:], []byte("</"+tag))
		if j > 0 && k > j {
			return "html: " + strings.TrimSpace(string(b[i+j+1:i+k]))
		}
	}
	return "html page"
}

func (c *client) record(r *Request) {
	c.failed = r.Status == 0 || r.Status >= 500 || r.WronglySignedOut
	c.w.mu.Lock()
	c.w.reqs = append(c.w.reqs, *r)
	c.w.mu.Unlock()
}

// signedOut reports whether a is the demo's "you are not signed in".
func signedOut(op string, a answer) bool {
	switch op {
	case OpAPI:
		return a.status == http.StatusUnauthorized
	default:
		return a.status == http.StatusSeeOther && strings.HasPrefix(a.loc, "/login")
	}
}

// login signs a new session in; nil when it failed.
func (c *client) login(ph Phase) *session {
	form := url.Values{"username": {c.acct.Name}, "password": {c.acct.Password}}
	r, a := c.do(OpLogin, http.MethodPost, "/login", nil, form, ph)
	var s *session
	switch {
	case a.status == http.StatusSeeOther && !strings.HasPrefix(a.loc, "/login") && a.token != "":
		s = &session{token: a.token}
	case a.status == http.StatusSeeOther || a.status == http.StatusOK || a.status == http.StatusUnauthorized:
		r.Anomaly = fmt.Sprintf("login answered %d (Location %q) without a session", a.status, a.loc)
	}
	c.record(r)
	return s
}

// read asks op with s's cookie and judges the answer by s's state.
func (c *client) read(s *session, op string, ph Phase) *Request {
	path := "/api/sessions"
	if op == OpPage {
		path = "/sessions"
	}
	r, a := c.do(op, http.MethodGet, path, s, nil, ph)
	switch {
	case signedOut(op, a):
		r.WronglySignedOut = s.state == live
	case a.status == http.StatusOK:
		if s.state == ended && !s.endedAt.After(r.Start) {
			r.RevokedAccepted = true
		}
		if op == OpAPI && s.id == "" {
			var v struct {
				Sessions []struct {
					ID      string `json:"id"`
					Current bool   `json:"current"`
				} `json:"sessions"`
			}
			if json.Unmarshal(a.body, &v) == nil {
				for _, x := range v.Sessions {
					if x.Current {
						s.id = x.ID
					}
				}
			}
		}
	}
	c.record(r)
	return r
}

// end marks s ended now and files it.
func (c *client) end(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.state, s.endedAt = ended, time.Now()
	c.spares = remove(c.spares, s)
	if c.main == s {
		c.main = nil
	}
	c.ended = append(c.ended, s)
}

// drop marks s uncertain and forgets it.
func (c *client) drop(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.state = uncertain
	c.spares = remove(c.spares, s)
	if c.main == s {
		c.main = nil
	}
	c.lost = append(c.lost, s)
}

func remove(list []*session, s *session) []*session {
	for i, x := range list {
		if x == s {
			return append(list[:i:i], list[i+1:]...)
		}
	}
	return list
}

// run is the client's loop until end.
func (c *client) run(ctx context.Context, end time.Time) {
	for time.Now().Before(end) && ctx.Err() == nil {
		if c.main == nil {
			s := c.login(PhaseRun)
			if s == nil {
				time.Sleep(250*time.Millisecond + c.w.opts.Think) // a user trying again
				continue
			}
			c.mu.Lock()
			c.main = s
			c.mu.Unlock()
		}
		p := c.rng.IntN(100)
		if c.failed {
			// A user whose page failed reloads it rather than moving on to
			// sign out or revoke: reads go on through a fault.
			p %= 70
		}
		switch {
		case p < 55:
			c.read(c.main, OpAPI, PhaseRun)
		case p < 70:
			c.read(c.main, OpPage, PhaseRun)
		case p < 75:
			if len(c.spares) > 0 {
				c.read(c.spares[c.rng.IntN(len(c.spares))], OpAPI, PhaseRun)
			} else {
				c.read(c.main, OpAPI, PhaseRun)
			}
		case p < 85:
			c.revokeCycle()
		case p < 90:
			c.logoutCycle()
		default:
			if len(c.ended) > 0 {
				c.read(c.ended[c.rng.IntN(len(c.ended))], OpAPI, PhaseRun)
			} else {
				c.read(c.main, OpPage, PhaseRun)
			}
		}
		if c.w.opts.Think > 0 {
			time.Sleep(c.w.opts.Think)
		}
	}
}

// revokeCycle revokes another device of the client's user from the main
// session (signing one in first when there is none), then checks that the
// revoked cookie is refused at once.
func (c *client) revokeCycle() {
	var sp *session
	for _, s := range c.spares {
		if s.id != "" && !s.keep {
			sp = s
			break
		}
	}
	if sp == nil {
		if len(c.spares) >= 3 {
			c.read(c.spares[0], OpAPI, PhaseRun) // learn an id
			return
		}
		if sp = c.login(PhaseRun); sp == nil {
			return
		}
		c.mu.Lock()
		c.spares = append(c.spares, sp)
		c.mu.Unlock()
		if c.read(sp, OpAPI, PhaseRun); sp.id == "" {
			return
		}
	}
	r, a := c.do(OpRevoke, http.MethodPost, "/sessions/"+sp.id+"/revoke", c.main, nil, PhaseRun)
	switch {
	case a.status == http.StatusSeeOther && strings.HasPrefix(a.loc, "/sessions"):
		c.record(r)
		c.end(sp)
		c.read(sp, OpAPI, PhaseRun) // must be signed out now
	case signedOut(OpRevoke, a):
		r.WronglySignedOut = c.main.state == live
		c.record(r)
	case a.status == http.StatusNotFound:
		// The demo does not know a session the client holds as live; the
		// check after the run tells whether it is lost.
		r.Anomaly = "a live session's revoke answered 404"
		sp.keep = true
		c.record(r)
	default: // 5xx, no answer: it may or may not have ended
		c.record(r)
		c.drop(sp)
	}
}

// logoutCycle signs the main session out, checks that its cookie is
// refused at once, and leaves the next loop to sign in again.
func (c *client) logoutCycle() {
	s := c.main
	r, a := c.do(OpLogout, http.MethodPost, "/logout", s, nil, PhaseRun)
	c.record(r)
	if a.status == http.StatusSeeOther && strings.HasPrefix(a.loc, "/login") {
		c.end(s)
		c.read(s, OpAPI, PhaseRun)
		return
	}
	c.drop(s)
}

// LatencyQuantile returns the q-quantile (0..1) of the latencies of reqs.
func LatencyQuantile(reqs []Request, q float64) time.Duration {
	if len(reqs) == 0 {
		return 0
	}
	ls := make([]time.Duration, len(reqs))
	for i, r := range reqs {
		ls[i] = r.Latency
	}
	slices.Sort(ls)
	i := int(q * float64(len(ls)-1))
	return ls[i]
}
