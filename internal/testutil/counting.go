package testutil

import (
	"context"
	"strings"
	"sync"

	"entgo.io/ent/dialect"
)

// Query is one statement a CountingDriver saw.
type Query struct {
	SQL  string
	Args []any
	Exec bool // Exec rather than Query
}

// CountingDriver is an ent dialect.Driver that records every statement,
// inside transactions too, before passing it on.
type CountingDriver struct {
	dialect.Driver
	mu      sync.Mutex
	queries []Query
}

// NewCountingDriver wraps drv.
func NewCountingDriver(drv dialect.Driver) *CountingDriver {
	return &CountingDriver{Driver: drv}
}

func (d *CountingDriver) record(q string, args any, exec bool) {
	a, _ := args.([]any)
	d.mu.Lock()
	d.queries = append(d.queries, Query{SQL: q, Args: a, Exec: exec})
	d.mu.Unlock()
}

// Exec records and runs a statement.
func (d *CountingDriver) Exec(ctx context.Context, query string, args, v any) error {
	d.record(query, args, true)
	return d.Driver.Exec(ctx, query, args, v)
}

// Query records and runs a query.
func (d *CountingDriver) Query(ctx context.Context, query string, args, v any) error {
	d.record(query, args, false)
	return d.Driver.Query(ctx, query, args, v)
}

// Tx starts a transaction whose statements are recorded too.
func (d *CountingDriver) Tx(ctx context.Context) (dialect.Tx, error) {
	tx, err := d.Driver.Tx(ctx)
	if err != nil {
		return nil, err
	}
	return &countingTx{Tx: tx, d: d}, nil
}

// Queries returns what was recorded since the last Reset.
func (d *CountingDriver) Queries() []Query {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Query(nil), d.queries...)
}

// Count returns how many statements were recorded since the last Reset.
func (d *CountingDriver) Count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.queries)
}

// Writes returns how many INSERT, UPDATE or DELETE statements were
// recorded since the last Reset (Postgres inserts run as queries, for
// RETURNING, so the verb decides, not Exec).
func (d *CountingDriver) Writes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, q := range d.queries {
		s := strings.ToUpper(strings.TrimSpace(q.SQL))
		if strings.HasPrefix(s, "INSERT") || strings.HasPrefix(s, "UPDATE") || strings.HasPrefix(s, "DELETE") {
			n++
		}
	}
	return n
}

// Reset forgets what was recorded.
func (d *CountingDriver) Reset() {
	d.mu.Lock()
	d.queries = nil
	d.mu.Unlock()
}

type countingTx struct {
	dialect.Tx
	d *CountingDriver
}

func (t *countingTx) Exec(ctx context.Context, query string, args, v any) error {
	t.d.record(query, args, true)
	return t.Tx.Exec(ctx, query, args, v)
}

func (t *countingTx) Query(ctx context.Context, query string, args, v any) error {
	t.d.record(query, args, false)
	return t.Tx.Query(ctx, query, args, v)
}
