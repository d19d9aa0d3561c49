package faulttest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BuildDemo builds ./cmd/qsessions-demo of the module (or go.work) at
// srcDir into dir and returns the binary's path. It is what a user runs:
// no build tags, no flags.
func BuildDemo(srcDir, dir string) (string, error) {
	bin := filepath.Join(dir, "qsessions-demo")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/qsessions-demo")
	cmd.Dir = srcDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/qsessions-demo in %s: %v\n%s", srcDir, err, out)
	}
	return bin, nil
}

// ModuleRoot returns the directory of the nearest go.mod at or above dir.
func ModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod at or above %s", dir)
		}
	}
}

// DemoAccount is a user the demo printed at start.
type DemoAccount struct {
	Name, Password string
	Admin          bool
}

// Demo is a running qsessions-demo process.
type Demo struct {
	// URL is "http://127.0.0.1:port".
	URL string
	// Accounts are the users it printed, in order.
	Accounts []DemoAccount
	// Logs is everything it wrote to stdout and stderr, line by line.
	Logs *LogCapture

	cmd  *exec.Cmd
	done chan struct{}
}

// DemoOptions are the demo's flags; everything else is its default.
type DemoOptions struct {
	DB       string // --db
	Memcache string // --memcache, "" for the in-process cache
	Extra    []string
	Dir      string // working directory (its SQLite default would land there)
}

var (
	userLine  = regexp.MustCompile(`^user: (\S+)  password: (\S+)$`)
	adminLine = regexp.MustCompile(`^admin: (\S+)$`)
	readyLine = regexp.MustCompile(`^qsessions demo on (http://\S+)`)
)

// StartDemo runs the demo binary on a free loopback port with opts and
// waits (up to startTimeout) until it prints its address. Stop it with
// Stop.
func StartDemo(bin string, opts DemoOptions, startTimeout time.Duration) (*Demo, error) {
	var lastErr error
	for range 3 { // the free port may be taken before the demo listens
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		d, err := startDemo(bin, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), opts, startTimeout)
		if err == nil {
			return d, nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, lastErr
}

func startDemo(bin, addr string, opts DemoOptions, startTimeout time.Duration) (*Demo, error) {
	args := []string{"--addr", addr, "--db", opts.DB}
	if opts.Memcache != "" {
		args = append(args, "--memcache", opts.Memcache)
	}
	args = append(args, opts.Extra...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = opts.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	d := &Demo{Logs: &LogCapture{}, cmd: cmd, done: make(chan struct{})}
	ready := make(chan string, 1)
	d.Logs.onLine = func(l LogLine) {
		if m := userLine.FindStringSubmatch(l.Text); m != nil {
			d.Accounts = append(d.Accounts, DemoAccount{Name: m[1], Password: m[2]})
		} else if m := adminLine.FindStringSubmatch(l.Text); m != nil {
			for i := range d.Accounts {
				if d.Accounts[i].Name == m[1] {
					d.Accounts[i].Admin = true
				}
			}
		} else if m := readyLine.FindStringSubmatch(l.Text); m != nil {
			select {
			case ready <- m[1]:
			default:
			}
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); d.Logs.read("stdout", stdout) }()
	go func() { defer wg.Done(); d.Logs.read("stderr", stderr) }()
	go func() { wg.Wait(); _ = cmd.Wait(); close(d.done) }()
	select {
	case u := <-ready:
		d.Logs.mu.Lock()
		d.URL = u
		d.Logs.onLine = nil // Accounts are complete: printed before the address
		d.Logs.mu.Unlock()
		if len(d.Accounts) == 0 {
			d.Stop()
			return nil, fmt.Errorf("the demo printed no \"user: NAME  password: PASS\" line:\n%s", d.Logs.Text())
		}
		return d, nil
	case <-d.done:
		return nil, fmt.Errorf("the demo exited at start (%v):\n%s", cmd.ProcessState, d.Logs.Text())
	case <-time.After(startTimeout):
		d.Stop()
		return nil, fmt.Errorf("the demo did not print its address within %s:\n%s", startTimeout, d.Logs.Text())
	}
}

// Stop sends SIGTERM, waits up to 10 s, then kills the demo.
func (d *Demo) Stop() {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// LogLine is one line the demo wrote, stamped when the harness read it.
type LogLine struct {
	At     time.Time
	Stream string // "stdout" or "stderr"
	Text   string
}

// LogCapture collects the demo's output. Safe for concurrent use.
type LogCapture struct {
	mu     sync.Mutex
	lines  []LogLine
	onLine func(LogLine)
}

func (c *LogCapture) read(stream string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := LogLine{At: time.Now(), Stream: stream, Text: sc.Text()}
		c.mu.Lock()
		c.lines = append(c.lines, l)
		f := c.onLine
		if f != nil {
			f(l)
		}
		c.mu.Unlock()
	}
}

// Lines returns the lines read so far.
func (c *LogCapture) Lines() []LogLine {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]LogLine(nil), c.lines...)
}

