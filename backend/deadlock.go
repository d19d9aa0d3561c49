package backend

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// IsDeadlock reports whether err says that the database ended the
// statement (or its transaction) to break a deadlock, having written
// nothing of it: PostgreSQL's deadlock_detected (SQLSTATE 40P01, through
// the SQLState method of pgx's and lib/pq's errors) and MySQL/MariaDB's
// ER_LOCK_DEADLOCK (1213, recognised by go-sql-driver/mysql's text,
// without importing it). A statement that failed so may be run again.
func IsDeadlock(err error) bool {
	if err == nil {
		return false
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) && st.SQLState() == "40P01" {
		return true
	}
	return strings.Contains(err.Error(), "Error 1213")
}

// DeadlockAttempts is how many times RetryDeadlock runs a statement that
// the database keeps ending to break deadlocks. Concurrent logins of one
// user on MySQL/MariaDB (each INSERT's gap locks against the other's
// DELETE of old sessions) can deadlock two or three times in a row.
const DeadlockAttempts = 5

// RetryDeadlock runs fn until it succeeds, fails otherwise than by a
// deadlock (IsDeadlock), or has run DeadlockAttempts times, and returns
// its last error. Between runs it waits a random 1–4 ms times the
// attempt's number, so that the two sides of the deadlock do not meet
// again, or until ctx ends (then ctx's error, wrapped with fn's). Cost:
// fn's; the waits only after deadlocks.
func RetryDeadlock(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !IsDeadlock(err) || attempt == DeadlockAttempts {
			return err
		}
		wait := time.Duration(attempt) * time.Duration(1000+rand.IntN(3000)) * time.Microsecond
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (after: %w)", ctx.Err(), err)
		}
	}
}
