package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/qsessions/qsessions/backend"
)

func init() {
	commands["clear-expired"] = command{
		summary: "delete expired sessions in batches (any app's qsessions_session)",
		run:     runClearExpired,
	}
}

const clearExpiredUsage = `usage:
  qsessions clear-expired --db URL [--batch N] [--quiet]

Deletes every session whose expiry has passed, N rows at a time (default
1000), with the engine's cleanup (Manager.ClearExpired, as the app's
cleaner runs it): each batch selects N expired keys in expire_date order on
its index, starting where the last batch ended, and deletes them by key,
two short statements that never hold a long lock and work alike on
PostgreSQL, MySQL/MariaDB and SQLite. Live sessions are not touched, and
neither is any cache (expired sessions are never served). Progress is
shown on a terminal; the count is printed at the end. Run it from cron, or
use Manager.StartCleaner in the app instead.
`

// Bounds of --batch: a batch is one IN list of that many placeholders.
const (
	defaultClearBatch = backend.DefaultBatchSize
	maxClearBatch     = 10000
)

func runClearExpired(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qsessions clear-expired", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, clearExpiredUsage); fs.PrintDefaults() }
	dbURL := fs.String("db", "", "database URL: postgres://, mysql://, maria:// or sqlite:// (required)")
	batch := fs.Int("batch", defaultClearBatch, "rows per batch, 1 to "+strconv.Itoa(maxClearBatch))
	quiet := fs.Bool("quiet", false, "no progress output even on a terminal")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *batch < 1 || *batch > maxClearBatch {
		return fmt.Errorf("--batch %d: must be between 1 and %d", *batch, maxClearBatch)
	}
	sdb, err := openSessionDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer sdb.Close()
	var progress func(int)
	if !*quiet && isTerminal(stderr) {
		progress = func(n int) { fmt.Fprintf(stderr, "\rdeleted %d expired sessions...", n) }
		defer fmt.Fprint(stderr, "\r\033[K")
	}
	start := time.Now()
	n, err := clearExpired(ctx, sdb.store, time.Now(), *batch, progress)
	if err != nil {
		fmt.Fprintf(stdout, "deleted %d expired sessions before the error\n", n)
		return unprefixed(err)
	}
	noun := "sessions"
	if n == 1 {
		noun = "session"
	}
	fmt.Fprintf(stdout, "deleted %d expired %s in %v\n", n, noun, time.Since(start).Round(time.Millisecond))
	return nil
}

// clearExpired deletes the rows of store expired at now through a
// Manager over the db backend (Manager.ClearExpired), batch rows at a
// time, calling progress (if not nil) with the running total after each
// batch. It stops at the first error or when ctx ends, returning what it
// deleted so far. Cost per batch: one SELECT of batch keys on the
// expire_date index and one DELETE by key.
func clearExpired(ctx context.Context, store backend.Store, now time.Time, batch int, progress func(int)) (int, error) {
	m := manager(&backend.DB{Store: store, BatchSize: batch, Progress: progress})
	m.Now = func() time.Time { return now }
	return m.ClearExpired(ctx)
}
