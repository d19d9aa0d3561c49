package middleware

import (
	"net/http"
	"strings"
	"testing"
)

// TestCookieValueMatchesNetHTTP: the allocation-free lookup finds what
// http.Request.Cookie finds, including net/http's limit on the number of
// cookies.
func TestCookieValueMatchesNetHTTP(t *testing.T) {
	many := strings.Repeat("x=1; ", maxCookies) + "sessionid=abc"
	for _, lines := range [][]string{
		{"sessionid=abc"},
		{"a=1; sessionid=abc; b=2"},
		{" a=1 ;  sessionid = abc ; "},
		{`sessionid="abc"`},
		{"a=1", "sessionid=second-line"},
		{"sessionid=first; sessionid=second"},
		{"sessionidx=no; xsessionid=no"},
		{"sessionid="},
		{},
		{many},
	} {
		r := &http.Request{Header: http.Header{"Cookie": lines}}
		want := ""
		if c, err := r.Cookie("sessionid"); err == nil {
			want = c.Value
		}
		if got := cookieValue(r.Header, "sessionid"); got != want {
			t.Errorf("%.60q: cookieValue %q, http.Request.Cookie %q", lines, got, want)
		}
	}
}
