// Command scale fills a fresh qsessions_session table with many sessions
// (default 1,000,000 over 100,000 users, half of them expired) on Postgres
// and MariaDB/MySQL, then measures the queries whose cost must not grow
// with the table: a user's session list, a load by key, the lookup of a
// session by its public id, and clearing the expired rows in batches
// (ClearExpired, with -readers goroutines loading live sessions meanwhile:
// their latency before and during the cleanup, and on MySQL the row lock
// waits, buffer pool reads and InnoDB history list length). It prints each
// query's EXPLAIN plan, so a lost index shows.
//
// With -variants it then restores the expired rows (from a copy taken
// before the cleanup) and clears them again with plain-SQL variants of the
// cleanup batch, timing each batch's SELECT and DELETE, to show where a
// cleanup's time goes: "offset" (the library's statements), "keyset" (each
// SELECT starts at the last expire_date seen), "pk-walk" (batches in
// primary-key order), on MySQL "delete-limit" (DELETE ... ORDER BY
// expire_date LIMIT n), and "library" (the Store's own DeleteExpired
// batches, through ent, in the same conditions as the others).
//
//	go run ./cmd/scale                      # both servers, defaults
//	go run ./cmd/scale -dialects postgres -sessions 200000 -users 20000
//	go run ./cmd/scale -dialects mysql -variants offset,keyset,delete-limit
//	go run ./cmd/scale -dialects postgres,mysql,sqlite,mariadb:128M,mariadb:2G -markdown scale.md
//
// Servers come from QSESSIONS_TEST_POSTGRES and QSESSIONS_TEST_MYSQL (the
// tests' defaults otherwise); "sqlite" is a file in a temp directory;
// "mariadb:<size>[:<log size>]" starts a private mariadbd (mariadb-install-db
// into a temp directory, a free loopback port) with MariaDB's defaults but
// innodb_buffer_pool_size <size> (and innodb_log_file_size <log size>), and
// stops it afterwards: the shared servers are never reconfigured. Each run works in a new schema
// (Postgres), database (MySQL) or file (SQLite) and drops it at the end
// unless -keep is given. At the end it prints a summary, one line per
// database (with -markdown, also to a file).
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"flag"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/internal/testutil"
)

func main() {
	dialects := flag.String("dialects", "postgres,mysql", "comma-separated: postgres, mysql (the shared servers), sqlite, mariadb:<buffer pool size>[:<redo log size>] (a private mariadbd)")
	markdown := flag.String("markdown", "", "also write the summary table to this file")
	sessions := flag.Int("sessions", 1_000_000, "sessions to insert")
	users := flag.Int("users", 100_000, "users to spread them over")
	expired := flag.Float64("expired", 0.5, "share of sessions already expired")
	batch := flag.Int("batch", 1000, "rows per INSERT")
	keep := flag.Bool("keep", false, "keep the schema/database afterwards")
	flag.IntVar(&opts.readers, "readers", 2, "goroutines loading live sessions by key during the cleanup (0: none)")
	flag.IntVar(&opts.lookups, "lookups", 5, "public-id lookups of random live sessions to average (0: skip)")
	variants := flag.String("variants", "", "cleanup variants to run after ClearExpired (comma-separated: library, offset, keyset, pk-walk, delete-limit)")
	flag.Parse()
	if *variants != "" {
		opts.variants = strings.Split(*variants, ",")
	}
	var results []*result
	for _, d := range strings.Split(*dialects, ",") {
		t, err := newTarget(d)
		if err == nil {
			cur = &result{label: t.label, sessions: *sessions}
			err = run(t, *sessions, *users, *expired, *batch, *keep)
			t.close()
			results = append(results, cur)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "scale %s: %v\n", d, err)
			os.Exit(1)
		}
	}
	sum := summary(results)
	fmt.Printf("\n===== summary\n\n%s", sum)
	if *markdown != "" {
		if err := os.WriteFile(*markdown, []byte(sum), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "scale:", err)
			os.Exit(1)
		}
	}
}

