package bench

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/mysqlstore"
	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"
	"github.com/bradfitz/gomemcache/memcache"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qsessions/qsessions/internal/testutil"
)

// benchUA and benchIP match the root module's benchmarks.
const (
	benchUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	benchIP = "192.0.2.7"
)

// floorRowSize is the size of the value the floors read: about a session
// row's data.
const floorRowSize = 200

// benchKey is a 64-character hex key, the shape of qsessions' primary key.
const benchKey = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// benchWriter is a ResponseWriter that keeps nothing (as in the root
// module's benchmarks).
type benchWriter struct {
	h    http.Header
	code int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.code = code }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }

// serve runs a request with the cookie through h b.Loop times.
func serve(b *testing.B, h http.Handler, path, cookie, token string) {
	b.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr = benchIP + ":40000"
	r.Header.Set("User-Agent", benchUA)
	r.AddCookie(&http.Cookie{Name: cookie, Value: token})
	w := &benchWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.code = 0
		h.ServeHTTP(w, r)
		if w.code != 0 && w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
}

// scsRoutes is the same app as the root benchmarks': /noop never touches
// the session, /get reads one value, /set writes one.
func scsRoutes(sm *scs.SessionManager) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/noop", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, sm.GetString(r.Context(), "name"))
	})
	var n atomic.Int64
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "n", n.Add(1))
		io.WriteString(w, "ok")
	})
	return sm.LoadAndSave(mux)
}

// scsSession stores a session with the root benchmarks' values and returns
// its token.
func scsSession(b *testing.B, sm *scs.SessionManager) string {
	b.Helper()
	ctx, err := sm.Load(context.Background(), "")
	if err != nil {
		b.Fatal(err)
	}
	sm.Put(ctx, "name", "Ada Lovelace")
	sm.Put(ctx, "csrf", "3f9a1c0e6b2d4f8a7e5c9b1d0a2f4e6c")
	sm.Put(ctx, "theme", "dark")
	sm.Put(ctx, "cart", []string{"sku-1001", "sku-2002", "sku-3003"})
	sm.Put(ctx, "user_id", 1)
	token, _, err := sm.Commit(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return token
}

// BenchmarkSCS runs the request benchmarks through scs v2's LoadAndSave
// with pgxstore (postgres) and mysqlstore (mysql), each on a fresh schema
// of the servers the root module's benchmarks use.
func BenchmarkSCS(b *testing.B) {
	b.Run(testutil.Postgres, func(b *testing.B) {
		db := testutil.Open(b, testutil.Postgres)
		ctx := context.Background()
		if _, err := db.SQL.ExecContext(ctx, `CREATE TABLE sessions (
	token TEXT PRIMARY KEY,
	data BYTEA NOT NULL,
	expiry TIMESTAMPTZ NOT NULL)`); err != nil {
			b.Fatal(err)
		}
		if _, err := db.SQL.ExecContext(ctx, `CREATE INDEX sessions_expiry_idx ON sessions (expiry)`); err != nil {
			b.Fatal(err)
		}
		// pgxstore takes a pgxpool; the same size as the root module's pool.
		pool, err := pgxpool.New(ctx, db.URL+"&pool_max_conns=4")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
		sm := scs.New()
		sm.Store = pgxstore.NewWithCleanupInterval(pool, 0)
		sm.Cookie.Secure = false
		scsRequests(b, sm)
	})
	b.Run(testutil.MySQL, func(b *testing.B) {
		db := testutil.Open(b, testutil.MySQL)
		ctx := context.Background()
		if _, err := db.SQL.ExecContext(ctx, `CREATE TABLE sessions (
	token CHAR(43) PRIMARY KEY,
	data BLOB NOT NULL,
	expiry TIMESTAMP(6) NOT NULL)`); err != nil {
			b.Fatal(err)
		}
		if _, err := db.SQL.ExecContext(ctx, `CREATE INDEX sessions_expiry_idx ON sessions (expiry)`); err != nil {
			b.Fatal(err)
		}
		sm := scs.New()
		sm.Store = mysqlstore.NewWithCleanupInterval(db.SQL, 0)
		sm.Cookie.Secure = false
		scsRequests(b, sm)
	})
}

// scsRequests runs the three request benchmarks on sm.
func scsRequests(b *testing.B, sm *scs.SessionManager) {
	h := scsRoutes(sm)
	token := scsSession(b, sm)
	b.Run("RequestUntouched", func(b *testing.B) { serve(b, h, "/noop", sm.Cookie.Name, token) })
	b.Run("RequestRead", func(b *testing.B) { serve(b, h, "/get", sm.Cookie.Name, token) })
	b.Run("RequestWrite", func(b *testing.B) { serve(b, h, "/set", sm.Cookie.Name, token) })
}

// BenchmarkFloor measures what a session load cannot beat: a point SELECT
// of a 200-byte value by a 64-character primary key through the *sql.DB
// qsessions uses (dburl.Open via testutil, same pool size), and a memcached
// Get of 200 bytes through gomemcache with explicit settings.
func BenchmarkFloor(b *testing.B) {
	value := bytes.Repeat([]byte{0xa5}, floorRowSize)
	for _, dialect := range testutil.AllDialects {
		b.Run(dialect, func(b *testing.B) {
			db := testutil.Open(b, dialect)
			ctx := context.Background()
			ddl := "CREATE TABLE floor (k VARCHAR(64) PRIMARY KEY, v BLOB NOT NULL)"
			ins := "INSERT INTO floor (k, v) VALUES (?, ?)"
			sel := "SELECT v FROM floor WHERE k = ?"
			if dialect == testutil.Postgres {
				ddl = "CREATE TABLE floor (k VARCHAR(64) PRIMARY KEY, v BYTEA NOT NULL)"
				ins = "INSERT INTO floor (k, v) VALUES ($1, $2)"
				sel = "SELECT v FROM floor WHERE k = $1"
			}
			if _, err := db.SQL.ExecContext(ctx, ddl); err != nil {
				b.Fatal(err)
			}
			if _, err := db.SQL.ExecContext(ctx, ins, benchKey, value); err != nil {
				b.Fatal(err)
			}
			b.Run("PointSelect", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					var v []byte
					if err := db.SQL.QueryRowContext(ctx, sel, benchKey).Scan(&v); err != nil {
						b.Fatal(err)
					}
					if len(v) != floorRowSize {
						b.Fatalf("read %d bytes", len(v))
					}
				}
			})
		})
	}
	b.Run("memcached", func(b *testing.B) {
		addr := testutil.Memcached(b)
		c := memcache.New(addr)
		c.Timeout = 100 * time.Millisecond
		c.MaxIdleConns = 16
		b.Cleanup(func() { c.Close() })
		key := testutil.MemcachedPrefix(b) + benchKey
		if err := c.Set(&memcache.Item{Key: key, Value: value, Expiration: 300}); err != nil {
			b.Fatal(err)
		}
		b.Run("Get", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				it, err := c.Get(key)
				if err != nil {
					b.Fatal(err)
				}
				if len(it.Value) != floorRowSize {
					b.Fatalf("read %d bytes", len(it.Value))
				}
			}
		})
	})
}

// BenchmarkBareMux is the request benchmarks' app without any session
// middleware: what the router, the request and the writer cost alone.
func BenchmarkBareMux(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("/noop", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	serve(b, mux, "/noop", "sessionid", strconv.Itoa(0))
}
