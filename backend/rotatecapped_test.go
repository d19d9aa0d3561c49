package backend_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/qsessions/qsessions/backend"
)

// capFailStore writes sessions as its Store does, then fails the cap's
// step: a store on a database where the cap is a second statement that
// failed after the first committed.
type capFailStore struct{ *backend.MemStore }

func (s capFailStore) InsertCapped(ctx context.Context, rec *backend.Record, now time.Time, keep int) ([]string, error) {
	if err := s.Insert(ctx, rec); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w: connection lost", backend.ErrCapNotEnforced)
}

func (s capFailStore) RotateCapped(ctx context.Context, oldKey string, rec *backend.Record, now time.Time, keep int) ([]string, error) {
	if err := s.Rotate(ctx, oldKey, rec, now); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w: connection lost", backend.ErrCapNotEnforced)
}

// TestCapNotEnforcedIsNoFailure: when the store wrote the session but its
// cap step failed, DB's CreateCapped and RotateCapped report the write
// (the token, no error) with ok false, so that the caller enforces the
// cap itself; other errors still fail.
func TestCapNotEnforcedIsNoFailure(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	db := backend.NewDB(capFailStore{backend.NewMemStore()})
	rec := func() *backend.Record {
		return &backend.Record{Data: []byte("x"), ExpireDate: now.Add(time.Hour), UserID: 7, CreatedAt: now, UpdatedAt: now, LastActivity: now}
	}
	r := rec()
	token, ended, ok, err := db.CreateCapped(ctx, r, now, 3)
	if err != nil || ok || token == "" || len(ended) != 0 {
		t.Fatalf("CreateCapped = %q, %v, %v, %v; want a token, ok false, no error", token, ended, ok, err)
	}
	if _, err := db.Load(ctx, backend.KeyOf(token), now); err != nil {
		t.Fatalf("the created session: %v", err)
	}
	r2 := rec()
	token2, ended, ok, err := db.RotateCapped(ctx, r.Key, r2, now, 3)
	if err != nil || ok || token2 == "" || token2 == token || len(ended) != 0 {
		t.Fatalf("RotateCapped = %q, %v, %v, %v; want a new token, ok false, no error", token2, ended, ok, err)
	}
	if _, err := db.Load(ctx, backend.KeyOf(token2), now); err != nil {
		t.Fatalf("the rotated session: %v", err)
	}
	if _, err := db.Load(ctx, backend.KeyOf(token), now); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("the old key after the rotation: %v, want ErrNotFound", err)
	}
	// A rotation of a row that is gone still fails.
	if _, _, _, err := db.RotateCapped(ctx, r.Key, rec(), now, 3); !errors.Is(err, backend.ErrSessionInterrupted) {
		t.Fatalf("RotateCapped of a gone row: %v, want ErrSessionInterrupted", err)
	}
}
