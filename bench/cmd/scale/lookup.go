package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/internal/testutil"
)

// publicIDLookup measures finding a session by its public id as the pages,
// the admin source and the CLI do (Store.Find: a primary-key range scan,
// the public id being a prefix of the key), for random live sessions and
// for an id that names none.
func publicIDLookup(ctx context.Context, db *dburl.DB, store backend.Store, drv *testutil.CountingDriver, keys []string) error {
	var total time.Duration
	var statements int
	for i := range opts.lookups {
		key := keys[(i*7919)%len(keys)]
		drv.Reset()
		start := time.Now()
		rs, err := store.Find(ctx, backend.PublicID(key))
		total += time.Since(start)
		statements += drv.Count()
		if err != nil {
			return fmt.Errorf("public-id lookup: %w", err)
		}
		if !slices.ContainsFunc(rs, func(r *backend.Record) bool { return r.Key == key }) {
			return fmt.Errorf("public-id lookup of %s did not find its session", backend.PublicID(key))
		}
	}
	cur.lookup, cur.lookupStmts = total/time.Duration(opts.lookups), float64(statements)/float64(opts.lookups)
	fmt.Printf("\npublic-id lookup of a live session (Store.Find, mean of %d): %v/op, %.0f statements/op\n",
		opts.lookups, (total / time.Duration(opts.lookups)).Round(time.Microsecond), float64(statements)/float64(opts.lookups))
	if err := explain(ctx, db, drv.Queries()[0]); err != nil {
		return err
	}
	drv.Reset()
	start := time.Now()
	rs, err := store.Find(ctx, "0123456789abcdef")
	cur.lookupUnknown = time.Since(start)
	if err != nil && !errors.Is(err, backend.ErrNotFound) {
		return fmt.Errorf("public-id lookup of an unknown id: %w", err)
	}
	fmt.Printf("public-id lookup of an id no session has: %v, %d statements, %d rows\n", time.Since(start).Round(time.Microsecond), drv.Count(), len(rs))
	return nil
}
