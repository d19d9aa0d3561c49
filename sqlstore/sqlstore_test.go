package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	entschemamigrate "entgo.io/ent/dialect/sql/schema"
	"github.com/google/uuid"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/ent"
	uuident "github.com/qsessions/qsessions/examples/uuidapp/ent"
	"github.com/qsessions/qsessions/internal/storetest"
	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/sqlstore"
)

// TestStore runs the conformance suite on the reference schema's table
// (integer user IDs), which sqlstore sees as text: "1", "2", ...
func TestStore(t *testing.T) {
	storetest.Run(t, harness(func(drv dialect.Driver) schema {
		client := ent.NewClient(ent.Driver(drv))
		users := 0
		return schema{
			native: func(id string) (any, error) { return strconv.Atoi(id) },
			create: client.Schema.Create,
			newUser: func(ctx context.Context) (string, error) {
				users++
				u, err := client.User.Create().SetUsername(fmt.Sprintf("user%d", users)).Save(ctx)
				if err != nil {
					return "", err
				}
				return strconv.Itoa(u.ID), nil
			},
			deleteUser: func(ctx context.Context, id any) error { return client.User.DeleteOneID(id.(int)).Exec(ctx) },
		}
	}))
}

// TestStoreUUIDUsers runs the suite on examples/uuidapp's table, whose
// user_id is a UUID (uuid on Postgres and MariaDB, text on SQLite): the
// same store, user IDs as their text.
func TestStoreUUIDUsers(t *testing.T) {
	storetest.Run(t, harness(func(drv dialect.Driver) schema {
		client := uuident.NewClient(uuident.Driver(drv))
		accounts := 0
		return schema{
			native: func(id string) (any, error) { return uuid.Parse(id) },
			create: client.Schema.Create,
			newUser: func(ctx context.Context) (string, error) {
				accounts++
				a, err := client.Account.Create().SetEmail(fmt.Sprintf("a%d@example.com", accounts)).Save(ctx)
				if err != nil {
					return "", err
				}
				return a.ID.String(), nil
			},
			deleteUser: func(ctx context.Context, id any) error { return client.Account.DeleteOneID(id.(uuid.UUID)).Exec(ctx) },
		}
	}))
}

// schema is what differs between the apps the suite runs on: the users
// table (through the app's ent client) and its ID type.
type schema struct {
	// native converts a user ID's text to the app's ID type.
	native func(id string) (any, error)
	// create makes the app's tables (client.Schema.Create).
	create func(ctx context.Context, opts ...entschemamigrate.MigrateOption) error
	// newUser creates a user and returns its ID as text.
	newUser func(ctx context.Context) (string, error)
	// deleteUser deletes a user (its sessions go by ON DELETE CASCADE).
	deleteUser func(ctx context.Context, id any) error
}

