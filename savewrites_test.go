package qsessions_test

import (
	"context"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
)

// TestSaveWrites: SaveWrites tells in advance whether Save will call the
// Backend (the middleware prepares its save timeout only then), and agrees
// with what Save then does.
func TestSaveWrites(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	store := backend.NewMemStore()
	m := qsessions.New(backend.NewDB(store))
	m.Now = func() time.Time { return now }
	m.ActivityInterval = time.Minute

	// wantSave checks SaveWrites, then that Save wrote (or not) as said.
	wantSave := func(name string, s *qsessions.Session, want bool) qsessions.Commit {
		t.Helper()
		if got := s.SaveWrites(); got != want {
			t.Fatalf("%s: SaveWrites = %v, want %v", name, got, want)
		}
		before := store.Len()
		var lastActivity time.Time
		if rec := s.Record(); rec != nil {
			lastActivity = rec.LastActivity
		}
		c, err := s.Save(ctx)
		if err != nil {
			t.Fatalf("%s: Save: %v", name, err)
		}
		rec := s.Record()
		wrote := store.Len() != before || (rec != nil && !rec.LastActivity.Equal(lastActivity)) || c.Token != ""
		if wrote != want {
			t.Fatalf("%s: Save wrote = %v, want %v", name, wrote, want)
		}
		if s.SaveWrites() {
			t.Fatalf("%s: SaveWrites after Save = true", name)
		}
		return c
	}

	wantSave("untouched", m.Start(ctx, "", "192.0.2.1", "ua"), false)
	s := m.Start(ctx, "", "192.0.2.1", "ua")
	s.Get("x")
	wantSave("read of a new session", s, false)
	s = m.Start(ctx, "", "192.0.2.1", "ua")
	if err := s.Set("k", "v"); err != nil {
		t.Fatal(err)
	}
	token := wantSave("new session with a value", s, true).Token

	now = now.Add(30 * time.Second)
	s = m.Start(ctx, token, "192.0.2.1", "ua")
	s.Get("k")
	wantSave("read within the interval", s, false)

	now = now.Add(time.Minute)
	s = m.Start(ctx, token, "192.0.2.1", "ua")
	s.Get("k")
	wantSave("read past the interval (activity due)", s, true)

	s = m.Start(ctx, token, "192.0.2.1", "ua")
	if err := s.Set("k", "w"); err != nil {
		t.Fatal(err)
	}
	if !s.SaveWrites() {
		t.Fatal("changed session: SaveWrites = false")
	}
}
