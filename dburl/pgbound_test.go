package dburl_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/internal/testutil"
)

// silentProxy forwards TCP to upstream until Silence; from then on it
// holds every byte back, both ways, and counts the sockets the client
// keeps open (cancel requests aside).
type silentProxy struct {
	ln       net.Listener
	upstream string
	silent   atomic.Bool
	open     atomic.Int64
	maxOpen  atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
	closed   chan struct{}
}

func newSilentProxy(t *testing.T, upstream string) *silentProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &silentProxy{ln: ln, upstream: upstream, closed: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *silentProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(c)
		p.wg.Add(1)
		go p.handle(c)
	}
}

func (p *silentProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *silentProxy) close() {
	close(p.closed)
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *silentProxy) handle(client net.Conn) {
	defer p.wg.Done()
	defer client.Close()
	first := make([]byte, 8)
	if _, err := io.ReadFull(client, first); err != nil {
		return
	}
	// A PostgreSQL CancelRequest (length 16, code 80877102) is a side
	// connection, not one of the pool's: answer it by closing.
	if string(first) == "\x00\x00\x00\x10\x04\xd2\x16\x2e" {
		return
	}
	for n := p.open.Add(1); ; {
		m := p.maxOpen.Load()
		if n <= m || p.maxOpen.CompareAndSwap(m, n) {
			break
		}
	}
	defer p.open.Add(-1)
	for p.silent.Load() { // a connection opened while silent is held too
		if !p.wait(client) {
			return
		}
	}
	server, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	p.track(server)
	defer server.Close()
	done := make(chan struct{}, 2)
	go func() { p.copy(server, client, first); done <- struct{}{} }()
	go func() { p.copy(client, server, nil); done <- struct{}{} }()
	<-done
}

// wait sleeps a little while the proxy is silent and reports whether the
// client is still there.
func (p *silentProxy) wait(client net.Conn) bool {
	client.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	var b [1]byte
	_, err := client.Read(b[:])
	client.SetReadDeadline(time.Time{})
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return true
	}
	return false // closed (or it sent bytes, which a held connection may drop)
}

func (p *silentProxy) copy(dst, src net.Conn, first []byte) {
	if first != nil {
		if _, err := dst.Write(first); err != nil {
			return
		}
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			for p.silent.Load() {
				select {
				case <-p.closed:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// TestPostgresSocketsStayWithinThePool: against a Postgres that stops
// answering, requests whose context ends make pgx close their connections
// asynchronously (the socket lingers up to 15 s); the pool must not open
// new sockets past max_open_conns meanwhile.
func TestPostgresSocketsStayWithinThePool(t *testing.T) {
	tdb := testutil.Open(t, testutil.Postgres)
	u, err := url.Parse(tdb.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := newSilentProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	q := u.Query()
	q.Set("max_open_conns", "2")
	u.RawQuery = q.Encode()
	db, err := dburl.Open(u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Two pooled connections, both in use at once.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := db.SQL.ExecContext(ctx, "SELECT pg_sleep(0.1)"); err != nil {
				t.Errorf("before the silence: %v", err)
			}
		}()
	}
	wg.Wait()
	if got := p.maxOpen.Load(); got != 2 {
		t.Fatalf("%d sockets before the silence, want 2", got)
	}
	p.silent.Store(true)
	var failed atomic.Int64
	deadline := time.Now().Add(2 * time.Second)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				rctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
				if _, err := db.SQL.ExecContext(rctx, "SELECT 1"); err != nil {
					failed.Add(1)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	if failed.Load() == 0 {
		t.Fatal("no request failed while the database was silent: the proxy did not hold anything back")
	}
	if got := p.maxOpen.Load(); got > 2 {
		t.Errorf("the pool held %d sockets at once while the database was silent, more than max_open_conns=2", got)
	}
	t.Logf("%d requests failed while silent; at most %d sockets", failed.Load(), p.maxOpen.Load())
}
