package testutil

import (
	"context"
	"slices"
	"sync"
)

// Recorder is a backend.Invalidator that records every call.
type Recorder struct {
	mu    sync.Mutex
	calls [][]string
}

// Invalidate records keys.
func (r *Recorder) Invalidate(_ context.Context, keys []string) {
	r.mu.Lock()
	r.calls = append(r.calls, slices.Clone(keys))
	r.mu.Unlock()
}

// Calls returns each call's keys, sorted within a call, and clears the record.
func (r *Recorder) Calls() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	for _, c := range out {
		slices.Sort(c)
	}
	return out
}