// harness opens an app's ent client over a counted pool (open), creates
// its tables, builds sqlstore over the same pool, and gives the suite what
// an app does: users through ent, sessions through plain SQL (a Store
// without hooks sees neither).
func harness(open func(drv dialect.Driver) schema) storetest.Harness {
	return func(t *testing.T, db *testutil.DB, opts ...backend.StoreOption) *storetest.Env {
		ctx := context.Background()
		pool, counter := storetest.CountedSQL(t, db)
		sc := open(entsql.OpenDB(db.Dialect, pool))
		if err := sc.create(ctx); err != nil {
			t.Fatalf("creating the schema: %v", err)
		}
		store, err := sqlstore.New(ctx, pool, db.Dialect, opts...)
		if err != nil {
			t.Fatalf("sqlstore.New: %v", err)
		}
		native := func(id any) any {
			v, err := sc.native(id.(string))
			if err != nil {
				t.Fatalf("user ID %q: %v", id, err)
			}
			return v
		}
		q := func(sql string) string { return storetest.Rebind(db.Dialect, sql) }
		exec := func(ctx context.Context, sql string, args ...any) (int, error) {
			res, err := pool.ExecContext(ctx, q(sql), args...)
			if err != nil {
				return 0, err
			}
			n, err := res.RowsAffected()
			return int(n), err
		}
		const t0 = "qsessions_session"
		return &storetest.Env{
			Store:   store,
			Counter: counter,
			NoHooks: true,
			NewUser: func(ctx context.Context) (any, error) { return sc.newUser(ctx) },
			DeleteUser: func(ctx context.Context, id any) error {
				return sc.deleteUser(ctx, native(id))
			},
			DeleteByKey: func(ctx context.Context, key string) error {
				_, err := exec(ctx, "DELETE FROM "+t0+" WHERE session_key = ?", key)
				return err
			},
			DeleteByUserAgent: func(ctx context.Context, ua string) (int, error) {
				return exec(ctx, "DELETE FROM "+t0+" WHERE user_agent = ?", ua)
			},
			SetExpireDate: func(ctx context.Context, key string, at time.Time) (int, error) {
				return exec(ctx, "UPDATE "+t0+" SET expire_date = ? WHERE session_key = ?", at, key)
			},
			DeleteByKeyInTx: func(ctx context.Context, key string) (func(bool) error, error) {
				tx, err := pool.BeginTx(ctx, nil)
				if err != nil {
					return nil, err
				}
				if _, err := tx.ExecContext(ctx, q("DELETE FROM "+t0+" WHERE session_key = ?"), key); err != nil {
					_ = tx.Rollback()
					return nil, err
				}
				return func(commit bool) error {
					if commit {
						return tx.Commit()
					}
					return tx.Rollback()
				}, nil
			},
			LiveSessions: func(ctx context.Context, id any, now time.Time) ([]string, error) {
				rows, err := pool.QueryContext(ctx, q("SELECT session_key FROM "+t0+" WHERE user_id = ? AND expire_date > ?"), native(id), now)
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
			},
			CreateBulk: func(ctx context.Context, recs []*backend.Record) error {
				var b strings.Builder
				b.WriteString("INSERT INTO " + t0 + " (session_key, session_data, expire_date, user_id, user_agent, ip, created_at, updated_at, last_activity) VALUES ")
				args := make([]any, 0, 9*len(recs))
				for i, r := range recs {
					if i > 0 {
						b.WriteByte(',')
					}
					b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?)")
					var uid, ua, ip any
					if r.UserID != nil {
						uid = native(r.UserID)
					}
					if r.UserAgent != "" {
						ua = r.UserAgent
					}
					if r.IP != "" {
						ip = r.IP
					}
					args = append(args, r.Key, r.Data, r.ExpireDate, uid, ua, ip, r.CreatedAt, r.UpdatedAt, r.LastActivity)
				}
				_, err := exec(ctx, b.String(), args...)
				return err
			},
		}
	}
}

// TestNewErrors: bad arguments and a missing table are errors that name
// the problem.
func TestNewErrors(t *testing.T) {
	ctx := context.Background()
	db := testutil.Open(t, testutil.SQLite)
	if _, err := sqlstore.New(ctx, nil, "sqlite3"); err == nil {
		t.Error("New(nil db) gave no error")
	}
	if _, err := sqlstore.New(ctx, db.SQL, "oracle"); err == nil || !contains(err, `unknown dialect "oracle"`) {
		t.Errorf("New(oracle) = %v", err)
	}
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			db := testutil.Open(t, d)
			_, err := sqlstore.New(ctx, db.SQL, db.Dialect)
			if !errors.Is(err, backend.ErrNoTable) || !contains(err, "no table qsessions_session") {
				t.Errorf("New on an empty database = %v; want ErrNoTable naming the table", err)
			}
		})
	}
}

func contains(err error, s string) bool {
	return err != nil && len(s) > 0 && strings.Contains(err.Error(), s)
}
