//go:build ignore

// This is bench/cmd/load/options.go for commit a410656 (before
// CachedOptions.Keys), used by bench/before/run.

package main

import "github.com/qsessions/qsessions/backend"

// cachedOptions are cached_db's options: a key prefix of the run's own.
// Entries were not authenticated at a410656.
func cachedOptions(prefix string) backend.CachedOptions {
	return backend.CachedOptions{Prefix: prefix}
}
