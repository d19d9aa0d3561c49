package testutil

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DefaultMemcached is the memcached server tests use when
// QSESSIONS_TEST_MEMCACHED is unset.
const DefaultMemcached = "127.0.0.1:11211"

// MemcachedName is the name QSESSIONS_TEST_REQUIRE uses for memcached (a
// reachable server and, for fault tests, the memcached binary).
const MemcachedName = "memcached"

// PingMemcached sends "version" to the memcached at addr ("host:port" or a
// unix socket path containing '/') and reports whether it answered within
// timeout.
func PingMemcached(addr string, timeout time.Duration) error {
	network := "tcp"
	if strings.Contains(addr, "/") {
		network = "unix"
	}
	c, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("version\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "VERSION ") {
		return fmt.Errorf("unexpected answer to version: %q", line)
	}
	return nil
}

// MemcacheTimeout is the per-step timeout for tests that assert exact
// cache results (a hit, a miss, a stored value) against the shared
// memcached: 5 s, not the library's 100 ms default, so that a CI machine
// whose two cores are busy with other test binaries does not turn a slow
// schedule into a cache error the test did not ask for. Tests of the
// failure paths set their own, short timeouts.
const MemcacheTimeout = 5 * time.Second

// Memcached returns the address of the shared test memcached
// (QSESSIONS_TEST_MEMCACHED, default 127.0.0.1:11211), probed once per
// process; when it does not answer, t skips (or fails when
// QSESSIONS_TEST_REQUIRE names memcached). Tests sharing it use distinct key
// prefixes (MemcachedPrefix).
func Memcached(t testing.TB) string {
	t.Helper()
	addr := Env("QSESSIONS_TEST_MEMCACHED", DefaultMemcached)
	probeMu.Lock()
	err, ok := probed["memcached "+addr]
	if !ok {
		err = PingMemcached(addr, 2*time.Second)
		probed["memcached "+addr] = err
	}
	probeMu.Unlock()
	if err != nil {
		Unavailable(t, MemcachedName, fmt.Sprintf("%s: %v", addr, err))
	}
	return addr
}

// MemcachedPrefix returns a cache key prefix no other test uses, e.g.
// "qst-1a2b3c4d5e6f:".
func MemcachedPrefix(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "qst-" + hex.EncodeToString(b[:]) + ":"
}

// MemcachedProc is a private memcached process of one test, on a free
// loopback port, killed at the test's cleanup. Its methods fail the test on
// error. Safe for concurrent use.
type MemcachedProc struct {
	// Addr is "127.0.0.1:port"; it stays the same across Restart.
	Addr string

	t    testing.TB
	bin  string
	port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	stderr *bytes.Buffer
}

// StartMemcached starts a memcached for t: 16 MB of memory, TCP on a free
// loopback port, no UDP, "-u root" when running as root. It returns once the
// server answers. Without the memcached binary t skips (or fails when
// QSESSIONS_TEST_REQUIRE names memcached).
func StartMemcached(t testing.TB) *MemcachedProc {
	t.Helper()
	bin, err := exec.LookPath("memcached")
	if err != nil {
		Unavailable(t, MemcachedName, "the memcached binary is not in PATH (fault tests start their own servers)")
	}
	p := &MemcachedProc{t: t, bin: bin}
	t.Cleanup(p.cleanup)
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testutil: finding a free port: %v", err)
		}
		p.port = port
		p.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = p.start(); lastErr == nil {
			return p
		}
	}
	t.Fatalf("testutil: starting memcached: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs the process and waits until it answers, up to 5 s.
func (p *MemcachedProc) start() error {
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(p.port), "-U", "0", "-m", "16"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	cmd := exec.Command(p.bin, args...)
	stderr := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done, p.stderr = cmd, done, stderr
	p.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("memcached on %s exited at start: %s", p.Addr, strings.TrimSpace(stderr.String()))
		default:
		}
		if PingMemcached(p.Addr, 200*time.Millisecond) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			p.kill()
			return fmt.Errorf("memcached on %s did not answer within 5s: %s", p.Addr, strings.TrimSpace(stderr.String()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *MemcachedProc) signal(sig syscall.Signal) {
	p.t.Helper()
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		p.t.Fatalf("testutil: memcached on %s is not running", p.Addr)
	}
	select {
	case <-done:
		p.t.Fatalf("testutil: memcached on %s has exited", p.Addr)
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("testutil: signalling memcached on %s: %v", p.Addr, err)
	}
}

// kill sends SIGKILL (which also ends a stopped process) and waits for the
// exit. It does nothing when the process is not running.
func (p *MemcachedProc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Kill ends the process at once (SIGKILL) and waits for it; the port is
// refused until Restart.
func (p *MemcachedProc) Kill() { p.kill() }

// Stop freezes the process (SIGSTOP): connections are accepted by the
// kernel but nothing answers, like a stalled server. It returns once every
// thread of the process is stopped (signals are delivered asynchronously).
func (p *MemcachedProc) Stop() {
	p.t.Helper()
	p.signal(syscall.SIGSTOP)
	p.waitStopped(true)
}

// Cont resumes a stopped process (SIGCONT) and returns once it runs again.
func (p *MemcachedProc) Cont() {
	p.t.Helper()
	p.signal(syscall.SIGCONT)
	p.waitStopped(false)
}

// waitStopped waits up to 2 s until all threads of the process are stopped
// (or none is), reading /proc; without /proc it waits 50 ms.
func (p *MemcachedProc) waitStopped(stopped bool) {
	p.t.Helper()
	p.mu.Lock()
	pid := p.cmd.Process.Pid
	p.mu.Unlock()
	dir := fmt.Sprintf("/proc/%d/task", pid)
	if _, err := os.Stat(dir); err != nil {
		time.Sleep(50 * time.Millisecond)
		return
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		if allStopped(dir) == stopped {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("testutil: memcached on %s: not %s after 2s", p.Addr, map[bool]string{true: "stopped", false: "resumed"}[stopped])
		}
		time.Sleep(time.Millisecond)
	}
}

// allStopped reports whether every thread under a /proc/<pid>/task
// directory is in state T (stopped); false if any runs or on error.
func allStopped(dir string) bool {
	tasks, err := os.ReadDir(dir)
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(dir + "/" + task.Name() + "/stat")
		if err != nil {
			return false
		}
		// "pid (comm) S ...": the state follows the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

// Restart kills the process if it runs and starts an empty one on the same
// port.
func (p *MemcachedProc) Restart() {
	p.t.Helper()
	p.kill()
	var err error
	for range 10 { // the port may take a moment to be free again
		if err = p.start(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("testutil: restarting memcached: %v", err)
}

func (p *MemcachedProc) cleanup() { p.kill() }

// CacheKeys are the CachedOptions.Keys tests authenticate cache entries
// with: fixed, so several processes of a test share them.
var CacheKeys = [][]byte{[]byte("qsessions test cache key, 32+ bytes long")}
