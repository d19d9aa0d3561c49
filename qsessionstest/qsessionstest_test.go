package qsessionstest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/middleware"
	"github.com/qsessions/qsessions/qsessionstest"
)

func TestLoginAs(t *testing.T) {
	m := qsessionstest.NewManager()
	h := middleware.New(m, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := qsessions.FromContext(r.Context())
		fmt.Fprintf(w, "%v %s", s.UserID(), s.GetString("theme"))
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(qsessionstest.LoginAs(t, m, 42, map[string]any{"theme": "dark"}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if got := rec.Body.String(); got != "42 dark" {
		t.Fatalf("handler saw %q, want \"42 dark\"", got)
	}
	// Without the cookie the handler sees no user.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if got := rec.Body.String(); got != "<nil> " {
		t.Fatalf("anonymous request saw %q", got)
	}
}
