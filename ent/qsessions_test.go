package ent_test

// Hand-written: the conformance suite (internal/storetest) against the
// reference schema's generated store, on every dialect.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/ent/session"
	"github.com/qsessions/qsessions/internal/storetest"
	"github.com/qsessions/qsessions/internal/testutil"
)

func TestSessionStore(t *testing.T) { storetest.Run(t, harness) }

func harness(t *testing.T, db *testutil.DB, opts ...backend.StoreOption) *storetest.Env {
	ctx := context.Background()
	drv := testutil.NewCountingDriver(db.Driver())
	client := ent.NewClient(ent.Driver(drv))
	if err := client.Schema.Create(ctx); err != nil {
		t.Fatalf("creating the schema: %v", err)
	}
	users := 0
	return &storetest.Env{
		Store:   ent.NewSessionStore(client, opts...),
		Counter: drv,
		NewUser: func(ctx context.Context) (any, error) {
			users++
			u, err := client.User.Create().SetUsername(fmt.Sprintf("user%d", users)).Save(ctx)
			if err != nil {
				return nil, err
			}
			return u.ID, nil
		},
		DeleteUser: func(ctx context.Context, id any) error {
			return client.User.DeleteOneID(id.(int)).Exec(ctx)
		},
		DeleteByKey: func(ctx context.Context, key string) error {
			return client.Session.DeleteOneID(key).Exec(ctx)
		},
		DeleteByUserAgent: func(ctx context.Context, ua string) (int, error) {
			return client.Session.Delete().Where(session.UserAgent(ua)).Exec(ctx)
		},
		SetExpireDate: func(ctx context.Context, key string, at time.Time) (int, error) {
			return client.Session.Update().Where(session.ID(key)).SetExpireDate(at).Save(ctx)
		},
		DeleteByKeyInTx: func(ctx context.Context, key string) (func(bool) error, error) {
			tx, err := client.Tx(ctx)
			if err != nil {
				return nil, err
			}
			if err := tx.Session.DeleteOneID(key).Exec(ctx); err != nil {
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
		ClearUserSessions: func(ctx context.Context, id any) error {
			return client.User.UpdateOneID(id.(int)).ClearSessions().Exec(ctx)
		},
		RemoveUserSession: func(ctx context.Context, id any, key string) error {
			return client.User.UpdateOneID(id.(int)).RemoveSessionIDs(key).Exec(ctx)
		},
		AddUserSession: func(ctx context.Context, id any, key string) error {
			return client.User.UpdateOneID(id.(int)).AddSessionIDs(key).Exec(ctx)
		},
		LiveSessions: func(ctx context.Context, id any, now time.Time) ([]string, error) {
			u, err := client.User.Get(ctx, id.(int))
			if err != nil {
				return nil, err
			}
			return u.QuerySessions().Where(session.ExpireDateGT(now)).IDs(ctx)
		},
		CreateBulk: func(ctx context.Context, recs []*backend.Record) error {
			bs := make([]*ent.SessionCreate, len(recs))
			for i, r := range recs {
				b := client.Session.Create().
					SetID(r.Key).
					SetSessionData(r.Data).
					SetExpireDate(r.ExpireDate).
					SetCreatedAt(r.CreatedAt).
					SetUpdatedAt(r.UpdatedAt).
					SetLastActivity(r.LastActivity)
				if r.UserID != nil {
					b.SetUserID(r.UserID.(int))
				}
				if r.UserAgent != "" {
					b.SetUserAgent(r.UserAgent)
				}
				if r.IP != "" {
					b.SetIP(r.IP)
				}
				bs[i] = b
			}
			return client.Session.CreateBulk(bs...).Exec(ctx)
		},
	}
}

func TestSchema(t *testing.T) {
	storetest.RunSchema(t, func(ctx context.Context, drv dialect.Driver) error {
		return ent.NewClient(ent.Driver(drv)).Schema.Create(ctx)
	})
}

func TestGeneratedRecordAndPublicID(t *testing.T) {
	ua, ip, uid := "curl/8", "203.0.113.4", 7
	at := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.FixedZone("x", 3600))
	s := &ent.Session{ID: backend.KeyOf("t"), SessionData: []byte("d"), UserAgent: &ua, IP: &ip, UserID: &uid,
		ExpireDate: at, CreatedAt: at, UpdatedAt: at, LastActivity: at}
	r := s.Record()
	if r.Key != s.ID || string(r.Data) != "d" || r.UserID != 7 || r.UserAgent != ua || r.IP != ip ||
		r.ExpireDate != at.UTC() || r.CreatedAt.Location() != time.UTC {
		t.Fatalf("Record() = %+v", r)
	}
	if s.PublicID() != backend.PublicID(s.ID) || len(s.PublicID()) != backend.PublicIDLen || s.PublicID() != s.ID[:16] {
		t.Fatalf("PublicID = %q", s.PublicID())
	}
	if r := (&ent.Session{ID: "k"}).Record(); r.UserID != nil || r.UserAgent != "" || r.IP != "" {
		t.Fatalf("NULL columns gave %+v", r)
	}
}

// TestAdminSource runs the generated admin source on every dialect:
// filters, search by IP prefix and by username, paging, detail by public
// id, and no session_data in listings.
func TestAdminSource(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		drv := testutil.NewCountingDriver(db.Driver())
		client := ent.NewClient(ent.Driver(drv))
		if err := client.Schema.Create(ctx); err != nil {
			t.Fatal(err)
		}
		alice := client.User.Create().SetUsername("Alice").SaveX(ctx)
		bob := client.User.Create().SetUsername("bob").SaveX(ctx)
		b := backend.NewDB(ent.NewSessionStore(client))
		now := time.Now().UTC()
		mk := func(uid any, ip string, ttl, ago time.Duration) string {
			r := &backend.Record{Data: []byte("secret"), ExpireDate: now.Add(ttl), UserID: uid, IP: ip, UserAgent: "ua",
				CreatedAt: now.Add(-ago), UpdatedAt: now.Add(-ago), LastActivity: now.Add(-ago)}
			if _, err := b.Create(ctx, r, now); err != nil {
				t.Fatal(err)
			}
			return r.Key
		}
		a1 := mk(alice.ID, "10.0.0.1", time.Hour, 1*time.Minute)
		a2 := mk(alice.ID, "10.1.0.1", time.Hour, 2*time.Minute)
		b1 := mk(bob.ID, "192.0.2.7", time.Hour, 3*time.Minute)
		anon := mk(nil, "192.0.2.8", time.Hour, 4*time.Minute)
		old := mk(bob.ID, "10.0.0.9", -time.Hour, 5*time.Minute)
		src := ent.NewSessionAdminSource(client)
		list := func(f qsessions.AdminFilter) ([]string, int, []string) {
			t.Helper()
			f.Now, f.Limit = now, max(f.Limit, 1)
			if f.Limit == 1 && f.Offset == 0 {
				f.Limit = 50
			}
			drv.Reset()
			got, total, err := src.List(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range drv.Queries() {
				if strings.Contains(q.SQL, "session_data") {
					t.Errorf("List read session_data: %s", q.SQL)
				}
			}
			var ids, owners []string
			for _, s := range got {
				ids = append(ids, s.Info.ID)
				owners = append(owners, s.OwnerName)
			}
			return ids, total, owners
		}
		id := backend.PublicID
		if ids, total, owners := list(qsessions.AdminFilter{}); total != 4 || !slices.Equal(ids, []string{id(a1), id(a2), id(b1), id(anon)}) ||
			!slices.Equal(owners, []string{"Alice", "Alice", "bob", ""}) {
			t.Errorf("active: %v (total %d) owners %v", ids, total, owners)
		}
		if ids, total, _ := list(qsessions.AdminFilter{State: qsessions.StateExpired}); total != 1 || !slices.Equal(ids, []string{id(old)}) {
			t.Errorf("expired: %v (%d)", ids, total)
		}
		if _, total, _ := list(qsessions.AdminFilter{State: qsessions.StateAll}); total != 5 {
			t.Errorf("all: %d", total)
		}
		if ids, total, _ := list(qsessions.AdminFilter{OwnerID: bob.ID, State: qsessions.StateAll}); total != 2 || !slices.Equal(ids, []string{id(b1), id(old)}) {
			t.Errorf("owner bob: %v (%d)", ids, total)
		}
		if ids, total, _ := list(qsessions.AdminFilter{Search: "10.0."}); total != 1 || !slices.Equal(ids, []string{id(a1)}) {
			t.Errorf("search IP prefix: %v (%d)", ids, total)
		}
		if ids, total, _ := list(qsessions.AdminFilter{Search: "ALI"}); total != 2 || !slices.Equal(ids, []string{id(a1), id(a2)}) {
			t.Errorf("search username, any case: %v (%d)", ids, total)
		}
		if ids, total, _ := list(qsessions.AdminFilter{Offset: 1, Limit: 2}); total != 4 || !slices.Equal(ids, []string{id(a2), id(b1)}) {
			t.Errorf("page 2 of 2: %v (%d)", ids, total)
		}
		if _, _, err := src.List(ctx, qsessions.AdminFilter{OwnerID: "x", Now: now, Limit: 1}); err == nil {
			t.Error("an owner ID of the wrong type was accepted")
		}
		for _, k := range []string{a1, old} {
			rec, err := src.Get(ctx, strings.ToUpper(id(k)))
			if err != nil || rec.Key != k || string(rec.Data) != "secret" {
				t.Errorf("Get(%s) = %+v, %v", id(k), rec, err)
			}
		}
		for _, bad := range []string{"0000000000000000", "nope", ""} {
			if _, err := src.Get(ctx, bad); !errors.Is(err, backend.ErrNotFound) {
				t.Errorf("Get(%q) = %v, want ErrNotFound", bad, err)
			}
		}
	})
}

