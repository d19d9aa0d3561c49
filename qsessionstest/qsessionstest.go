// Package qsessionstest helps apps test their own handlers that use
// qsessions: a Manager on an in-memory store, and LoginAs, which gives a
// cookie of a session logged in as a user.
//
//	m := qsessionstest.NewManager()
//	h := middleware.New(m, middleware.Options{})(appHandler)
//	r := httptest.NewRequest("GET", "/account", nil)
//	r.AddCookie(qsessionstest.LoginAs(t, m, userID, nil))
package qsessionstest

import (
	"context"
	"net/http"
	"testing"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
)

// CookieName is the middleware's default session cookie name.
const CookieName = "sessionid"

// NewManager returns a Manager with default settings on a fresh in-memory
// store (backend.MemStore): no database, one process only.
func NewManager() *qsessions.Manager {
	return qsessions.New(backend.NewDB(backend.NewMemStore()))
}

// LoginAs creates a session logged in as userID holding values, stores it
// through m, and returns its cookie under CookieName (rename it if the app
// configured another). It fails t on any error.
func LoginAs(t testing.TB, m *qsessions.Manager, userID any, values map[string]any) *http.Cookie {
	t.Helper()
	ctx := context.Background()
	s := m.Start(ctx, "", "192.0.2.1", "qsessionstest")
	for k, v := range values {
		if err := s.Set(k, v); err != nil {
			t.Fatalf("qsessionstest: %v", err)
		}
	}
	if err := s.Login(ctx, userID); err != nil {
		t.Fatalf("qsessionstest: login: %v", err)
	}
	c, err := s.Save(ctx)
	if err != nil {
		t.Fatalf("qsessionstest: save: %v", err)
	}
	return &http.Cookie{Name: CookieName, Value: c.Token}
}
