package main

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// tracer counts the statements a server sends to Postgres, at the wire
// level of pgx, so that qsessions (ent over database/sql over pgx's stdlib)
// and scs (pgxstore over pgxpool) are counted the same way. BEGIN, COMMIT
// and ROLLBACK are counted apart from the other statements; both kinds are
// round trips. When tracing is on it also keeps the text of each statement.
type tracer struct {
	statements atomic.Int64
	txControl  atomic.Int64
	// wait is the time from sending each kind of statement to its result,
	// by statementKinds (the connection already acquired).
	wait [len(statementKinds)]atomic.Int64

	mu      sync.Mutex
	tracing bool
	trace   []string
}

// TraceQueryStart implements pgx.QueryTracer.
func (t *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	sql := strings.TrimSpace(data.SQL)
	if strings.HasPrefix(sql, "SELECT pg_stat_force_next_flush()") {
		// The harness's own statistics flush, not the server's work.
		return ctx
	}
	kind := kindOf(sql)
	if kind == kindTx {
		t.txControl.Add(1)
	} else {
		t.statements.Add(1)
	}
	t.mu.Lock()
	if t.tracing && len(t.trace) < 100 {
		t.trace = append(t.trace, sql)
	}
	t.mu.Unlock()
	return context.WithValue(ctx, traceKey{}, traceStart{kind: kind, at: time.Now()})
}

// TraceQueryEnd implements pgx.QueryTracer.
func (t *tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if st, ok := ctx.Value(traceKey{}).(traceStart); ok {
		t.wait[st.kind].Add(int64(time.Since(st.at)))
	}
}

// traceKey carries a traceStart from TraceQueryStart to TraceQueryEnd.
type traceKey struct{}

type traceStart struct {
	kind int
	at   time.Time
}

// statementKinds name the kinds of statements whose time is kept apart.
var statementKinds = [...]string{"SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN/COMMIT", "other"}

const (
	kindSelect = iota
	kindInsert
	kindUpdate
	kindDelete
	kindTx
	kindOther
)

// kindOf classifies a statement by its first word.
func kindOf(sql string) int {
	switch strings.ToLower(firstWord(sql)) {
	case "select", "with":
		return kindSelect
	case "insert":
		return kindInsert
	case "update":
		return kindUpdate
	case "delete":
		return kindDelete
	case "begin", "commit", "rollback", "start", "end":
		return kindTx
	}
	return kindOther
}

// waits returns the time spent per statement kind.
func (t *tracer) waits() []time.Duration {
	out := make([]time.Duration, len(statementKinds))
	for i := range out {
		out[i] = time.Duration(t.wait[i].Load())
	}
	return out
}

// setTracing turns the keeping of statement texts on or off; turning it on
// forgets what was kept.
func (t *tracer) setTracing(on bool) {
	t.mu.Lock()
	t.tracing = on
	if on {
		t.trace = nil
	}
	t.mu.Unlock()
}

// traced returns the statements kept since tracing was turned on.
func (t *tracer) traced() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.trace...)
}

// firstWord returns s up to its first space or end.
func firstWord(s string) string {
	if i := strings.IndexAny(s, " \t\n;"); i >= 0 {
		return s[:i]
	}
	return s
}
