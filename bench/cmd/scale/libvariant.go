package main

import (
	"context"
	"time"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dburl"
)

// libraryVariant is the cleanup as the library runs it (Store.DeleteExpired
// batches through ent, each starting at the last expire_date of the one
// before), as a variant: measured after the same restore as the plain-SQL
// variants, so that ent's share of the cost shows.
func libraryVariant(store backend.Store) cleanupVariant {
	return cleanupVariant{
		name:  "library",
		doc:   "Store.DeleteExpired batches (ent), as backend.ClearExpired runs them",
		start: time.Time{},
		batch: func(ctx context.Context, _ *dburl.DB, cursor any, now time.Time, limit int) (int, any, time.Duration, time.Duration, error) {
			t0 := time.Now()
			n, last, err := store.DeleteExpired(ctx, cursor.(time.Time), now, limit)
			if err != nil || n == 0 {
				return 0, nil, 0, time.Since(t0), err
			}
			return n, last, 0, time.Since(t0), nil
		},
	}
}
