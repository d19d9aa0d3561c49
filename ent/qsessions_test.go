package ent_test

// Hand-written: the conformance suite (internal/storetest) against the
// reference schema's generated store, on every dialect.

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/ent"
	"github.com/qsessions/qsessions/ent/session"
	"github.com/qsessions/qsessions/internal/storetest"
	"github.com/qsessions/qsessions/internal/testutil"
	"github.com/qsessions/qsessions/location"
	"github.com/qsessions/qsessions/location/locationtest"
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

func TestGeneratedDeviceAndLocation(t *testing.T) {
	dir := t.TempDir()
	locationtest.WriteFile(t, filepath.Join(dir, "GeoLite2-City.mmdb"), locationtest.Options{DatabaseType: "GeoLite2-City"},
		locationtest.Record{Network: "203.0.113.0/24", City: "Tehran", Country: "Iran", CountryCode: "IR"})
	l, err := location.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ua := "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36"
	ip := "203.0.113.4"
	s := &ent.Session{ID: backend.KeyOf("t"), UserAgent: &ua, IP: &ip}
	if got := s.Device().String(); got != "Other / macOS 10.13.6 / Chrome 70.0.3538.102" {
		t.Fatalf("Device = %q", got)
	}
	if got := s.Location(l); got != "Tehran, Iran" {
		t.Fatalf("Location = %q", got)
	}
	if s.PublicID() != qsessions.PublicID(s.ID) || s.PublicID() == s.ID {
		t.Fatalf("PublicID = %q", s.PublicID())
	}
	if got := (&ent.Session{}).Location(l); got != "" {
		t.Fatalf("no IP located as %q", got)
	}
}