func TestNewSessionStoreOncePerClient(t *testing.T) {
	client := ent.NewClient(ent.Driver(testutil.Open(t, testutil.SQLite).Driver()))
	s1 := ent.NewSessionStore(client)
	if s2 := ent.NewSessionStore(client); s2 != s1 {
		t.Fatal("a second NewSessionStore made a second store (and a second set of hooks)")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("NewSessionStore with options on a client that has a store did not panic")
		}
	}()
	ent.NewSessionStore(client, backend.WithKeyBatch(5))
}

// TestEventLog runs the generated event log on every dialect: append,
// recent (newest first, since, limit), retention, and the cascade when a
// user is deleted.
func TestEventLog(t *testing.T) {
	testutil.EachDialect(t, func(t *testing.T, db *testutil.DB) {
		ctx := context.Background()
		client := ent.NewClient(ent.Driver(db.Driver()))
		if err := client.Schema.Create(ctx); err != nil {
			t.Fatal(err)
		}
		alice := client.User.Create().SetUsername("alice").SaveX(ctx)
		bob := client.User.Create().SetUsername("bob").SaveX(ctx)
		log := ent.NewSessionEventLog(client)
		base := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
		for i, kind := range []qsessions.EventKind{qsessions.EventSignIn, qsessions.EventRevoke, qsessions.EventSignOut} {
			e := qsessions.LoggedEvent{Event: qsessions.Event{Kind: kind, Time: base.Add(time.Duration(i) * time.Hour), UserID: alice.ID,
				SessionID: "0123456789abcdef", IP: "192.0.2.1", UserAgent: strings.Repeat("é", 400)},
				Device: "Safari on iPhone", Location: "Linköping, Sweden", Country: "SE", NewDevice: i == 0}
			if kind == qsessions.EventRevoke {
				e.Cause, e.ByID = qsessions.CauseOwner, "fedcba9876543210"
			}
			if err := log.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		if err := log.Append(ctx, qsessions.LoggedEvent{Event: qsessions.Event{Kind: qsessions.EventSignIn, Time: base, UserID: bob.ID, SessionID: "1111111111111111"}}); err != nil {
			t.Fatal(err)
		}
		if err := log.Append(ctx, qsessions.LoggedEvent{Event: qsessions.Event{Kind: qsessions.EventSignIn, Time: base}}); err != nil {
			t.Fatalf("an anonymous event: %v (want it skipped)", err)
		}
		got, err := log.Recent(ctx, alice.ID, base.Add(30*time.Minute), 10)
		if err != nil || len(got) != 2 || got[0].Kind != qsessions.EventSignOut || got[1].Kind != qsessions.EventRevoke ||
			got[1].Cause != qsessions.CauseOwner || got[1].ByID != "fedcba9876543210" || got[1].Country != "SE" ||
			got[1].Device != "Safari on iPhone" || got[1].UserID != alice.ID || len([]rune(got[1].UserAgent)) != 300 ||
			!got[0].Time.Equal(base.Add(2*time.Hour)) {
			t.Fatalf("Recent = %+v, %v", got, err)
		}
		if got, _ := log.Recent(ctx, alice.ID, base, 1); len(got) != 1 || got[0].Kind != qsessions.EventSignOut {
			t.Fatalf("limit 1: %+v", got)
		}
		if n, err := log.DeleteBefore(ctx, base.Add(90*time.Minute), 100); err != nil || n != 3 { // alice's first two and bob's
			t.Fatalf("DeleteBefore = %d, %v", n, err)
		}
		client.User.DeleteOneID(alice.ID).ExecX(ctx)
		if n := client.SessionEvent.Query().CountX(ctx); n != 0 {
			t.Fatalf("%d events survive their user's deletion", n)
		}
	})
}
