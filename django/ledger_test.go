package django

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/internal/testutil"
)

func TestLedger(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		l, err := NewLedger(db.Dialect)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // IF NOT EXISTS
			if err := l.CreateTable(ctx, db.SQL); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Now()
		a, b, c := backend.KeyOf("a"), backend.KeyOf("b"), backend.KeyOf("c")
		if ok, err := l.Claim(ctx, db.SQL, a, now); !ok || err != nil {
			t.Fatalf("first claim: %v %v", ok, err)
		}
		if ok, err := l.Claim(ctx, db.SQL, a, now); ok || err != nil {
			t.Fatalf("second claim: %v %v", ok, err)
		}
		// A claim rolled back is no claim.
		tx, _ := db.SQL.BeginTx(ctx, nil)
		if ok, err := l.Claim(ctx, tx, b, now); !ok || err != nil {
			t.Fatalf("claim in tx: %v %v", ok, err)
		}
		tx.Rollback()
		got, err := l.Imported(ctx, db.SQL, []string{a, b, c})
		if err != nil || !got[a] || got[b] || got[c] || len(got) != 1 {
			t.Fatalf("Imported = %v, %v", got, err)
		}
		if err := l.Record(ctx, db.SQL, []string{b, c}, now); err != nil {
			t.Fatal(err)
		}
		if err := l.Record(ctx, db.SQL, []string{c}, now); err == nil {
			t.Fatal("Record of a recorded key succeeded")
		}
		if got, _ := l.Imported(ctx, db.SQL, []string{a, b, c}); len(got) != 3 {
			t.Fatalf("Imported = %v", got)
		}

		// Concurrent claims of one key, each in a transaction that takes a
		// moment to commit: exactly one wins.
		var wins atomic.Int32
		var wg sync.WaitGroup
		key := backend.KeyOf("contended")
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				tx, err := db.SQL.BeginTx(ctx, nil)
				if err != nil {
					errs <- err
					return
				}
				ok, err := l.Claim(ctx, tx, key, now)
				if err != nil {
					tx.Rollback()
					errs <- err
					return
				}
				time.Sleep(20 * time.Millisecond)
				if err := tx.Commit(); err != nil {
					errs <- err
					return
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if wins.Load() != 1 {
			t.Fatalf("%d concurrent claims won", wins.Load())
		}
	})
}