// Text returns the last 40 lines, for error messages.
func (c *LogCapture) Text() string {
	var b strings.Builder
	for _, l := range c.Lines() {
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	return lastLines(b.String(), 40)
}

// LogEntry is a log line taken apart.
type LogEntry struct {
	Level string // "ERROR", "WARN", "INFO", "DEBUG", or "" when not a log line
	Msg   string
	// Count is the number of events the line stands for: 1, plus a
	// "suppressed", "count", "dropped" or "repeated" attribute when the
	// logger folds repeats into one line.
	Count int
}

var (
	// log.Logger's prefix: "2006/01/02 15:04:05[.000000] ".
	stdPrefix = regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(\.\d+)? `)
	// slog's text attributes: key=value or key="...".
	attrStart = regexp.MustCompile(` [A-Za-z_][A-Za-z0-9_.-]*=`)
	levelWord = regexp.MustCompile(`^(DEBUG|INFO|WARN|ERROR)([+-]\d+)?$`)
	countAttr = regexp.MustCompile(`(?:^|[ ,{"])"?(suppressed|count|dropped|repeated|more)"?[=:]"?(\d+)`)
)

// ParseLogLine takes a line of the demo's output apart. It understands
// slog's default output through package log ("2006/01/02 15:04:05 ERROR
// msg k=v"), slog.TextHandler ("time=... level=ERROR msg=... k=v") and
// slog.JSONHandler.
func ParseLogLine(s string) LogEntry {
	var e LogEntry
	switch {
	case strings.HasPrefix(s, "{"):
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) != nil {
			return e
		}
		e.Level, _ = m["level"].(string)
		e.Msg, _ = m["msg"].(string)
	case strings.Contains(s, "level=") && strings.Contains(s, "msg="):
		e.Level = textValue(s, "level")
		e.Msg = textValue(s, "msg")
	default:
		rest := stdPrefix.ReplaceAllString(s, "")
		word, msg, _ := strings.Cut(rest, " ")
		if !levelWord.MatchString(word) {
			return e
		}
		e.Level = word
		if loc := attrStart.FindStringIndex(msg); loc != nil {
			msg = msg[:loc[0]]
		}
		e.Msg = strings.TrimSpace(msg)
	}
	if m := levelWord.FindStringSubmatch(e.Level); m != nil {
		e.Level = m[1]
	} else {
		e.Level = ""
		return e
	}
	e.Count = 1
	if m := countAttr.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[2])
		e.Count += n
	}
	return e
}

// textValue returns the value of key in a slog.TextHandler line.
func textValue(s, key string) string {
	var v string
	if strings.HasPrefix(s, key+"=") {
		v = s[len(key)+1:]
	} else if i := strings.Index(s, " "+key+"="); i >= 0 {
		v = s[i+len(key)+2:]
	} else {
		return ""
	}
	if strings.HasPrefix(v, `"`) {
		if q, err := strconv.QuotedPrefix(v); err == nil {
			v, _ = strconv.Unquote(q)
			return v
		}
	}
	v, _, _ = strings.Cut(v, " ")
	return v
}

// LogClass is the lines of one level and message.
type LogClass struct {
	Level, Msg string
	Lines      int
	Events     int // Lines plus folded repeats (LogEntry.Count)
	First      time.Time
	Last       time.Time
	// Example is the first line of the class, cut to 240 bytes.
	Example string
}

// Classify groups the ERROR and WARN lines among lines by level and
// message, most lines first.
func Classify(lines []LogLine) []LogClass {
	idx := map[string]*LogClass{}
	var out []*LogClass
	for _, l := range lines {
		e := ParseLogLine(l.Text)
		if e.Level != "ERROR" && e.Level != "WARN" {
			continue
		}
		k := e.Level + " " + e.Msg
		c := idx[k]
		if c == nil {
			c = &LogClass{Level: e.Level, Msg: e.Msg, First: l.At, Example: l.Text[:min(len(l.Text), 240)]}
			idx[k] = c
			out = append(out, c)
		}
		c.Lines++
		c.Events += e.Count
		c.Last = l.At
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Lines > out[j].Lines })
	res := make([]LogClass, len(out))
	for i, c := range out {
		res[i] = *c
	}
	return res
}
