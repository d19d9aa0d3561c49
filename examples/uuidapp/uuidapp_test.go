package uuidapp_test

// The conformance suite (internal/storetest) against uuidapp's generated
// store: UUID user IDs, a user type named Account, a session type named
// LoginSession beside an unrelated Session type.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/examples/uuidapp/ent"
	"github.com/qsessions/qsessions/examples/uuidapp/ent/loginsession"
	"github.com/qsessions/qsessions/internal/storetest"
	"github.com/qsessions/qsessions/internal/testutil"
)

func TestLoginSessionStore(t *testing.T) { storetest.Run(t, harness) }

func harness(t *testing.T, db *testutil.DB, opts ...backend.StoreOption) *storetest.Env {
	ctx := context.Background()
	drv := testutil.NewCountingDriver(db.Driver())
	client := ent.NewClient(ent.Driver(drv))
	if err := client.Schema.Create(ctx); err != nil {
		t.Fatalf("creating the schema: %v", err)
	}
	accounts := 0
	return &storetest.Env{
		Store:   ent.NewLoginSessionStore(client, opts...),
		Counter: drv,
		NewUser: func(ctx context.Context) (any, error) {
			accounts++
			a, err := client.Account.Create().SetEmail(fmt.Sprintf("a%d@example.com", accounts)).Save(ctx)
			if err != nil {
				return nil, err
			}
			return a.ID, nil
		},
		DeleteUser: func(ctx context.Context, id any) error {
			return client.Account.DeleteOneID(id.(uuid.UUID)).Exec(ctx)
		},
		DeleteByKey: func(ctx context.Context, key string) error {
			return client.LoginSession.DeleteOneID(key).Exec(ctx)
		},
		DeleteByUserAgent: func(ctx context.Context, ua string) (int, error) {
			return client.LoginSession.Delete().Where(loginsession.UserAgent(ua)).Exec(ctx)
		},
		SetExpireDate: func(ctx context.Context, key string, at time.Time) (int, error) {
			return client.LoginSession.Update().Where(loginsession.ID(key)).SetExpireDate(at).Save(ctx)
		},
		DeleteByKeyInTx: func(ctx context.Context, key string) (func(bool) error, error) {
			tx, err := client.Tx(ctx)
			if err != nil {
				return nil, err
			}
			if err := tx.LoginSession.DeleteOneID(key).Exec(ctx); err != nil {
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
			return client.Account.UpdateOneID(id.(uuid.UUID)).ClearSessions().Exec(ctx)
		},
		RemoveUserSession: func(ctx context.Context, id any, key string) error {
			return client.Account.UpdateOneID(id.(uuid.UUID)).RemoveSessionIDs(key).Exec(ctx)
		},
		AddUserSession: func(ctx context.Context, id any, key string) error {
			return client.Account.UpdateOneID(id.(uuid.UUID)).AddSessionIDs(key).Exec(ctx)
		},
		LiveSessions: func(ctx context.Context, id any, now time.Time) ([]string, error) {
			a, err := client.Account.Get(ctx, id.(uuid.UUID))
			if err != nil {
				return nil, err
			}
			return a.QuerySessions().Where(loginsession.ExpireDateGT(now)).IDs(ctx)
		},
		CreateBulk: func(ctx context.Context, recs []*backend.Record) error {
			bs := make([]*ent.LoginSessionCreate, len(recs))
			for i, r := range recs {
				b := client.LoginSession.Create().
					SetID(r.Key).
					SetSessionData(r.Data).
					SetExpireDate(r.ExpireDate).
					SetCreatedAt(r.CreatedAt).
					SetUpdatedAt(r.UpdatedAt).
					SetLastActivity(r.LastActivity)
				if r.UserID != nil {
					b.SetUserID(r.UserID.(uuid.UUID))
				}
				if r.UserAgent != "" {
					b.SetUserAgent(r.UserAgent)
				}
				if r.IP != "" {
					b.SetIP(r.IP)
				}
				bs[i] = b
			}
			return client.LoginSession.CreateBulk(bs...).Exec(ctx)
		},
	}
}

func TestSchema(t *testing.T) {
	storetest.RunSchema(t, func(ctx context.Context, drv dialect.Driver) error {
		return ent.NewClient(ent.Driver(drv)).Schema.Create(ctx)
	})
}
