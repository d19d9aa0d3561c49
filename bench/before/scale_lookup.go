//go:build ignore

// This is bench/cmd/scale/lookup.go for commit a410656, before the public
// id became a key prefix: the scan the pages and the CLI did then. Used by
// bench/before/run.

package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/ent/session"
	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/pages"
)

// publicIDLookup measures finding a session by its public id the way the
// pages and the CLI do it (pages.FindKey over ent pages of keys in key
// order), for random live sessions and for an id that names none.
func publicIDLookup(ctx context.Context, db *dburl.DB, _ backend.Store, drv *testutil.CountingDriver, keys []string) error {
	mclient := ent.NewClient(ent.Driver(drv))
	page := func(ctx context.Context, after string, limit int) ([]string, error) {
		return mclient.Session.Query().Where(session.IDGT(after)).Order(session.ByID()).Limit(limit).IDs(ctx)
	}
	var total time.Duration
	var statements int
	for i := range opts.lookups {
		key := keys[(i*7919)%len(keys)]
		drv.Reset()
		start := time.Now()
		got, err := pages.FindKey(ctx, qsessions.PublicID(key), page)
		total += time.Since(start)
		statements += drv.Count()
		if err != nil {
			return fmt.Errorf("public-id lookup: %w", err)
		}
		if got != key {
			return fmt.Errorf("public-id lookup found %s, want %s", got, key)
		}
	}
	fmt.Printf("\npublic-id lookup of a live session (pages.FindKey, mean of %d): %v/op, %.0f statements/op\n",
		opts.lookups, (total / time.Duration(opts.lookups)).Round(time.Microsecond), float64(statements)/float64(opts.lookups))
	q := drv.Queries()[0]
	if err := explain(ctx, db, q); err != nil {
		return err
	}
	drv.Reset()
	start := time.Now()
	_, err := pages.FindKey(ctx, "0123456789abcdef", page)
	if !errors.Is(err, qsessions.ErrNotFound) {
		return fmt.Errorf("public-id lookup of an unknown id: %v", err)
	}
	fmt.Printf("public-id lookup of an id no session has: %v, %d statements\n", time.Since(start).Round(time.Microsecond), drv.Count())
	return nil
}
