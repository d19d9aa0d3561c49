package faulttest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// echoServer answers each line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// roundTrip writes a line and reads the echo within timeout.
func roundTrip(c net.Conn, r *bufio.Reader, line string, timeout time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	s, err := r.ReadString('\n')
	if len(s) > 0 {
		s = s[:len(s)-1]
	}
	return s, err
}

func newTestProxy(t *testing.T) *Proxy {
	t.Helper()
	p, err := NewProxy(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestProxyForwardsAndCounts(t *testing.T) {
	p := newTestProxy(t)
	c1, r1 := dial(t, p.Addr)
	c2, r2 := dial(t, p.Addr)
	for i, x := range []struct {
		c net.Conn
		r *bufio.Reader
	}{{c1, r1}, {c2, r2}} {
		if got, err := roundTrip(x.c, x.r, "hello", 2*time.Second); err != nil || got != "hello" {
			t.Fatalf("conn %d: got %q, %v; want the echo", i, got, err)
		}
	}
	if p.Open() != 2 || p.MaxOpen() != 2 || p.Total() != 2 {
		t.Fatalf("open/max/total = %d/%d/%d, want 2/2/2", p.Open(), p.MaxOpen(), p.Total())
	}
	c1.Close()
	waitFor(t, func() bool { return p.Open() == 1 }, "the closed connection to be forgotten")
	if p.MaxOpen() != 2 {
		t.Fatalf("MaxOpen = %d after a close, want 2", p.MaxOpen())
	}
	p.ResetMax()
	if p.MaxOpen() != 1 {
		t.Fatalf("MaxOpen = %d after ResetMax, want 1", p.MaxOpen())
	}
}

func TestProxySilence(t *testing.T) {
	p := newTestProxy(t)
	c, r := dial(t, p.Addr)
	if _, err := roundTrip(c, r, "before", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Silence()
	// An open connection gets no answer, and is not closed.
	if got, err := roundTrip(c, r, "held", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("silent proxy answered %q, %v; want a timeout", got, err)
	}
	// A new connection is accepted but nothing answers it either.
	c2, r2 := dial(t, p.Addr)
	if got, err := roundTrip(c2, r2, "new", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("silent proxy answered a new connection: %q, %v", got, err)
	}
	p.Resume()
	// What was held back arrives, in order.
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "held\n" {
		t.Fatalf("after Resume got %q, %v; want the held line", got, err)
	}
	_ = c2.SetReadDeadline(time.Now().Add(2 * time.Second))
	if got, err := r2.ReadString('\n'); err != nil || got != "new\n" {
		t.Fatalf("new connection after Resume got %q, %v", got, err)
	}
	if got, err := roundTrip(c, r, "after", 2*time.Second); err != nil || got != "after" {
		t.Fatalf("after Resume: %q, %v", got, err)
	}
}

func TestProxyCut(t *testing.T) {
	p := newTestProxy(t)
	c, r := dial(t, p.Addr)
	if _, err := roundTrip(c, r, "x", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := p.Cut(); n != 1 {
		t.Fatalf("Cut closed %d connections, want 1", n)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.ReadString('\n'); err == nil || isTimeout(err) {
		t.Fatalf("read after Cut: %v, want the connection closed", err)
	}
	// New connections work.
	c2, r2 := dial(t, p.Addr)
	if got, err := roundTrip(c2, r2, "y", 2*time.Second); err != nil || got != "y" {
		t.Fatalf("after Cut: %q, %v", got, err)
	}
}

func TestProxyRefuseAccept(t *testing.T) {
	p := newTestProxy(t)
	p.Refuse()
	_, err := net.DialTimeout("tcp", p.Addr, time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial while refusing: %v, want connection refused", err)
	}
	if err := p.Accept(); err != nil {
		t.Fatal(err)
	}
	c, r := dial(t, p.Addr)
	if got, err := roundTrip(c, r, "z", 2*time.Second); err != nil || got != "z" {
		t.Fatalf("after Accept: %q, %v", got, err)
	}
}

func TestProxyUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	p, err := NewProxy(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// The reset may come before the dial returns, or at the first read.
	if c, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("read through a proxy whose upstream is down: %v, want the connection reset or closed", err)
		}
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("dial: %v, want success or a reset", err)
	}
	waitFor(t, func() bool { return p.DialErrors() == 1 }, "the failed upstream dial to be counted")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
