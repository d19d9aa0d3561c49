package alerts

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/qsessions/qsessions"
)

// MemLog is a qsessions.EventLog in memory, for tests and for trying the
// alerts out: it is lost when the process ends and is not shared between
// processes, so a real app keeps its log in the database (the generated
// New<Event>Log). Events of anonymous sessions are not kept, as in the
// generated log. It is safe for concurrent use.
type MemLog struct {
	mu     sync.Mutex
	events []qsessions.LoggedEvent // in the order appended
}

var _ qsessions.EventLog = (*MemLog)(nil)

// NewMemLog returns an empty MemLog.
func NewMemLog() *MemLog { return &MemLog{} }

// Append implements qsessions.EventLog. Cost: one append under a mutex.
func (l *MemLog) Append(_ context.Context, e qsessions.LoggedEvent) error {
	if e.UserID == nil {
		return nil
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	return nil
}

// Recent implements qsessions.EventLog: userID's events at or after since,
// newest first (the later appended first among equal times), at most
// limit. Cost: a scan of every event.
func (l *MemLog) Recent(_ context.Context, userID any, since time.Time, limit int) ([]qsessions.LoggedEvent, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []qsessions.LoggedEvent
	for i := len(l.events) - 1; i >= 0; i-- {
		if e := l.events[i]; e.UserID == userID && !e.Time.Before(since) {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b qsessions.LoggedEvent) int { return b.Time.Compare(a.Time) })
	if limit >= 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// DeleteBefore implements qsessions.EventLog: it deletes at most limit of
// the events older than t, first appended first. Cost: a scan of every
// event.
func (l *MemLog) DeleteBefore(_ context.Context, t time.Time, limit int) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	l.events = slices.DeleteFunc(l.events, func(e qsessions.LoggedEvent) bool {
		if n < limit && e.Time.Before(t) {
			n++
			return true
		}
		return false
	})
	return n, nil
}

// Len returns how many events the log holds.
func (l *MemLog) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}
