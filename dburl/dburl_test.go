package dburl_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/internal/testutil"
)

func TestPoolDefaultsAndOverrides(t *testing.T) {
	for _, tc := range []struct {
		url     string
		maxOpen int
	}{
		{"postgres://u@127.0.0.1:1/db?sslmode=disable", dburl.DefaultMaxOpenConns},
		{"postgres://u@127.0.0.1:1/db?sslmode=disable&max_open_conns=7&conn_max_lifetime=1m", 7},
		{"mysql://u@127.0.0.1:1/db?max_open_conns=3", 3},
		{"sqlite://" + t.TempDir() + "/x.db?max_open_conns=2", 2},
		{"sqlite://x?mode=memory", 1},
	} {
		db, err := dburl.Open(tc.url)
		if err != nil {
			t.Fatalf("Open(%s): %v", tc.url, err)
		}
		if got := db.SQL.Stats().MaxOpenConnections; got != tc.maxOpen {
			t.Errorf("Open(%s): max open %d, want %d", tc.url, got, tc.maxOpen)
		}
		db.Close()
	}
	for _, bad := range []string{
		"postgres://u@h/db?max_open_conns=0",
		"postgres://u@h/db?max_idle_conns=x",
		"mysql://u@h/db?conn_max_lifetime=soon",
		"mysql://u@h/db?lock_wait_timeout=-1",
	} {
		_, err := dburl.Open(bad)
		if err == nil || !strings.Contains(err.Error(), "dburl:") {
			t.Errorf("Open(%s) = %v, want an error naming the parameter", bad, err)
		}
	}
}

// TestPoolParametersNeverReachTheServer: the pool parameters are removed
// from the URL before the driver sees it; Postgres would refuse them as
// unknown run-time parameters, MySQL as unknown system variables.
func TestPoolParametersNeverReachTheServer(t *testing.T) {
	for _, name := range []string{testutil.Postgres, testutil.MySQL} {
		t.Run(name, func(t *testing.T) {
			tdb := testutil.Open(t, name)
			sep := "?"
			if strings.Contains(tdb.URL, "?") {
				sep = "&"
			}
			db, err := dburl.Open(tdb.URL + sep + "max_open_conns=2&max_idle_conns=1&conn_max_idle_time=1m&conn_max_lifetime=1h")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := db.SQL.PingContext(ctx); err != nil {
				t.Fatalf("ping with pool parameters in the URL: %v", err)
			}
			if got := db.SQL.Stats().MaxOpenConnections; got != 2 {
				t.Errorf("max open %d, want 2", got)
			}
			if name == testutil.MySQL {
				var v int
				if err := db.SQL.QueryRowContext(ctx, "SELECT @@SESSION.lock_wait_timeout").Scan(&v); err != nil || v != 10 {
					t.Errorf("lock_wait_timeout = %d, %v; want 10", v, err)
				}
			}
		})
	}
}
