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

// Active reports whether anyone listens: hooks read no keys when no one
// does. An EndListener listens only while its Listening says so.
func (l *Invalidators) Active() bool {
	for _, p := range l.load() {
		if el, ok := (*p).(EndListener); !ok || el.Listening() {
			return true
		}
	}
	return false
}

// Invalidate tells every listener about keys: after the statement and again
// on commit inside a transaction.
func (l *Invalidators) Invalidate(ctx context.Context, keys []string) {
	if len(keys) == 0 {
		return
	}
	for _, p := range l.load() {
		(*p).Invalidate(ctx, keys)
	}
}

// Ended tells the EndListeners that listen whose sessions ended, once the
// change is committed (after the statement outside a transaction).
func (l *Invalidators) Ended(ctx context.Context, ended []Ended) {
	if len(ended) == 0 {
		return
	}
	for _, p := range l.load() {
		if el, ok := (*p).(EndListener); ok && el.Listening() {
			el.SessionsEnded(ctx, ended)
		}
	}
}

// Ended is a live session that ended through ent outside the session API
// (a delete by predicate, an update that ended it, its user deleted).
type Ended struct {
	// Key is the session's stored key.
	Key string
	// UserID is its owner in the app's ID type, nil for an anonymous one.
	UserID any
}

// EndListener is an Invalidator that also wants to know, once the change
// is committed, which users' sessions ended through ent: the Manager is one
// when its OnEvent is set, to report those revokes. Listening says whether
// it wants reports now; the hooks read nothing for it otherwise.
type EndListener interface {
	Invalidator
	SessionsEnded(ctx context.Context, ended []Ended)
	Listening() bool
}
