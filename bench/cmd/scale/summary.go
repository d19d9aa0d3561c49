package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"entgo.io/ent/dialect"

	"github.com/qsessions/qsessions/dburl"
)

// result is what one database's run measured, for the summary.
type result struct {
	label                 string
	sessions              int
	fill                  time.Duration
	size                  string
	get                   time.Duration
	lookup, lookupUnknown time.Duration
	lookupStmts           float64
	cleared               int
	clearTook             time.Duration
	before, during        []time.Duration // readers' latencies, sorted
	innodb                string
}

// cur is the run being measured.
var cur = &result{}

// tableSize describes the session table's size on disk: rows and indexes.
func tableSize(ctx context.Context, db *dburl.DB) string {
	var data, index int64
	var err error
	switch db.Dialect {
	case dialect.Postgres:
		err = db.SQL.QueryRowContext(ctx, `SELECT pg_table_size('qsessions_session'), pg_indexes_size('qsessions_session')`).Scan(&data, &index)
	case dialect.MySQL:
		err = db.SQL.QueryRowContext(ctx, `SELECT data_length, index_length FROM information_schema.TABLES
WHERE table_schema = DATABASE() AND table_name = 'qsessions_session'`).Scan(&data, &index)
	case dialect.SQLite:
		// The dbstat virtual table is not always compiled in: the whole file.
		err = db.SQL.QueryRowContext(ctx, `SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()`).Scan(&data)
		if err == nil {
			return fmt.Sprintf("%.0f MB (the whole file, users included)", float64(data)/1e6)
		}
	}
	if err != nil {
		return "? (" + err.Error() + ")"
	}
	return fmt.Sprintf("%.0f MB of rows + %.0f MB of indexes", float64(data)/1e6, float64(index)/1e6)
}

// pct returns the q-quantile of sorted latencies.
func pct(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[min(int(float64(len(lat))*q), len(lat)-1)]
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2f ms", float64(d)/1e6)
}

// summary is the Markdown table of the runs, one line per database.
func summary(rs []*result) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("| database | sessions | table | public-id lookup: live (statements) / unknown id | ClearExpired | readers' Get before → during the cleanup: p50, p99, max | InnoDB during the cleanup |\n")
	p("| --- | ---: | --- | --- | --- | --- | --- |\n")
	for _, r := range rs {
		lat := func(l []time.Duration) string {
			if len(l) == 0 {
				return "–"
			}
			return fmt.Sprintf("%s, %s, %s", ms(pct(l, 0.5)), ms(pct(l, 0.99)), ms(l[len(l)-1]))
		}
		clear := "–"
		if r.clearTook > 0 {
			clear = fmt.Sprintf("%d rows in %s: **%.0f rows/s**", r.cleared, ms(r.clearTook), float64(r.cleared)/r.clearTook.Seconds())
		}
		look := "–"
		if r.lookup > 0 {
			look = fmt.Sprintf("%s (%.0f) / %s", ms(r.lookup), r.lookupStmts, ms(r.lookupUnknown))
		}
		innodb := r.innodb
		if innodb == "" {
			innodb = "–"
		}
		p("| %s | %d | %s | %s | %s | %s → %s | %s |\n", r.label, r.sessions, r.size, look, clear, lat(r.before), lat(r.during), innodb)
	}
	return b.String()
}
