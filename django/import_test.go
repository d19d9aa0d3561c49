package django

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dburl"
	"github.com/qsessions/qsessions/django/djangotest"
	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/migrations"
)

// goDatabase returns a fresh Go app's database of dialect migrated with
// qsessions' reference migrations (users and qsessions_session).
func goDatabase(t testing.TB, dialect string) *testutil.DB {
	t.Helper()
	db := testutil.Open(t, dialect)
	dir, err := migrations.Dir(db.Dialect)
	if err != nil {
		t.Fatal(err)
	}
	u, err := dburl.Open(db.URL) // for the schema the URL names
	if err != nil {
		t.Fatal(err)
	}
	u.Close()
	// The migration lock is server-wide: parallel tests wait for it.
	opts := migrations.Options{Schema: u.Schema, RevisionsSchema: u.Schema, URL: u.URL, LockTimeout: 2 * time.Minute}
	if _, err := migrations.Apply(context.Background(), db.SQL, db.Dialect, dir, opts); err != nil {
		t.Fatalf("migrating the Go database: %v", err)
	}
	return db
}

// addUser adds a user with id to the reference users table.
func addUser(t testing.TB, db *testutil.DB, id, name string) {
	t.Helper()
	q := "INSERT INTO users (id, username, is_admin) VALUES (?, ?, false)"
	if db.Dialect == "postgres" {
		q = "INSERT INTO users (id, username, is_admin) VALUES ($1, $2, false)"
	}
	n, _ := strconv.Atoi(id)
	if _, err := db.SQL.Exec(q, n, name); err != nil {
		t.Fatalf("adding user %s: %v", name, err)
	}
}

// djangoMade runs Django's create mode on a fresh database of dialect.
func djangoMade(t *testing.T, dialect string) (*testutil.DB, djangotest.Config, djangotest.Made) {
	t.Helper()
	djangotest.Require(t)
	db := testutil.Open(t, dialect)
	cfg := djangotest.ConfigFor(t, db.Dialect, db.URL)
	return db, cfg, djangotest.Create(t, cfg)
}

// expectation is what an import of one table must do with each case:
// the live cases that import, by the users the Go side has.
type expectation struct {
	imported, missingUser []string
	badSig, pickle        int
	expired               int64
}

func expect(made djangotest.Made, table string, users ...string) expectation {
	var e expectation
	for _, c := range made.Cases {
		if c.Table != table {
			continue
		}
		switch {
		case !c.Live:
			e.expired++
		case c.Error != nil && *c.Error == "bad_signature":
			e.badSig++
		case c.Error != nil:
			e.pickle++
		case c.User != "" && !slices.Contains(users, c.User):
			e.missingUser = append(e.missingUser, c.Key)
		default:
			e.imported = append(e.imported, c.Key)
		}
	}
	return e
}

