// Package ratelog writes log lines for failures that can repeat on every
// request (a database outage, a cache that is down) at most once per
// interval per class, with the number of lines suppressed since the last
// one, so an outage costs a few lines rather than one per request.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultInterval is the least time between two lines of one class.
const DefaultInterval = time.Minute

// maxClasses bounds the classes a Limiter tracks (classes may carry request
// paths); past it, new classes share the class "other".
const maxClasses = 256

// Limiter rate-limits log lines by class. The zero value is ready to use
// with DefaultInterval; it is safe for concurrent use. Cost per call: one
// mutex and a map lookup; a line only when one is due.
type Limiter struct {
	// Interval is the least time between two lines of one class; 0 means
	// DefaultInterval.
	Interval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	classes map[string]*state
}

type state struct {
	last       time.Time
	suppressed int
}

// Log writes msg with args at level to logger (nil: slog.Default()) unless
// a line of the same class went out less than Interval ago; then it counts
// the line as suppressed. A line that goes out carries "suppressed": the
// count since the last line of its class. It reports whether it wrote.
func (l *Limiter) Log(ctx context.Context, logger *slog.Logger, level slog.Level, class, msg string, args ...any) bool {
	now := time.Now()
	if l.Now != nil {
		now = l.Now()
	}
	every := l.Interval
	if every <= 0 {
		every = DefaultInterval
	}
	l.mu.Lock()
	if l.classes == nil {
		l.classes = map[string]*state{}
	}
	c := l.classes[class]
	if c == nil && len(l.classes) >= maxClasses {
		class = "other" // bounded memory whatever the classes
		c = l.classes[class]
	}
	if c == nil {
		c = &state{}
		l.classes[class] = c
	}
	if !c.last.IsZero() && now.Sub(c.last) < every {
		c.suppressed++
		l.mu.Unlock()
		return false
	}
	n := c.suppressed
	c.last, c.suppressed = now, 0
	l.mu.Unlock()
	if logger == nil {
		logger = slog.Default()
	}
	logger.Log(ctx, level, msg, append(args, "class", class, "suppressed", n)...)
	return true
}