// target is one database server to measure.
type target struct {
	name, label string // the -dialects entry; the server's name for the report
	kind        string // testutil.Postgres, testutil.MySQL or testutil.SQLite
	base        string // the server's URL (SQLite: the file's)
	close       func()
}

// newTarget resolves a -dialects entry, starting a private MariaDB for
// mariadb:<size>.
func newTarget(name string) (target, error) {
	t := target{name: name, close: func() {}}
	switch {
	case name == testutil.Postgres:
		t.kind, t.base = name, testutil.Env("QSESSIONS_TEST_POSTGRES", testutil.DefaultPostgres)
		t.label = "PostgreSQL " + serverVersion(t.base, "SHOW server_version")
	case name == testutil.MySQL:
		t.kind, t.base = name, testutil.Env("QSESSIONS_TEST_MYSQL", testutil.DefaultMySQL)
		t.label = "MariaDB/MySQL " + serverVersion(t.base, "SELECT VERSION()") + " (shared server, innodb_buffer_pool_size " +
			serverVersion(t.base, "SELECT CONCAT(@@innodb_buffer_pool_size DIV 1048576, 'M')") + ")"
	case name == testutil.SQLite:
		dir, err := os.MkdirTemp("", "qsessions-scale-sqlite-")
		if err != nil {
			return t, err
		}
		t.kind, t.base, t.close = name, "sqlite://"+dir+"/scale.db", func() { os.RemoveAll(dir) }
		t.label = "SQLite " + serverVersion(t.base, "SELECT sqlite_version()") + " (mattn/go-sqlite3, WAL, a file on the same disk)"
	case strings.HasPrefix(name, "mariadb:"):
		pool, logSize, _ := strings.Cut(strings.TrimPrefix(name, "mariadb:"), ":")
		fmt.Printf("\nstarting a private mariadbd with innodb_buffer_pool_size %s\n", pool)
		m, err := startMariaDB(pool, logSize)
		if err != nil {
			return t, err
		}
		t.kind, t.base, t.label, t.close = testutil.MySQL, m.URL(), m.Label(), m.Close
	default:
		return t, fmt.Errorf("unknown dialect %q (want postgres, mysql, sqlite or mariadb:<size>)", name)
	}
	return t, nil
}

// serverVersion runs q (one value) on the server at base, or returns "?".
func serverVersion(base, q string) string {
	db, err := dburl.Open(base)
	if err != nil {
		return "?"
	}
	defer db.Close()
	var v string
	if err := db.SQL.QueryRowContext(context.Background(), q).Scan(&v); err != nil {
		return "?"
	}
	return v
}

// opts are the flags of the measurements beyond the fill.
var opts struct {
	readers  int
	lookups  int
	variants []string
}

