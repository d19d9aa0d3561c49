package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/qsessions/qsessions/internal/testutil"
)

// TestClearExpired deletes 100,000 expired sessions and keeps 1,000 live
// ones, on every dialect.
func TestClearExpired(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		client := sessSchema(t, db)
		ctx := context.Background()
		u := client.User.Create().SetUsername("dave").SaveX(ctx)
		now := time.Now()
		const expired, live = 100_000, 1_000
		rows := make([]sessRow, 0, expired+live)
		for i := range expired {
			age := time.Duration(i%720+1) * time.Minute // expired between a minute and 12 hours ago
			rows = append(rows, sessRow{key: sessNewKey(), created: now.Add(-24 * time.Hour), lastActivity: now.Add(-age), expire: now.Add(-age)})
		}
		liveKeys := map[string]bool{}
		for i := range live {
			r := sessRow{key: sessNewKey(), ua: sessUAMac, ip: "192.0.2.1", created: now.Add(-time.Hour), lastActivity: now, expire: now.Add(time.Duration(i+1) * time.Minute)}
			if i%2 == 0 {
				r.userID = &u.ID
			}
			liveKeys[r.key] = true
			rows = append(rows, r)
		}
		start := time.Now()
		sessInsert(t, db, rows)
		t.Logf("inserted %d rows in %v", len(rows), time.Since(start).Round(time.Millisecond))

		start = time.Now()
		code, out, errOut := sessCLI(t, "clear-expired", "--db", db.URL, "--batch", "1000")
		t.Logf("clear-expired in %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
		if code != 0 {
			t.Fatalf("clear-expired: exit %d: %s", code, errOut)
		}
		if !strings.HasPrefix(out, "deleted 100000 expired sessions in ") {
			t.Errorf("output %q: want the count", out)
		}
		keys, err := sessAllKeys(db)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != live {
			t.Fatalf("%d rows left, want the %d live ones", len(keys), live)
		}
		for _, k := range keys {
			if !liveKeys[k] {
				t.Fatalf("row %s left over is not one of the live ones", k)
			}
		}
		// Nothing left to do: a second run deletes nothing.
		if code, out, _ := sessCLI(t, "clear-expired", "--db", db.URL); code != 0 || !strings.HasPrefix(out, "deleted 0 expired sessions") {
			t.Errorf("second run: exit %d, %q", code, out)
		}
	})
}

// sessAllKeys returns every key of the table.
func sessAllKeys(db *testutil.DB) ([]string, error) {
	rows, err := db.SQL.Query("SELECT session_key FROM qsessions_session")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// TestClearExpiredBatches checks the batching: one progress call per
// batch, each deleting at most --batch rows, and that a row expiring
// exactly now counts as expired while one a microsecond later does not.
func TestClearExpiredBatches(t *testing.T) {
	db := testutil.Open(t, testutil.SQLite)
	sessSchema(t, db)
	now := time.Now().UTC().Truncate(time.Microsecond)
	var rows []sessRow
	for range 2500 {
		rows = append(rows, sessRow{key: sessNewKey(), created: now.Add(-time.Hour), lastActivity: now.Add(-time.Hour), expire: now.Add(-time.Minute)})
	}
	rows = append(rows,
		sessRow{key: sessNewKey(), created: now, lastActivity: now, expire: now},
		sessRow{key: sessNewKey(), created: now, lastActivity: now, expire: now.Add(time.Microsecond)})
	sessInsert(t, db, rows)
	sdb, err := openSessionDB(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	var calls []int
	n, err := clearExpired(context.Background(), sdb.store, now, 1000, func(total int) { calls = append(calls, total) })
	if err != nil {
		t.Fatal(err)
	}
	if n != 2501 || len(calls) != 3 || calls[0] != 1000 || calls[1] != 2000 || calls[2] != 2501 {
		t.Fatalf("deleted %d with progress %v; want 2501 in batches 1000, 2000, 2501", n, calls)
	}
	if left := sessCount(t, db, "1=1"); left != 1 {
		t.Fatalf("%d rows left, want the one expiring after now", left)
	}
}
