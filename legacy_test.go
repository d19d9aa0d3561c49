package qsessions_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
)

// fakeLegacy accepts 32 lower-case letters and imports the tokens in its
// table once, as the django package does with its ledger.
type fakeLegacy struct {
	store    *backend.MemStore
	table    map[string]any // token -> user
	imported map[string]bool
	calls    int
}

func (f *fakeLegacy) Valid(t string) bool {
	return len(t) == 32 && strings.Trim(t, "abcdefghijklmnopqrstuvwxyz") == ""
}

func (f *fakeLegacy) Import(ctx context.Context, t string, now time.Time) (*backend.Record, error) {
	f.calls++
	uid, ok := f.table[t]
	if !ok || f.imported[t] {
		return nil, backend.ErrNotFound
	}
	f.imported[t] = true
	data, _ := qsessions.EncodeData(map[string]any{"from": "legacy"}, time.Time{}, qsessions.PersistDefault)
	r := &backend.Record{Key: backend.KeyOf(t), UserID: uid, Data: data, ExpireDate: now.Add(time.Hour),
		CreatedAt: now, UpdatedAt: now, LastActivity: now}
	if err := f.store.Insert(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

func TestLegacyTokens(t *testing.T) {
	ctx := context.Background()
	store := backend.NewMemStore()
	m := qsessions.New(backend.NewDB(store))
	tok := strings.Repeat("q", 32)
	// Off by default: a legacy-shaped cookie is no session and no query.
	if uid := m.Start(ctx, tok, "192.0.2.1", "A").UserID(); uid != nil {
		t.Fatal("a legacy cookie was accepted with Legacy unset")
	}
	f := &fakeLegacy{store: store, table: map[string]any{tok: 7}, imported: map[string]bool{}}
	m.Legacy = f
	s := m.Start(ctx, tok, "192.0.2.1", "A")
	if uid := s.UserID(); uid != 7 || s.GetString("from") != "legacy" || f.calls != 1 {
		t.Fatalf("imported session: user %v, from %q, %d imports", uid, s.GetString("from"), f.calls)
	}
	// Found by its key next time: no import.
	if uid := m.Start(ctx, tok, "192.0.2.1", "A").UserID(); uid != 7 || f.calls != 1 {
		t.Fatalf("second request: user %v, %d imports", uid, f.calls)
	}
	// Login rotates it to a qsessions token.
	s = m.Start(ctx, tok, "192.0.2.1", "A")
	if err := s.Login(ctx, 7); err != nil {
		t.Fatal(err)
	}
	c, err := s.Save(ctx)
	if err != nil || !backend.ValidToken(c.Token) {
		t.Fatalf("login from a legacy session gave cookie %q, %v", c.Token, err)
	}
	// The old legacy session is gone, and the importer will not bring it
	// back: anonymous.
	if uid := m.Start(ctx, tok, "192.0.2.1", "A").UserID(); uid != nil {
		t.Fatalf("the rotated-away legacy cookie still opens user %v", uid)
	}
	// A malformed cookie never reaches the importer.
	before := f.calls
	for _, bad := range []string{"short", strings.Repeat("Q", 32), strings.Repeat("q", 33)} {
		m.Start(ctx, bad, "192.0.2.1", "A").UserID()
	}
	if f.calls != before {
		t.Fatalf("malformed cookies reached the importer %d times", f.calls-before)
	}
}