// TestFallbackNeverResurrects plays the cut-over fallback with Django's
// own sessions: a miss for a Django cookie reads the Django row, claims it
// in the ledger and imports it in one transaction; after the Go side
// revokes it, and Django keeps saving its row, it never comes back.
func TestFallbackNeverResurrects(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, cfg, cases := createdByDjango(t, d)
			goDB := testutil.Open(t, testutil.SQLite) // the Go app's database
			ledger, _ := NewLedger(goDB.Dialect)
			if err := ledger.CreateTable(ctx, goDB.SQL); err != nil {
				t.Fatal(err)
			}
			if _, err := goDB.SQL.Exec("CREATE TABLE go_sessions (session_key text PRIMARY KEY, user_id text)"); err != nil {
				t.Fatal(err)
			}
			signer, _ := NewSigner(secretKey, oldSecretKey)
			reader, _ := NewReader(db.SQL, db.Dialect, DjangoSession)

			// open serves a cookie: the Go table first, then the fallback.
			open := func(cookie string) (user string, ok bool) {
				t.Helper()
				key := backend.KeyOf(cookie)
				err := goDB.SQL.QueryRow("SELECT user_id FROM go_sessions WHERE session_key = ?", key).Scan(&user)
				if err == nil {
					return user, true
				}
				if !errors.Is(err, sql.ErrNoRows) {
					t.Fatal(err)
				}
				if !ValidSessionKey(cookie) {
					return "", false
				}
				row, err := reader.Lookup(ctx, cookie, time.Now())
				if errors.Is(err, ErrNotFound) {
					return "", false
				}
				if err != nil {
					t.Fatal(err)
				}
				s, err := signer.Convert(row, ConvertOptions{})
				if err != nil {
					return "", false
				}
				tx, err := goDB.SQL.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback()
				claimed, err := ledger.Claim(ctx, tx, s.Key, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if !claimed {
					return "", false // imported before: revoked since
				}
				if _, err := tx.Exec("INSERT INTO go_sessions VALUES (?, ?)", s.Key, s.UserID); err != nil {
					t.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
				return s.UserID, true
			}

			c := caseByName(t, cases, "login_sha256")
			if user, ok := open(c.Key); !ok || user != c.User {
				t.Fatalf("first visit: %q %v, want the Django user %q", user, ok, c.User)
			}
			if user, ok := open(c.Key); !ok || user != c.User {
				t.Fatalf("second visit (now from the Go table): %q %v", user, ok)
			}
			// The user revokes the session on the Go side.
			if _, err := goDB.SQL.Exec("DELETE FROM go_sessions WHERE session_key = ?", backend.KeyOf(c.Key)); err != nil {
				t.Fatal(err)
			}
			// Django keeps serving and saving its row meanwhile.
			var saved []string
			if err := json.Unmarshal(runDjango(t, "touch", withItems(cfg, []djangoCase{c})), &saved); err != nil {
				t.Fatal(err)
			}
			if user, ok := open(c.Key); ok {
				t.Fatalf("revoked session came back as %q", user)
			}
			// Cookies that are no Django key cost no Django query, and
			// unknown keys find nothing.
			if _, ok := open("not-a-django-key"); ok {
				t.Fatal("served a malformed cookie")
			}
			if _, ok := open("abcdefghijklmnopqrstuvwxyz012345"); ok {
				t.Fatal("served an unknown key")
			}
		})
	}
}

// BenchmarkReadAndConvert streams and converts 20,000 live django_session
// rows per iteration on each database (data signed the way Django signs,
// by this package; correctness against Django is TestRealDjango's), and
// reports rows per second: the importer's read side.
func BenchmarkReadAndConvert(b *testing.B) {
	const n = 20000
	for _, d := range testutil.AllDialects {
		b.Run(d, func(b *testing.B) {
			ctx := context.Background()
			db := testutil.Open(b, d)
			ts := "timestamp with time zone"
			switch db.Dialect {
			case "mysql":
				ts = "datetime(6)"
			case "sqlite3":
				ts = "datetime"
			}
			if _, err := db.SQL.Exec("CREATE TABLE django_session (session_key varchar(40) NOT NULL PRIMARY KEY, session_data text NOT NULL, expire_date " + ts + " NOT NULL)"); err != nil {
				b.Fatal(err)
			}
			s, _ := NewSigner(goldenKey)
			r, _ := NewReader(db.SQL, db.Dialect, DjangoSession)
			data, _ := s.sign([]byte(`{"_auth_user_id":"42","_auth_user_backend":"django.contrib.auth.backends.ModelBackend","_auth_user_hash":"9c2f6b1d0e8a47b3a5c4d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1","cart":[1,2],"theme":"dark"}`), FormatSigned, "sha256", time.Now())
			exp := time.Now().Add(24 * time.Hour).UTC()
			var expArg any = exp
			if db.Dialect == "sqlite3" {
				expArg = exp.Format("2006-01-02 15:04:05.000000")
			}
			tx, _ := db.SQL.Begin()
			for i := range n {
				q := "INSERT INTO django_session VALUES (?, ?, ?)"
				if db.Dialect == "postgres" {
					q = "INSERT INTO django_session VALUES ($1, $2, $3)"
				}
				if _, err := tx.Exec(q, fmt.Sprintf("k%031d", i), data, expArg); err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				count := 0
				for row, err := range r.All(ctx, 1000, time.Now()) {
					if err != nil {
						b.Fatal(err)
					}
					if _, err := s.Convert(row, ConvertOptions{}); err != nil {
						b.Fatal(err)
					}
					count++
				}
				if count != n {
					b.Fatalf("%d rows", count)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
