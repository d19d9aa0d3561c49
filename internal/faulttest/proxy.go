package faulttest

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is a TCP proxy on a loopback port in front of one upstream address
// (a private database server). Its faults:
//
//   - Silence: no byte is forwarded in either direction, and connections
//     accepted meanwhile are not dialled upstream, until Resume. Connections
//     stay open and nothing is answered, like a network that drops every
//     packet; what was held back flows once it ends, as after a partition.
//   - Cut: every open connection is closed at once (both sides).
//   - Refuse / Accept: the listener is closed (new connections are refused,
//     as by a server that is down) and opened again on the same port.
//
// It counts the connections it holds open: with one client behind it, that
// is the number of database connections the client holds. Safe for
// concurrent use.
type Proxy struct {
	// Addr is "127.0.0.1:port"; it stays the same across Refuse and Accept.
	Addr     string
	upstream string

	mu     sync.Mutex
	ln     net.Listener
	conns  map[*pipe]struct{}
	gate   chan struct{} // closed while forwarding; replaced by an open one while silent
	closed bool
	wg     sync.WaitGroup

	open    atomic.Int64
	maxOpen atomic.Int64
	total   atomic.Int64
	dialErr atomic.Int64
}

// pipe is one proxied connection.
type pipe struct {
	client      net.Conn
	server      net.Conn // nil until dialled; guarded by Proxy.mu
	stop        chan struct{}
	once        sync.Once
	confirmOnce sync.Once
	uncounted   atomic.Bool // a PostgreSQL cancel request: not counted
	p           *Proxy
}

// NewProxy listens on a free loopback port and forwards each connection to
// upstream ("host:port"). Close it when done.
func NewProxy(upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	gate := make(chan struct{})
	close(gate)
	p := &Proxy{Addr: ln.Addr().String(), upstream: upstream, ln: ln, conns: map[*pipe]struct{}{}, gate: gate}
	p.wg.Add(1)
	go p.serve(ln)
	return p, nil
}

func (p *Proxy) serve(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond) // e.g. EMFILE: do not spin
			continue
		}
		p.wg.Add(1)
		go p.handle(c)
	}
}

// waitGate returns true once the proxy forwards (at once when it is not
// silent), or false when stop was closed meanwhile.
func (p *Proxy) waitGate(stop <-chan struct{}) bool {
	p.mu.Lock()
	g := p.gate
	p.mu.Unlock()
	select {
	case <-g:
		return true
	case <-stop:
		return false
	}
}

