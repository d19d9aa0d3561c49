package backend

import (
	"context"
	"sync"
	"sync/atomic"
)

// Invalidators is the list of Invalidators a Store reports to (see
// Store.AddInvalidator). Stores embed it; the zero value is an empty list.
// Reading the list on every hook call costs one atomic load; adding and
// removing copy it.
type Invalidators struct {
	mu   sync.Mutex
	list atomic.Pointer[[]*Invalidator]
}

// Add adds inv and returns a func that removes it (calling it again does
// nothing).
func (l *Invalidators) Add(inv Invalidator) (remove func()) {
	p := &inv
	l.mu.Lock()
	cur := l.load()
	next := append(append(make([]*Invalidator, 0, len(cur)+1), cur...), p)
	l.list.Store(&next)
	l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			cur := l.load()
			next := make([]*Invalidator, 0, len(cur))
			for _, q := range cur {
				if q != p {
					next = append(next, q)
				}
			}
			l.list.Store(&next)
		})
	}
}

func (l *Invalidators) load() []*Invalidator {
	if p := l.list.Load(); p != nil {
		return *p
	}
	return nil
}

// Active reports whether anyone listens: hooks read no keys when no one does.
func (l *Invalidators) Active() bool { return len(l.load()) > 0 }

// Invalidate tells every listener about keys.
func (l *Invalidators) Invalidate(ctx context.Context, keys []string) {
	if len(keys) == 0 {
		return
	}
	for _, p := range l.load() {
		(*p).Invalidate(ctx, keys)
	}
}
