package main

import (
	"crypto/rand"

	"github.com/qsessions/qsessions/backend"
)

// cachedOptions are cached_db's options: a key prefix of the run's own and
// a random key that authenticates the entries, as an app in production
// runs it (the MAC is part of the cost of a cache read).
func cachedOptions(prefix string) backend.CachedOptions {
	key := make([]byte, backend.MinKeyLen)
	_, _ = rand.Read(key)
	return backend.CachedOptions{Prefix: prefix, Keys: [][]byte{key}}
}