func (p *Proxy) handle(client net.Conn) {
	defer p.wg.Done()
	pp := &pipe{client: client, stop: make(chan struct{}), p: p}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		client.Close()
		return
	}
	p.conns[pp] = struct{}{}
	p.mu.Unlock()
	p.open.Add(1)
	p.total.Add(1)
	defer pp.close()
	// The client side is read at once, silent or not: its first bytes tell
	// a PostgreSQL cancel request (a short-lived side connection, not one of
	// the pool's), and its end closes the pipe even while the proxy holds
	// everything back (a client that gave up holds no connection).
	fromClient := make(chan []byte, 64)
	clientDone := make(chan struct{})
	go func() {
		defer func() {
			if p.silent() {
				pp.close() // the client is gone; nothing held back matters
			}
		}()
		defer close(clientDone)
		defer close(fromClient)
		first := true
		for {
			buf := make([]byte, 32<<10)
			n, err := client.Read(buf)
			if n > 0 {
				if first {
					first = false
					if isCancelRequest(buf[:n]) {
						pp.uncount()
					} else {
						pp.confirm()
					}
				}
				select {
				case fromClient <- buf[:n]:
				case <-pp.stop:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	if !p.waitGateOr(pp.stop, clientDone) {
		return
	}
	server, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
	if err != nil {
		// The server is down: reset the client's connection at once.
		p.dialErr.Add(1)
		if tc, ok := client.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		return
	}
	p.mu.Lock()
	pp.server = server
	p.mu.Unlock()
	select {
	case <-pp.stop: // cut while dialling
		server.Close()
		return
	default:
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // client to server
		defer wg.Done()
		defer pp.close()
		for chunk := range fromClient {
			if !p.waitGate(pp.stop) {
				return
			}
			if _, err := server.Write(chunk); err != nil {
				return
			}
		}
	}()
	go func() { defer wg.Done(); p.copy(client, server, pp.stop, pp.confirm); pp.close() }()
	wg.Wait()
}

// silent reports whether the proxy holds everything back now.
func (p *Proxy) silent() bool {
	p.mu.Lock()
	g := p.gate
	p.mu.Unlock()
	select {
	case <-g:
		return false
	default:
		return true
	}
}

// cancelRequest is the start of a PostgreSQL CancelRequest: length 16 and
// the code 80877102.
var cancelRequest = []byte{0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e}

func isCancelRequest(b []byte) bool { return len(b) >= 8 && string(b[:8]) == string(cancelRequest) }

// waitGateOr is waitGate that also gives up when the client's side ends
// (clientDone closes) while the proxy is silent: a client that gave up
// holds no connection.
func (p *Proxy) waitGateOr(stop <-chan struct{}, clientDone <-chan struct{}) bool {
	p.mu.Lock()
	g := p.gate
	p.mu.Unlock()
	select {
	case <-g:
		return true
	case <-stop:
		return false
	case <-clientDone:
		return false
	}
}

// copy forwards from src to dst chunk by chunk, holding each chunk back
// while the proxy is silent; first runs at the first chunk.
func (p *Proxy) copy(dst, src net.Conn, stop <-chan struct{}, first func()) {
	buf := make([]byte, 32<<10)
	seen := false
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !seen {
				seen = true
				first()
			}
			if !p.waitGate(stop) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // io.EOF or a closed connection: end the pipe
			return
		}
	}
}

// confirm counts the pipe towards the high-water mark once it is known to
// be a connection of the client's pool (not a cancel request).
func (pp *pipe) confirm() {
	pp.confirmOnce.Do(func() {
		if pp.uncounted.Load() {
			return
		}
		p := pp.p
		n := p.open.Load()
		for {
			m := p.maxOpen.Load()
			if n <= m || p.maxOpen.CompareAndSwap(m, n) {
				return
			}
		}
	})
}

// uncount takes a cancel request's pipe out of the count of open ones.
func (pp *pipe) uncount() {
	if pp.uncounted.CompareAndSwap(false, true) {
		pp.p.open.Add(-1)
	}
}

// close closes both sides once and forgets the pipe.
func (pp *pipe) close() {
	pp.once.Do(func() {
		p := pp.p
		p.mu.Lock()
		delete(p.conns, pp)
		server := pp.server
		p.mu.Unlock()
		close(pp.stop)
		pp.client.Close()
		if server != nil {
			server.Close()
		}
		if !pp.uncounted.Load() {
			p.open.Add(-1)
		}
	})
}

// Silence stops forwarding bytes in both directions until Resume.
// Connections stay open; new ones are accepted but not dialled upstream.
func (p *Proxy) Silence() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
		p.gate = make(chan struct{})
	default: // already silent
	}
}

// Resume ends a Silence: what was held back is forwarded.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}

// Cut closes every open connection, both sides, at once. New connections
// are accepted as before.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	list := make([]*pipe, 0, len(p.conns))
	for pp := range p.conns {
		list = append(list, pp)
	}
	p.mu.Unlock()
	for _, pp := range list {
		pp.close()
	}
	return len(list)
}

// Refuse closes the listener: new connections are refused by the kernel
// until Accept. Open connections are left alone.
func (p *Proxy) Refuse() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
}

// Accept listens on Addr again after Refuse. It retries for up to 2 s when
// the port is not free at once.
func (p *Proxy) Accept() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil || p.closed {
		return nil
	}
	var err error
	for range 40 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", p.Addr); err == nil {
			p.ln = ln
			p.wg.Add(1)
			go p.serve(ln)
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("faulttest: listening on %s again: %w", p.Addr, err)
}

// Open returns the number of connections open now.
func (p *Proxy) Open() int { return int(p.open.Load()) }

// MaxOpen returns the most connections open at once since the proxy was
// made or ResetMax was called.
func (p *Proxy) MaxOpen() int { return int(p.maxOpen.Load()) }

// ResetMax sets MaxOpen to the number open now.
func (p *Proxy) ResetMax() { p.maxOpen.Store(p.open.Load()) }

// Total returns the number of connections accepted since the proxy was made.
func (p *Proxy) Total() int { return int(p.total.Load()) }

// DialErrors returns how many accepted connections were reset because the
// upstream could not be dialled.
func (p *Proxy) DialErrors() int { return int(p.dialErr.Load()) }

// Close stops listening, ends a silence, closes every connection and waits
// for the proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.Refuse()
	p.Resume()
	p.Cut()
	p.wg.Wait()
	return nil
}
