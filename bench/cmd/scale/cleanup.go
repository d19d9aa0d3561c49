package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dburl"
)

// readers runs n goroutines that load random live sessions by key (the
// request path: Store.Get) until stop is called, which returns their
// latencies, sorted.
func readers(ctx context.Context, store backend.Store, keys []string, now time.Time, n int) (stop func() ([]time.Duration, error)) {
	var (
		done  atomic.Bool
		wg    sync.WaitGroup
		mu    sync.Mutex
		lat   []time.Duration
		first error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
			var mine []time.Duration
			for !done.Load() {
				k := keys[rng.IntN(len(keys))]
				t0 := time.Now()
				_, err := store.Get(ctx, k, now)
				mine = append(mine, time.Since(t0))
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	return func() ([]time.Duration, error) {
		done.Store(true)
		wg.Wait()
		slices.Sort(lat)
		return lat, first
	}
}

// latencyLine summarises sorted latencies.
func latencyLine(lat []time.Duration, took time.Duration) string {
	if len(lat) == 0 {
		return "no reads"
	}
	p := func(q float64) time.Duration {
		return lat[min(int(float64(len(lat))*q), len(lat)-1)].Round(time.Microsecond)
	}
	return fmt.Sprintf("%d reads (%.0f/s), p50 %v, p99 %v, max %v", len(lat), float64(len(lat))/took.Seconds(), p(0.5), p(0.99), lat[len(lat)-1].Round(time.Microsecond))
}

// innodb is a snapshot of the InnoDB counters the cleanup diagnosis reads.
type innodb struct {
	lockWaits, lockTimeMs    int64 // Innodb_row_lock_waits, Innodb_row_lock_time
	poolReads, poolRequests  int64 // Innodb_buffer_pool_reads (from disk), _read_requests
	rowsDeleted, historyList int64 // Innodb_rows_deleted, Innodb_history_list_length
	logWritten, pagesFlushed int64 // Innodb_os_log_written (bytes of redo), Innodb_buffer_pool_pages_flushed
}

// innodbStatus reads the counters (global: other clients of the server
// count too).
func innodbStatus(ctx context.Context, db *sql.DB) (innodb, error) {
	var s innodb
	rows, err := db.QueryContext(ctx, `SHOW GLOBAL STATUS WHERE Variable_name IN
('Innodb_row_lock_waits', 'Innodb_row_lock_time', 'Innodb_buffer_pool_reads',
'Innodb_buffer_pool_read_requests', 'Innodb_rows_deleted', 'Innodb_history_list_length',
'Innodb_os_log_written', 'Innodb_buffer_pool_pages_flushed')`)
	if err != nil {
		return s, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			return s, err
		}
		switch strings.ToLower(name) {
		case "innodb_row_lock_waits":
			s.lockWaits = v
		case "innodb_row_lock_time":
			s.lockTimeMs = v
		case "innodb_buffer_pool_reads":
			s.poolReads = v
		case "innodb_buffer_pool_read_requests":
			s.poolRequests = v
		case "innodb_rows_deleted":
			s.rowsDeleted = v
		case "innodb_history_list_length":
			s.historyList = v
		case "innodb_os_log_written":
			s.logWritten = v
		case "innodb_buffer_pool_pages_flushed":
			s.pagesFlushed = v
		}
	}
	return s, rows.Err()
}

// historyWatch samples InnoDB's history list length every second until
// stop, which returns the largest value seen.
func historyWatch(ctx context.Context, db *sql.DB) (stop func() int64) {
	var peak atomic.Int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			if s, err := innodbStatus(ctx, db); err == nil && s.historyList > peak.Load() {
				peak.Store(s.historyList)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		<-finished
		return peak.Load()
	}
}

// innodbDelta describes what changed between two snapshots over rows
// deleted rows.
func innodbDelta(a, b innodb, rows int) string {
	return fmt.Sprintf("row lock waits %d (%d ms), buffer pool reads from disk %d (%.2f per deleted row) of %d page requests, redo written %.0f MB (%.0f bytes per deleted row), pages flushed %d (%.2f per deleted row)",
		b.lockWaits-a.lockWaits, b.lockTimeMs-a.lockTimeMs, b.poolReads-a.poolReads,
		float64(b.poolReads-a.poolReads)/float64(max(rows, 1)), b.poolRequests-a.poolRequests,
		float64(b.logWritten-a.logWritten)/1e6, float64(b.logWritten-a.logWritten)/float64(max(rows, 1)),
		b.pagesFlushed-a.pagesFlushed, float64(b.pagesFlushed-a.pagesFlushed)/float64(max(rows, 1)))
}

// waitPurge waits (at most 10 minutes) until InnoDB's history list is
// short, so that one cleanup variant does not start in the purge backlog of
// the previous one.
func waitPurge(ctx context.Context, db *sql.DB) error {
	start := time.Now()
	for {
		s, err := innodbStatus(ctx, db)
		if err != nil {
			return err
		}
		if s.historyList < 100 {
			fmt.Printf("  purge caught up (history list %d) after %v\n", s.historyList, time.Since(start).Round(time.Second))
			return nil
		}
		if time.Since(start) > 10*time.Minute {
			fmt.Printf("  purge still behind after 10 min (history list %d); going on\n", s.historyList)
			return nil
		}
		time.Sleep(time.Second)
	}
}

// cleanupVariant is one way to delete expired rows in batches, in plain
// SQL, to find out where a cleanup's time goes.
type cleanupVariant struct {
	name string
	doc  string
	// mysqlOnly marks a statement Postgres does not have.
	mysqlOnly bool
	// start is the first batch's cursor.
	start any
	// batch deletes one batch from cursor on and returns how many rows went,
	// the next cursor, and the time of its SELECT and DELETE.
	batch func(ctx context.Context, db *dburl.DB, cursor any, now time.Time, limit int) (n int, next any, sel, del time.Duration, err error)
}

// cleanupVariants are the variants -variants chooses from.
var cleanupVariants = []cleanupVariant{
	{
		name: "offset",
		doc:  "the library's statements at a410656: SELECT keys WHERE expire_date <= now ORDER BY expire_date LIMIT n, then DELETE WHERE key IN (...) AND expire_date <= now",
		batch: func(ctx context.Context, db *dburl.DB, _ any, now time.Time, limit int) (int, any, time.Duration, time.Duration, error) {
			return selectDelete(ctx, db, "expire_date <= "+ph(db, 1), "expire_date", []any{now}, now, limit)
		},
	},
	{
		name:  "keyset",
		doc:   "the same, each SELECT starting at the last expire_date seen: WHERE expire_date >= last AND expire_date <= now (the library's since 33aad0f)",
		start: time.Unix(0, 0).UTC(),
		batch: func(ctx context.Context, db *dburl.DB, cursor any, now time.Time, limit int) (int, any, time.Duration, time.Duration, error) {
			return selectDelete(ctx, db, "expire_date >= "+ph(db, 1)+" AND expire_date <= "+ph(db, 2), "expire_date", []any{cursor, now}, now, limit)
		},
	},
	{
		name:  "pk-walk",
		doc:   "walk the primary key in order: SELECT keys WHERE session_key > last AND expire_date <= now ORDER BY session_key LIMIT n, then the same DELETE (reads live rows too: one pass over the whole table)",
		start: "",
		batch: func(ctx context.Context, db *dburl.DB, cursor any, now time.Time, limit int) (int, any, time.Duration, time.Duration, error) {
			return selectDelete(ctx, db, "session_key > "+ph(db, 1)+" AND expire_date <= "+ph(db, 2), "session_key", []any{cursor, now}, now, limit)
		},
	},
	{
		name:      "delete-limit",
		doc:       "MySQL only, not portable: DELETE WHERE expire_date <= now ORDER BY expire_date LIMIT n (no keys read)",
		mysqlOnly: true,
		batch: func(ctx context.Context, db *dburl.DB, _ any, now time.Time, limit int) (int, any, time.Duration, time.Duration, error) {
			t0 := time.Now()
			res, err := db.SQL.ExecContext(ctx, "DELETE FROM qsessions_session WHERE expire_date <= ? ORDER BY expire_date LIMIT ?", now, limit)
			if err != nil {
				return 0, nil, 0, 0, err
			}
			n, err := res.RowsAffected()
			return int(n), nil, 0, time.Since(t0), err
		},
	},
}

// ph is the n-th placeholder of db's dialect.
func ph(db *dburl.DB, n int) string {
	if db.Dialect == dialect.Postgres {
		return fmt.Sprintf("$%d", n)
	}
	return "?"
}

// selectDelete selects at most limit keys matching where in order of the
// column order, then deletes them (still expired at now). It returns the
// last value of order seen as the next cursor.
func selectDelete(ctx context.Context, db *dburl.DB, where, order string, args []any, now time.Time, limit int) (int, any, time.Duration, time.Duration, error) {
	t0 := time.Now()
	rows, err := db.SQL.QueryContext(ctx, fmt.Sprintf(
		"SELECT session_key, expire_date FROM qsessions_session WHERE %s ORDER BY %s LIMIT %d", where, order, limit), args...)
	if err != nil {
		return 0, nil, 0, 0, err
	}
	var keys []any
	var key string
	var exp time.Time
	for rows.Next() {
		if err := rows.Scan(&key, &exp); err != nil {
			rows.Close()
			return 0, nil, 0, 0, err
		}
		keys = append(keys, key)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, nil, 0, 0, err
	}
	sel := time.Since(t0)
	if len(keys) == 0 {
		return 0, nil, sel, 0, nil
	}
	var next any = exp
	if order == "session_key" {
		next = key
	}
	marks := make([]string, len(keys))
	for i := range keys {
		marks[i] = ph(db, i+1)
	}
	t1 := time.Now()
	res, err := db.SQL.ExecContext(ctx, fmt.Sprintf("DELETE FROM qsessions_session WHERE session_key IN (%s) AND expire_date <= %s",
		strings.Join(marks, ", "), ph(db, len(keys)+1)), append(keys, now)...)
	if err != nil {
		return 0, nil, 0, 0, err
	}
	n, err := res.RowsAffected()
	return int(n), next, sel, time.Since(t1), err
}

// runVariant restores the expired rows from the backup table, waits for
// InnoDB's purge, and clears them with v while opts.readers goroutines load
// live sessions through readStore, printing where the time went.
func runVariant(ctx context.Context, db *dburl.DB, v cleanupVariant, now time.Time, limit int, readStore backend.Store, liveKeys []string) error {
	fmt.Printf("\ncleanup variant %q: %s\n", v.name, v.doc)
	start := time.Now()
	res, err := db.SQL.ExecContext(ctx, "INSERT INTO qsessions_session SELECT * FROM qs_scale_expired")
	if err != nil {
		return fmt.Errorf("restoring the expired rows: %w", err)
	}
	restored, _ := res.RowsAffected()
	fmt.Printf("  restored %d expired rows in %v\n", restored, time.Since(start).Round(time.Millisecond))
	if err := analyze(ctx, db); err != nil {
		return err
	}
	mysql := db.Dialect == dialect.MySQL
	var before innodb
	var stopWatch func() int64
	if mysql {
		if err := waitPurge(ctx, db.SQL); err != nil {
			return err
		}
		if before, err = innodbStatus(ctx, db.SQL); err != nil {
			return err
		}
		stopWatch = historyWatch(ctx, db.SQL)
	}
	var stopReaders func() ([]time.Duration, error)
	if opts.readers > 0 {
		stopReaders = readers(ctx, readStore, liveKeys, now, opts.readers)
	}
	var (
		total      int
		sel, del   time.Duration
		batchTimes []time.Duration
		cursor     = v.start
	)
	start = time.Now()
	for {
		t0 := time.Now()
		n, next, s, d, err := v.batch(ctx, db, cursor, now, limit)
		if err != nil {
			if stopWatch != nil {
				stopWatch()
			}
			if stopReaders != nil {
				_, _ = stopReaders()
			}
			return err
		}
		if n == 0 && next == nil {
			break
		}
		batchTimes = append(batchTimes, time.Since(t0))
		total += n
		sel += s
		del += d
		cursor = next
	}
	took := time.Since(start)
	fmt.Printf("  cleared %d rows in %v: %.0f rows/s; SELECTs %v, DELETEs %v, %d batches\n",
		total, took.Round(time.Millisecond), float64(total)/took.Seconds(), sel.Round(time.Millisecond), del.Round(time.Millisecond), len(batchTimes))
	if stopReaders != nil {
		lat, err := stopReaders()
		if err != nil {
			return err
		}
		fmt.Printf("  readers during the cleanup: %s\n", latencyLine(lat, took))
	}
	fmt.Printf("  time per batch, by tenth of the run: %s\n", tenths(batchTimes))
	if mysql {
		after, err := innodbStatus(ctx, db.SQL)
		if err != nil {
			return err
		}
		fmt.Printf("  %s; history list peak %d\n", innodbDelta(before, after, total), stopWatch())
	}
	if int64(total) != restored {
		return fmt.Errorf("variant %s cleared %d rows of %d", v.name, total, restored)
	}
	return nil
}

// tenths returns the mean batch time of each tenth of the batches.
func tenths(ts []time.Duration) string {
	if len(ts) == 0 {
		return "-"
	}
	var out []string
	for i := range 10 {
		lo, hi := i*len(ts)/10, (i+1)*len(ts)/10
		if hi <= lo {
			continue
		}
		var sum time.Duration
		for _, t := range ts[lo:hi] {
			sum += t
		}
		out = append(out, fmt.Sprintf("%.1f", float64(sum.Microseconds())/float64(hi-lo)/1000))
	}
	return strings.Join(out, " / ") + " ms"
}

// backupExpired copies the expired rows into qs_scale_expired, so that
// the cleanup variants can restore them.
func backupExpired(ctx context.Context, db *dburl.DB, now time.Time) error {
	start := time.Now()
	q := "CREATE TABLE qs_scale_expired AS SELECT * FROM qsessions_session WHERE expire_date <= " + ph(db, 1)
	if _, err := db.SQL.ExecContext(ctx, q, now); err != nil {
		return fmt.Errorf("backing up the expired rows: %w", err)
	}
	fmt.Printf("backed up the expired rows for the cleanup variants in %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}
