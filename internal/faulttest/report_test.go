package faulttest

import (
	"strings"
	"testing"
	"time"
)

func TestParseLogLine(t *testing.T) {
	for _, c := range []struct {
		line string
		want LogEntry
	}{
		{`2026/05/01 10:11:12 ERROR login: loading the user err="failed to connect to ` + "`user=qsdemo`" + `: dial error"`,
			LogEntry{Level: "ERROR", Msg: "login: loading the user", Count: 1}},
		{`2026/05/01 10:11:12 WARN qsessions: session cache failed; serving from the database op=get error="i/o timeout" suppressed=41`,
			LogEntry{Level: "WARN", Msg: "qsessions: session cache failed; serving from the database", Count: 42}},
		{`2026/05/01 10:11:12.123456 ERROR+2 something broke`, LogEntry{Level: "ERROR", Msg: "something broke", Count: 1}},
		{`2026/05/01 10:11:12 INFO started`, LogEntry{Level: "INFO", Msg: "started", Count: 1}},
		{`time=2026-05-01T10:11:12.000Z level=WARN msg="database unreachable; answering 503" count=7 path=/api/sessions`,
			LogEntry{Level: "WARN", Msg: "database unreachable; answering 503", Count: 8}},
		{`{"time":"2026-05-01T10:11:12Z","level":"ERROR","msg":"pages: listing sessions","err":"timeout"}`,
			LogEntry{Level: "ERROR", Msg: "pages: listing sessions", Count: 1}},
		{`user: alice  password: abcdefabcdef`, LogEntry{}},
		{`qsessions demo on http://127.0.0.1:1234 (database x, y)`, LogEntry{}},
		{`2026/05/01 10:11:12 http: panic serving 127.0.0.1:5555: boom`, LogEntry{}},
	} {
		if got := ParseLogLine(c.line); got != c.want {
			t.Errorf("ParseLogLine(%q)\n = %+v\nwant %+v", c.line, got, c.want)
		}
	}
}

func TestClassify(t *testing.T) {
	at := time.Now()
	lines := []LogLine{
		{At: at, Text: "2026/05/01 10:11:12 ERROR logout err=x"},
		{At: at, Text: "2026/05/01 10:11:12 INFO fine"},
		{At: at, Text: "2026/05/01 10:11:13 ERROR logout err=y"},
		{At: at, Text: "2026/05/01 10:11:13 WARN cache failed suppressed=3"},
		{At: at, Text: "user: bob  password: x"},
	}
	got := Classify(lines)
	if len(got) != 2 || got[0].Msg != "logout" || got[0].Lines != 2 || got[1].Level != "WARN" || got[1].Events != 4 {
		t.Fatalf("Classify = %+v", got)
	}
}

// TestViolations checks that each target of issue 19 is reported when
// missed, and nothing when all are met.
func TestViolations(t *testing.T) {
	t0 := time.Now()
	ok := &Result{Window: Window{Start: t0, End: t0.Add(time.Second)}, MaxConnsProxy: 10, Worst: 3 * time.Second,
		Classes5xx: []Class5xx{{Op: OpAPI, Status: 503, N: 3, Logged: true}}}
	if v := ok.Violations(Limits{Deadline: 3 * time.Second, Pool: 10}); len(v) != 0 {
		t.Fatalf("violations of a good result: %q", v)
	}
	bad := &Result{Window: ok.Window, MaxConnsProxy: 11, Worst: 5 * time.Second, WorstOp: OpAPI,
		WronglySignedOut: 1, RevokedAccepted: 1, Outside5xx: 1, Check: CheckResult{Lost: 1},
		Requests:   []Request{{Op: OpAPI, Latency: 5 * time.Second}},
		Classes5xx: []Class5xx{{Op: OpLogout, Status: 500, N: 2}}}
	v := strings.Join(bad.Violations(Limits{Deadline: 3 * time.Second, Pool: 10}), "\n")
	for _, want := range []string{"lost", "revoked", "signed out", "deadline", "pool", "outside the fault", "no ERROR or WARN"} {
		if !strings.Contains(v, want) {
			t.Errorf("violations lack %q:\n%s", want, v)
		}
	}
}

func TestMentionsRoute(t *testing.T) {
	for _, c := range []struct {
		line, op string
		want     bool
	}{
		{`ERROR pages: listing sessions path=/api/sessions err=x`, OpAPI, true},
		{`ERROR pages: x path=/api/sessions err=x`, OpPage, false},
		{`ERROR pages: x path=/sessions err=x`, OpPage, true},
		{`ERROR pages: x path="/sessions?done=1"`, OpPage, true},
		{`ERROR pages: x path=/sessions/0123456789abcdef/revoke err=x`, OpRevoke, true},
		{`ERROR pages: x path=/sessions/0123456789abcdef/revoke err=x`, OpPage, false},
		{`ERROR logout err=x`, OpLogout, false},
		{`ERROR request failed method=POST path=/logout`, OpLogout, true},
		{`ERROR request failed path=/login`, OpLogin, true},
		{`ERROR request failed path=/logout`, OpLogin, false},
	} {
		if got := mentionsRoute(c.line, c.op); got != c.want {
			t.Errorf("mentionsRoute(%q, %q) = %v, want %v", c.line, c.op, got, c.want)
		}
	}
}