// TestImportRealDjango imports the sessions Django 3.2 made, of both
// tables, into a Go database migrated with qsessions' migrations, on each
// database: what imports, what is skipped and why, what each row holds, a
// dry run that writes nothing, and re-runs that import nothing twice.
func TestImportRealDjango(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			djangoDB, _, made := djangoMade(t, d)
			goDB := goDatabase(t, d)
			alice, bob := made.Users["alice"], made.Users["bob"]
			addUser(t, goDB, alice, "alice") // bob comes later
			target, err := NewTarget(ctx, goDB.SQL, goDB.Dialect)
			if err != nil {
				t.Fatal(err)
			}
			if tbl, col := target.UsersTable(); tbl != "users" || col != "id" {
				t.Fatalf("UsersTable = %s.%s, want users.id", tbl, col)
			}
			signer, _ := NewSigner(secretKey, oldSecretKey)
			users := []string{alice}
			for _, table := range []string{DjangoSession, QSessionsSession} {
				t.Run(table, func(t *testing.T) {
					reader, _ := NewReader(djangoDB.SQL, djangoDB.Dialect, table)
					want := expect(made, table, users...)
					opts := ImportOptions{Reader: reader, Signer: signer, Target: target, BatchSize: 7, DryRun: true}
					var skips []Skip
					opts.OnSkip = func(s Skip) { skips = append(skips, s) }
					progress := 0
					opts.Progress = func(r Report) { progress++ }
					check := func(name string, r Report, imported, already, missing int) {
						t.Helper()
						if r.Imported != int64(imported) || r.Already != int64(already) || r.Expired != want.expired ||
							r.Skipped[SkipBadSignature] != int64(want.badSig) || r.Skipped[SkipPickle] != int64(want.pickle) ||
							r.Skipped[SkipMissingUser] != int64(missing) || r.Present != 0 ||
							r.NotImported() != int64(want.badSig+want.pickle+missing) {
							t.Fatalf("%s: %+v; want %d imported, %d already, %d expired, %d bad signatures, %d pickle, %d missing users",
								name, r, imported, already, want.expired, want.badSig, want.pickle, missing)
						}
					}

					dry, err := Import(ctx, opts)
					if err != nil {
						t.Fatal(err)
					}
					check("dry run", dry, len(want.imported), 0, len(want.missingUser))
					if progress == 0 || len(skips) != int(dry.NotImported()) {
						t.Fatalf("dry run: %d progress reports, %d skips reported", progress, len(skips))
					}
					for _, s := range skips {
						if s.Err == nil || len(s.ID) != 16 || !slices.Contains(Reasons, s.Reason) {
							t.Fatalf("skip %+v", s)
						}
					}
					for _, k := range append(want.imported, want.missingUser...) {
						if _, err := target.Store().Get(ctx, backend.KeyOf(k), time.Now()); !errors.Is(err, backend.ErrNotFound) {
							t.Fatalf("the dry run wrote a session: %v", err)
						}
					}

					opts.DryRun, opts.OnSkip, opts.Progress = false, nil, nil
					first, err := Import(ctx, opts)
					if err != nil {
						t.Fatal(err)
					}
					check("first run", first, len(want.imported), 0, len(want.missingUser))
					checkImported(t, target, signer, made, want.imported)
					for _, k := range want.missingUser {
						if _, err := target.Store().Get(ctx, backend.KeyOf(k), time.Now()); !errors.Is(err, backend.ErrNotFound) {
							t.Fatalf("a session of a missing user was imported: %v", err)
						}
					}

					// Once bob exists, his sessions import; nothing else again.
					if !slices.Contains(users, bob) {
						addUser(t, goDB, bob, "bob")
						users = append(users, bob)
					}
					second, err := Import(ctx, opts)
					if err != nil {
						t.Fatal(err)
					}
					check("second run", second, len(want.missingUser), len(want.imported), 0)
					want = expect(made, table, users...)
					checkImported(t, target, signer, made, want.imported)
					third, err := Import(ctx, opts)
					if err != nil {
						t.Fatal(err)
					}
					check("third run", third, 0, len(want.imported), 0)
				})
			}
		})
	}
}

