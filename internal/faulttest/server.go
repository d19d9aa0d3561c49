package faulttest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Server is a private database server of one test, on a free loopback
// port, stopped at the test's cleanup. The demo connects to it as its own
// user (DemoUser), so its connections can be told from the harness's.
type Server interface {
	// Kind is "postgres" or "mysql" (the names QSESSIONS_TEST_REQUIRE uses).
	Kind() string
	// Label names the server for people, e.g. "PostgreSQL 15.8".
	Label() string
	// Addr is "127.0.0.1:port"; it stays the same across Stop and Start.
	Addr() string
	// Stop shuts the server down fast (PostgreSQL's fast shutdown,
	// MariaDB's SIGTERM) and waits until the process has exited.
	Stop() error
	// Start starts the stopped server and waits until it accepts
	// connections.
	Start() error
	// CreateDatabase makes a fresh, empty database the demo user owns and
	// returns its name.
	CreateDatabase(ctx context.Context) (string, error)
	// DemoURL is the Atlas-style URL (the demo's --db) of database name as
	// the demo user, through addr ("host:port", e.g. a Proxy's).
	DemoURL(addr, name string) string
	// DemoConns counts the demo user's connections on the server now.
	DemoConns(ctx context.Context) (int, error)
	// LockSessions locks the table qsessions_session of database name from
	// a connection of its own, inside a transaction: PostgreSQL's LOCK
	// TABLE ... IN ACCESS EXCLUSIVE MODE, MariaDB's LOCK TABLES ... WRITE.
	// It returns once the lock is held; release ends the transaction.
	LockSessions(ctx context.Context, name string) (release func() error, err error)
	// Close stops the server for good. Cleanup calls it.
	Close()
}

// DemoUser is the database user the demo connects as.
const DemoUser = "qsdemo"

// Restart stops s fast and starts it again; it returns how long the server
// did not accept connections (from the stop to ready).
func Restart(s Server) (time.Duration, error) {
	start := time.Now()
	if err := s.Stop(); err != nil {
		return 0, err
	}
	err := s.Start()
	return time.Since(start), err
}

// process is a server process started by the harness.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	out  *tailBuffer
}

// startProcess runs cmd in a process group of its own (so a stop reaches
// every child) that is killed when the test binary dies.
func startProcess(name string, cmd *exec.Cmd, deathSig syscall.Signal) (*process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = deathSig
	out := &tailBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), out: out}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits up to wait for the exit, then kills the whole
// process group.
func (p *process) stop(sig syscall.Signal, wait time.Duration) error {
	if p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(wait):
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("%s did not stop within %s after %v; killed", p.name, wait, sig)
}

// waitReady pings db until it answers, the process exits, or timeout.
func waitReady(p *process, db *sql.DB, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if p.exited() {
			return fmt.Errorf("%s exited at start: %s", p.name, p.out.String())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %s: %v\n%s", p.name, timeout, err, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written to it. Safe for concurrent
// use.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = append([]byte(nil), b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(bytes.TrimSpace(b.buf))
}

// firstExisting returns the first of paths that exists, or the first of
// names found in PATH, or "".
func firstExisting(paths []string, names ...string) string {
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// dbCounter numbers the databases CreateDatabase makes.
var dbCounter struct {
	sync.Mutex
	n int
}

func nextDBName() string {
	dbCounter.Lock()
	defer dbCounter.Unlock()
	dbCounter.n++
	return "qsdemo_" + strconv.Itoa(dbCounter.n)
}