// run fills and measures one database.
func run(t target, nSessions, nUsers int, expiredShare float64, batch int, keep bool) error {
	ctx := context.Background()
	db, drop, err := freshDB(ctx, t)
	if err != nil {
		return err
	}
	defer db.Close()
	if !keep {
		defer drop()
	}
	fmt.Printf("\n===== %s: %d sessions over %d users, %.0f%% expired (%s)\n", t.label, nSessions, nUsers, expiredShare*100, db.URL)

	plain := ent.NewClient(ent.Driver(entsql.OpenDB(db.Dialect, db.SQL)))
	if err := plain.Schema.Create(ctx); err != nil {
		return fmt.Errorf("creating the schema: %w", err)
	}
	now := backend.Time(time.Now())

	start := time.Now()
	userIDs := make([]int, 0, nUsers)
	for i := 0; i < nUsers; i += batch {
		bs := make([]*ent.UserCreate, 0, batch)
		for j := i; j < min(i+batch, nUsers); j++ {
			bs = append(bs, plain.User.Create().SetUsername(fmt.Sprintf("user%07d", j)))
		}
		us, err := plain.User.CreateBulk(bs...).Save(ctx)
		if err != nil {
			return fmt.Errorf("inserting users: %w", err)
		}
		for _, u := range us {
			userIDs = append(userIDs, u.ID)
		}
	}
	fmt.Printf("users inserted in %v\n", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	data := make([]byte, 150)
	_, _ = rand.Read(data)
	const ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	var someKey string
	var liveKeys []string // every 50th live key, for the readers and lookups
	for i := 0; i < nSessions; i += batch {
		bs := make([]*ent.SessionCreate, 0, batch)
		for j := i; j < min(i+batch, nSessions); j++ {
			var k [32]byte
			_, _ = rand.Read(k[:])
			key := hex.EncodeToString(k[:])
			// Sessions j, j+nUsers, ... belong to one user; within each
			// user's sessions the first expiredShare are expired.
			exp := now.Add(14 * 24 * time.Hour)
			if float64(j) < expiredShare*float64(nSessions) {
				exp = now.Add(-time.Duration(j%86400+1) * time.Second)
			} else {
				if someKey == "" {
					someKey = key
				}
				if j%50 == 0 {
					liveKeys = append(liveKeys, key)
				}
			}
			bs = append(bs, plain.Session.Create().
				SetID(key).
				SetSessionData(data).
				SetExpireDate(exp).
				SetUserID(userIDs[j%nUsers]).
				SetUserAgent(ua).
				SetIP(fmt.Sprintf("10.%d.%d.%d", j>>16&255, j>>8&255, j&255)).
				SetCreatedAt(now.Add(-time.Hour)).
				SetUpdatedAt(now.Add(-time.Hour)).
				SetLastActivity(now.Add(-time.Duration(j%3600)*time.Second)))
		}
		if err := plain.Session.CreateBulk(bs...).Exec(ctx); err != nil {
			return fmt.Errorf("inserting sessions: %w", err)
		}
	}
	cur.fill = time.Since(start)
	fmt.Printf("sessions inserted in %v\n", time.Since(start).Round(time.Millisecond))
	if err := analyze(ctx, db); err != nil {
		return err
	}
	cur.size = tableSize(ctx, db)
	fmt.Printf("table size: %s\n", cur.size)

	// The measured client records its statements, for EXPLAIN.
	drv := testutil.NewCountingDriver(entsql.OpenDB(db.Dialect, db.SQL))
	store := ent.NewSessionStore(ent.NewClient(ent.Driver(drv)), backend.WithClock(func() time.Time { return now }))

	user := userIDs[nUsers/2]
	const reps = 200
	drv.Reset()
	d, n, err := timeIt(reps, func() (int, error) {
		rs, err := store.UserSessions(ctx, user, now)
		return len(rs), err
	})
	if err != nil {
		return err
	}
	fmt.Printf("\nUserSessions(one user): %v/op, %d live sessions\n", d, n)
	if err := explain(ctx, db, drv.Queries()[0]); err != nil {
		return err
	}

	drv.Reset()
	d, _, err = timeIt(reps, func() (int, error) {
		_, err := store.Get(ctx, someKey, now)
		return 1, err
	})
	if err != nil {
		return err
	}
	cur.get = d
	fmt.Printf("\nGet(key): %v/op\n", d)
	if err := explain(ctx, db, drv.Queries()[0]); err != nil {
		return err
	}

	if opts.lookups > 0 {
		if err := publicIDLookup(ctx, db, store, drv, liveKeys); err != nil {
			return err
		}
	}
	if len(opts.variants) > 0 {
		if err := backupExpired(ctx, db, now); err != nil {
			return err
		}
	}
	// The readers load through a store of their own, so that the measured
	// driver records the cleanup's statements only.
	readStore := ent.NewSessionStore(plain, backend.WithClock(func() time.Time { return now }))
	if err := clearExpired(ctx, db, store, readStore, drv, liveKeys, now); err != nil {
		return err
	}
	variants := append([]cleanupVariant{libraryVariant(store)}, cleanupVariants...)
	for _, name := range opts.variants {
		i := slices.IndexFunc(variants, func(v cleanupVariant) bool { return v.name == name })
		if i < 0 {
			return fmt.Errorf("unknown cleanup variant %q", name)
		}
		if v := variants[i]; !v.mysqlOnly || db.Dialect == dialect.MySQL {
			if err := runVariant(ctx, db, v, now, backend.DefaultBatchSize, readStore, liveKeys); err != nil {
				return err
			}
		}
	}
	return nil
}

// clearExpired runs the library's cleanup (backend.ClearExpired over the
// store) with opts.readers goroutines loading live sessions meanwhile, and
// prints its rate, the plan of its first batch's SELECT, the readers'
// latency before and during it and, on MySQL, InnoDB's lock waits, disk
// reads and history list.
func clearExpired(ctx context.Context, db *dburl.DB, store, readStore backend.Store, drv *testutil.CountingDriver, liveKeys []string, now time.Time) error {
	if opts.readers > 0 {
		stop := readers(ctx, readStore, liveKeys, now, opts.readers)
		start := time.Now()
		time.Sleep(3 * time.Second)
		lat, err := stop()
		if err != nil {
			return err
		}
		cur.before = lat
		fmt.Printf("\nreaders (%d goroutines, Store.Get of random live sessions) before the cleanup: %s\n", opts.readers, latencyLine(lat, time.Since(start)))
	}
	mysql := db.Dialect == dialect.MySQL
	var before innodb
	var stopWatch func() int64
	if mysql {
		var err error
		if before, err = innodbStatus(ctx, db.SQL); err != nil {
			return err
		}
		stopWatch = historyWatch(ctx, db.SQL)
	}
	var stopReaders func() ([]time.Duration, error)
	if opts.readers > 0 {
		stopReaders = readers(ctx, readStore, liveKeys, now, opts.readers)
	}
	// After the first batch (half the table still expired), EXPLAIN its
	// SELECT; the EXPLAIN's time is not counted.
	drv.Reset()
	var explained bool
	var explainTook time.Duration
	var explainErr error
	last := time.Now()
	start := time.Now()
	cleared, err := backend.ClearExpired(ctx, store, now, 0, func(total int) {
		if !explained {
			explained = true
			t0 := time.Now()
			fmt.Println("\nplan of a cleanup batch's SELECT (after the first batch, half the table still expired):")
			explainErr = explain(ctx, db, drv.Queries()[0])
			explainTook = time.Since(t0)
		}
		if time.Since(last) > 5*time.Second {
			fmt.Printf("  ... %d cleared\n", total)
			last = time.Now()
		}
	})
	took := time.Since(start) - explainTook
	var lat []time.Duration
	var rerr error
	if stopReaders != nil {
		lat, rerr = stopReaders()
	}
	if err != nil {
		return err
	}
	if explainErr != nil {
		return explainErr
	}
	if rerr != nil {
		return rerr
	}
	cur.cleared, cur.clearTook, cur.during = cleared, took, lat
	fmt.Printf("\nClearExpired: %d rows in %v (%.0f rows/s, batches of %d: a SELECT of keys, a DELETE by key)\n",
		cleared, took.Round(time.Millisecond), float64(cleared)/took.Seconds(), backend.DefaultBatchSize)
	if stopReaders != nil {
		fmt.Printf("readers during the cleanup: %s\n", latencyLine(lat, took))
	}
	if mysql {
		after, err := innodbStatus(ctx, db.SQL)
		if err != nil {
			return err
		}
		peak := stopWatch()
		cur.innodb = fmt.Sprintf("%d row lock waits (%d ms); per deleted row %.2f buffer-pool reads from disk, %.2f pages flushed, %.0f bytes of redo; history list peak %d",
			after.lockWaits-before.lockWaits, after.lockTimeMs-before.lockTimeMs,
			float64(after.poolReads-before.poolReads)/float64(max(cleared, 1)),
			float64(after.pagesFlushed-before.pagesFlushed)/float64(max(cleared, 1)),
			float64(after.logWritten-before.logWritten)/float64(max(cleared, 1)), peak)
		fmt.Printf("InnoDB during the cleanup (global counters): %s; history list peak %d\n", innodbDelta(before, after, cleared), peak)
	}
	return nil
}

// timeIt runs f reps times and returns the mean duration and f's last count.
func timeIt(reps int, f func() (int, error)) (time.Duration, int, error) {
	var n int
	start := time.Now()
	for range reps {
		var err error
		if n, err = f(); err != nil {
			return 0, 0, err
		}
	}
	return time.Since(start) / time.Duration(reps), n, nil
}

// explain prints the plan of q, with actual row counts on Postgres.
func explain(ctx context.Context, db *dburl.DB, q testutil.Query) error {
	prefix := "EXPLAIN "
	switch db.Dialect {
	case dialect.Postgres:
		prefix = "EXPLAIN (ANALYZE, BUFFERS) "
	case dialect.SQLite:
		prefix = "EXPLAIN QUERY PLAN "
	}
	fmt.Printf("  %s\n", q.SQL)
	rows, err := db.SQL.QueryContext(ctx, prefix+q.SQL, q.Args...)
	if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	if db.Dialect != dialect.Postgres {
		fmt.Printf("  | %s |\n", strings.Join(cols, " | "))
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		out := make([]string, len(vals))
		for i, v := range vals {
			out[i] = v.String
			if !v.Valid {
				out[i] = "NULL"
			}
		}
		if db.Dialect == dialect.Postgres {
			fmt.Printf("  %s\n", out[0])
		} else {
			fmt.Printf("  | %s |\n", strings.Join(out, " | "))
		}
	}
	return rows.Err()
}

// analyze refreshes the planner's statistics after the bulk load.
func analyze(ctx context.Context, db *dburl.DB) error {
	q := "ANALYZE qsessions_session"
	if db.Dialect == dialect.MySQL {
		q = "ANALYZE TABLE qsessions_session"
	}
	if db.Dialect == dialect.SQLite {
		q = "ANALYZE"
	}
	rows, err := db.SQL.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	return rows.Close()
}

// freshDB creates a schema (Postgres), database (MySQL) or file (SQLite)
// of its own and returns it opened, with a function that drops it.
func freshDB(ctx context.Context, t target) (*dburl.DB, func(), error) {
	if t.kind == testutil.SQLite {
		db, err := dburl.Open(t.base)
		if err != nil {
			return nil, nil, err
		}
		return db, func() {}, nil // the file goes with the target's directory
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	schema := "qs_scale_" + hex.EncodeToString(b[:])
	base := t.base
	var create, dropSQL string
	switch t.kind {
	case testutil.Postgres:
		create, dropSQL = "CREATE SCHEMA "+schema, "DROP SCHEMA "+schema+" CASCADE"
	case testutil.MySQL:
		create, dropSQL = "CREATE DATABASE "+schema+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", "DROP DATABASE "+schema
	default:
		return nil, nil, fmt.Errorf("unknown dialect %q", t.kind)
	}
	admin, err := dburl.Open(base)
	if err != nil {
		return nil, nil, err
	}
	if _, err := admin.SQL.ExecContext(ctx, create); err != nil {
		admin.Close()
		return nil, nil, fmt.Errorf("%s: %w", dburl.Redact(base), err)
	}
	u, _ := url.Parse(base)
	if t.kind == testutil.Postgres {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
	} else {
		u.Path = "/" + schema
	}
	db, err := dburl.Open(u.String())
	if err != nil {
		admin.Close()
		return nil, nil, err
	}
	drop := func() {
		if _, err := admin.SQL.ExecContext(context.Background(), dropSQL); err != nil {
			fmt.Fprintf(os.Stderr, "dropping %s: %v\n", schema, err)
		}
		admin.Close()
	}
	return db, drop, nil
}
