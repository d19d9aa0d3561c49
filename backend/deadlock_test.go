package backend_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/qsessions/qsessions/backend"
)

// TestRetryDeadlock: a statement ended by deadlocks runs again, up to
// DeadlockAttempts times; any other error, or success, ends the retries;
// an ended context stops the waiting and names both errors.
func TestRetryDeadlock(t *testing.T) {
	deadlock := errors.New("Error 1213 (40001): Deadlock found when trying to get lock; try restarting transaction")
	other := errors.New("Error 1062: Duplicate entry")
	for _, tc := range []struct {
		name  string
		fails []error // what each run returns, in order; then nil
		runs  int
		want  error
	}{
		{"success", nil, 1, nil},
		{"two deadlocks then success", []error{deadlock, deadlock}, 3, nil},
		{"other error at once", []error{other, deadlock}, 1, other},
		{"deadlock then other", []error{deadlock, other}, 2, other},
		{"deadlocks every time", []error{deadlock, deadlock, deadlock, deadlock, deadlock, deadlock}, backend.DeadlockAttempts, deadlock},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs := 0
			err := backend.RetryDeadlock(context.Background(), func() error {
				runs++
				if runs <= len(tc.fails) {
					return fmt.Errorf("deleting: %w", tc.fails[runs-1])
				}
				return nil
			})
			if runs != tc.runs || !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("%d runs, %v; want %d runs, %v", runs, err, tc.runs, tc.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	runs := 0
	err := backend.RetryDeadlock(ctx, func() error { runs++; return deadlock })
	if runs != 1 || !errors.Is(err, context.Canceled) || !errors.Is(err, deadlock) {
		t.Fatalf("with an ended context: %d runs, %v; want 1 run, both errors", runs, err)
	}
}
