package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/qsessions/qsessions/entschema"
)

func init() {
	commands["clear-expired"] = command{
		summary: "delete expired sessions in batches (plain SQL on any app's qsessions_session)",
		run:     runClearExpired,
	}
}

const clearExpiredUsage = `usage:
  qsessions clear-expired --db URL [--batch N] [--quiet]

Deletes every session whose expiry has passed, N rows at a time (default
1000): each batch selects N expired keys on the expire_date index and
deletes them by key, two short statements that never hold a long lock and
work alike on PostgreSQL, MySQL/MariaDB and SQLite. Live sessions are not
touched, and neither is any cache (expired sessions are never served).
Progress is shown on a terminal; the count is printed at the end. Run it
from cron, or use Manager.StartCleaner in the app instead.
`

// Bounds of --batch: a batch is one IN list of that many placeholders.
const (
	defaultClearBatch = 1000
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
	t, err := openSessionDB(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer t.Close()
	progress := func(int) {}
	if !*quiet && isTerminal(stderr) {
		progress = func(n int) { fmt.Fprintf(stderr, "\rdeleted %d expired sessions...", n) }
		defer fmt.Fprint(stderr, "\r\033[K")
	}
	start := time.Now()
	n, err := t.clearExpired(ctx, dbNow(), *batch, progress)
	if err != nil {
		fmt.Fprintf(stdout, "deleted %d expired sessions before the error\n", n)
		return err
	}
	fmt.Fprintf(stdout, "deleted %d expired session%s in %v\n", n, pluralS(n), time.Since(start).Round(time.Millisecond))
	return nil
}

// clearExpired deletes the rows expired at now, batch at a time, calling
// progress with the running total after each batch. It stops at the first
// error or when ctx ends, returning what it deleted so far. Cost per batch:
// one SELECT of batch keys on the expire_date index and one DELETE by key.
func (t *sqlTable) clearExpired(ctx context.Context, now time.Time, batch int, progress func(int)) (int, error) {
	sel := "SELECT " + entschema.ColumnKey + " FROM " + entschema.Table +
		" WHERE " + entschema.ColumnExpireDate + " <= " + t.ph(1) + " LIMIT " + strconv.Itoa(batch)
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("stopped after %d: %w", total, err)
		}
		keys, err := t.keys(ctx, sel, now)
		if err != nil {
			return total, fmt.Errorf("selecting expired sessions: %w", err)
		}
		if len(keys) == 0 {
			return total, nil
		}
		params := make([]any, 0, len(keys)+1)
		for _, k := range keys {
			params = append(params, k)
		}
		params = append(params, now)
		// The expiry is checked again: a row renewed since the SELECT stays.
		res, err := t.db.SQL.ExecContext(ctx, "DELETE FROM "+entschema.Table+
			" WHERE "+entschema.ColumnKey+" IN ("+t.phs(1, len(keys))+") AND "+entschema.ColumnExpireDate+" <= "+t.ph(len(keys)+1), params...)
		if err != nil {
			return total, fmt.Errorf("deleting expired sessions: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("deleting expired sessions: %w", err)
		}
		total += int(n)
		progress(total)
		if len(keys) < batch {
			return total, nil
		}
	}
}
