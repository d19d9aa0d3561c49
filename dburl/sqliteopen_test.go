package dburl_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/qsessions/qsessions/dburl"
)

// TestSQLiteConcurrentFirstOpen: processes that open a new SQLite file at
// the same moment (two app instances starting, two migration appliers)
// all connect. Switching a new file to WAL takes a lock SQLite does not
// wait for with its busy timeout, so one of them used to fail with
// "database is locked".
func TestSQLiteConcurrentFirstOpen(t *testing.T) {
	for round := range 20 {
		path := filepath.Join(t.TempDir(), "new.db")
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			db, err := dburl.Open("sqlite://" + path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = db.SQL.PingContext(context.Background())
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, opener %d: %v", round, i, err)
			}
		}
	}
}
