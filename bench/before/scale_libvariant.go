//go:build ignore

// This is bench/cmd/scale/libvariant.go for commit a410656, whose
// Store.DeleteExpired had no cursor. Used by bench/before/run.

package main

import (
	"context"
	"time"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dburl"
)

// libraryVariant is the cleanup as the library ran it at a410656
// (Store.DeleteExpired batches through ent, each SELECT from the oldest
// expired row), as a variant.
func libraryVariant(store backend.Store) cleanupVariant {
	return cleanupVariant{
		name: "library",
		doc:  "Store.DeleteExpired batches (ent), as backend.ClearExpired ran them at a410656",
		batch: func(ctx context.Context, _ *dburl.DB, _ any, now time.Time, limit int) (int, any, time.Duration, time.Duration, error) {
			t0 := time.Now()
			n, err := store.DeleteExpired(ctx, now, limit)
			if err != nil || n == 0 {
				return 0, nil, 0, time.Since(t0), err
			}
			return n, now, 0, time.Since(t0), nil
		},
	}
}