// checkImported checks the Go row of each Django session in keys against
// what Convert gives: user, values (through the codec), times, IP and
// User-Agent.
func checkImported(t *testing.T, target *Target, signer *Signer, made djangotest.Made, keys []string) {
	t.Helper()
	ctx := context.Background()
	for _, c := range made.Cases {
		if !slices.Contains(keys, c.Key) {
			continue
		}
		rec, err := target.Store().Get(ctx, backend.KeyOf(c.Key), time.Now())
		if err != nil {
			t.Fatalf("%s: not imported: %v", c.Name, err)
		}
		row := Row{SessionKey: c.Key, SessionData: c.SessionData, ExpireDate: parseISO(t, &c.ExpireDate)}
		if c.Table == QSessionsSession {
			row.CreatedAt, row.UpdatedAt = parseISO(t, c.CreatedAt), parseISO(t, c.UpdatedAt)
			if c.IP != nil {
				row.IP = *c.IP
			}
			if c.UserAgent != nil {
				row.UserAgent = *c.UserAgent
			}
			if c.UserID != nil {
				row.UserID = *c.UserID
			}
		}
		s, err := signer.Convert(row, ConvertOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var wantUser any
		if c.User != "" {
			wantUser = c.User
		}
		if rec.UserID != wantUser {
			t.Errorf("%s: user %#v, want %#v", c.Name, rec.UserID, wantUser)
		}
		values, err := qsessions.DecodeData(rec.Data)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if d := djangotest.Diff(values, s.Values); d != "" {
			t.Errorf("%s: values: %s", c.Name, d)
		}
		// Django's last save, else (legacy data has no timestamp) the
		// import's time; created_at Django's, else the same.
		updated := s.UpdatedAt
		if updated.IsZero() {
			if time.Since(rec.UpdatedAt) > time.Minute || time.Until(rec.UpdatedAt) > time.Second {
				t.Errorf("%s: updated_at %v, want the import's time", c.Name, rec.UpdatedAt)
			}
			updated = rec.UpdatedAt
		}
		created := s.CreatedAt
		if created.IsZero() {
			created = updated
		}
		if !rec.ExpireDate.Equal(backend.Time(s.ExpireDate)) || !rec.CreatedAt.Equal(backend.Time(created)) ||
			!rec.UpdatedAt.Equal(backend.Time(updated)) || !rec.LastActivity.Equal(backend.Time(updated)) {
			t.Errorf("%s: times expire/created/updated/activity %v %v %v %v; want %v %v %v", c.Name,
				rec.ExpireDate, rec.CreatedAt, rec.UpdatedAt, rec.LastActivity, s.ExpireDate, created, updated)
		}
		if rec.IP != s.IP || rec.UserAgent != s.UserAgent {
			t.Errorf("%s: IP %q UA %q, want %q %q", c.Name, rec.IP, rec.UserAgent, s.IP, s.UserAgent)
		}
		if c.Table == QSessionsSession && c.Name == "q_login" && (rec.IP != "10.1.2.3" || rec.UserAgent == "" || s.CreatedAt.IsZero()) {
			t.Errorf("%s: IP %q, UA %q, created %v", c.Name, rec.IP, rec.UserAgent, s.CreatedAt)
		}
	}
}

// TestImportAfterFallback: sessions the fallback imported before are not
// imported again by Import, not even one revoked since; and a re-run
// after a user was deleted counts that user's imported sessions as
// imported before, not as missing users.
func TestImportAfterFallback(t *testing.T) {
	for _, d := range testutil.AllDialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			djangoDB, _, made := djangoMade(t, d)
			goDB := goDatabase(t, d)
			addUser(t, goDB, made.Users["alice"], "alice")
			addUser(t, goDB, made.Users["bob"], "bob")
			target, err := NewTarget(ctx, goDB.SQL, goDB.Dialect)
			if err != nil {
				t.Fatal(err)
			}
			signer, _ := NewSigner(secretKey, oldSecretKey)
			reader, _ := NewReader(djangoDB.SQL, djangoDB.Dialect, DjangoSession)
			tokens, err := NewTokens(ctx, &Fallback{Reader: reader, Signer: signer, Target: target})
			if err != nil {
				t.Fatal(err)
			}
			revoked, kept := made.Case(t, "login_sha256"), made.Case(t, "anonymous")
			for _, c := range []djangotest.Case{revoked, kept} {
				if _, err := tokens.Import(ctx, c.Key, time.Now()); err != nil {
					t.Fatalf("fallback import of %s: %v", c.Name, err)
				}
			}
			if n, err := target.Store().Delete(ctx, backend.KeyOf(revoked.Key)); n != 1 || err != nil {
				t.Fatalf("revoking: %d, %v", n, err)
			}
			want := expect(made, DjangoSession, made.Users["alice"], made.Users["bob"])
			rep, err := Import(ctx, ImportOptions{Reader: reader, Signer: signer, Target: target})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Already != 2 || rep.Imported != int64(len(want.imported)-2) || rep.Skipped[SkipMissingUser] != 0 {
				t.Fatalf("after the fallback: %+v; want 2 already, %d imported", rep, len(want.imported)-2)
			}
			if _, err := target.Store().Get(ctx, backend.KeyOf(revoked.Key), time.Now()); !errors.Is(err, backend.ErrNotFound) {
				t.Fatalf("Import brought a revoked session back: %v", err)
			}
			// bob leaves the Go app (his sessions go by ON DELETE CASCADE).
			q := "DELETE FROM users WHERE id = ?"
			if goDB.Dialect == "postgres" {
				q = "DELETE FROM users WHERE id = $1"
			}
			bob, _ := strconv.Atoi(made.Users["bob"])
			if _, err := goDB.SQL.Exec(q, bob); err != nil {
				t.Fatal(err)
			}
			rep, err = Import(ctx, ImportOptions{Reader: reader, Signer: signer, Target: target})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Imported != 0 || rep.Already != int64(len(want.imported)) || rep.NotImported() != int64(want.badSig+want.pickle) {
				t.Fatalf("after bob left: %+v; want %d already, nothing else", rep, len(want.imported))
			}
		})
	}
}

// TestNoDrivers: the package links no database driver (the app's pool
// comes with its own), so a Postgres app links neither go-sqlite3 nor
// the MySQL driver through it.
func TestNoDrivers(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/qsessions/qsessions/django").CombinedOutput()
	if err != nil {
		t.Skipf("go list: %v: %s", err, out)
	}
	for _, bad := range []string{"github.com/mattn/go-sqlite3", "github.com/go-sql-driver/mysql", "github.com/jackc/pgx", "github.com/lib/pq"} {
		if strings.Contains(string(out), bad) {
			t.Errorf("package django depends on %s", bad)
		}
	}
}
