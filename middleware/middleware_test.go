package middleware_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/middleware"
)

func sessionCookie(t *testing.T, res *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range res.Cookies() {
		if c.Name == "sessionid" {
			return c
		}
	}
	return nil
}

func TestCookieFlagsAndSaveBeforeHeaders(t *testing.T) {
	m := qsessions.New(backend.NewDB(backend.NewMemStore()))
	late := make(chan error, 1)
	h := middleware.New(m, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := qsessions.FromContext(r.Context())
		_ = s.Set("a", "1")
		w.WriteHeader(201)
		io.WriteString(w, "streamed")
		http.NewResponseController(w).Flush()
		late <- s.Set("late", "x") // after the headers: must be reported
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	c := sessionCookie(t, res)
	if c == nil || res.StatusCode != 201 {
		t.Fatalf("status %d, cookie %v", res.StatusCode, c)
	}
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
		t.Fatalf("cookie flags: %+v", c)
	}
	if !backend.ValidToken(c.Value) {
		t.Fatalf("cookie value %q is not a token", c.Value)
	}
	if setErr := <-late; !errors.Is(setErr, qsessions.ErrHeadersWritten) {
		t.Fatalf("Set after headers: %v, want ErrHeadersWritten", setErr)
	}
}

func TestHijackAndResponseController(t *testing.T) {
	store := backend.NewMemStore()
	m := qsessions.New(backend.NewDB(store))
	h := middleware.New(m, middleware.Options{Cookie: middleware.Cookie{Insecure: true}})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = qsessions.FromContext(r.Context()).Set("ws", true)
		if _, ok := w.(http.Flusher); !ok {
			t.Error("not a Flusher")
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
		brw.Flush()
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	if string(b) != "hi" {
		t.Fatalf("hijacked body %q", b)
	}
	if store.Len() != 1 {
		t.Fatalf("session not saved before the hijack: %d rows", store.Len())
	}
}

func TestSaveSurvivesClientHangup(t *testing.T) {
	store := backend.NewMemStore()
	m := qsessions.New(backend.NewDB(store))
	var tok string
	{
		s := m.Start(context.Background(), "", "", "")
		_ = s.Set("a", 1)
		c, _ := s.Save(context.Background())
		tok = c.Token
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
	r.AddCookie(&http.Cookie{Name: "sessionid", Value: tok})
	// The load uses the live context; the client hangs up before the save.
	wrapped := middleware.New(m, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := qsessions.FromContext(r.Context())
		_ = s.Load()
		_ = s.Set("b", 2)
		cancel()
	}))
	wrapped.ServeHTTP(httptest.NewRecorder(), r)
	rec, err := store.Get(context.Background(), backend.KeyOf(tok), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	vals, _ := qsessions.DecodeData(rec.Data)
	if vals["b"] != 2 {
		t.Fatalf("save was cancelled with the client: %v", vals)
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		remote, xff, fwd, want string
	}{
		{"192.0.2.1:1", "", "", "192.0.2.1"},
		{"192.0.2.1:1", "203.0.113.5", "", "192.0.2.1"},                     // untrusted peer: header ignored
		{"10.0.0.2:1", "203.0.113.5", "", "203.0.113.5"},                    // trusted proxy
		{"10.0.0.2:1", "1.1.1.1, 203.0.113.5, 10.0.0.9", "", "203.0.113.5"}, // right-most untrusted
		{"10.0.0.2:1", "", `for="[2001:db8::1]:4711";proto=https`, "2001:db8::1"},
		{"10.0.0.2:1", "garbage", "", "10.0.0.2"},
		{"[::1]:1", "::ffff:192.0.2.9", "", "192.0.2.9"},
		{"[fe80::1%eth0]:1", "", "", "fe80::1"},
		{"not an address", "", "", "invalid IP"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if c.fwd != "" {
			r.Header.Set("Forwarded", c.fwd)
		}
		if got := middleware.ClientIP(r, trusted).String(); got != c.want {
			t.Errorf("%+v: got %s", c, got)
		}
	}
}

func TestHostPrefixCookieRules(t *testing.T) {
	m := qsessions.New(backend.NewDB(backend.NewMemStore()))
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "__Host-") {
			t.Fatalf("insecure __Host- cookie accepted: %v", r)
		}
	}()
	middleware.New(m, middleware.Options{Cookie: middleware.Cookie{Name: "__Host-s", Insecure: true}})
}

func FuzzMiddleware(f *testing.F) {
	store := backend.NewMemStore()
	m := qsessions.New(backend.NewDB(store))
	h := middleware.New(m, middleware.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := qsessions.FromContext(r.Context())
			if r.URL.Query().Get("w") != "" {
				_ = s.Set("k", r.URL.Query().Get("w"))
			} else {
				s.Get("k")
			}
		}))
	tok, _, _ := backend.NewToken(nil)
	f.Add(tok, "10.0.0.1:5", "1.2.3.4", "", "Mozilla/5.0", "x")
	f.Add("", "[::1]:1", "", `for=unknown`, "", "")
	f.Fuzz(func(t *testing.T, cookie, remote, xff, fwd, ua, w string) {
		r := httptest.NewRequest("GET", "/?w="+url.QueryEscape(w), nil)
		r.RemoteAddr = remote
		r.Header.Set("Cookie", "sessionid="+cookie)
		r.Header.Set("X-Forwarded-For", xff)
		r.Header.Set("Forwarded", fwd)
		r.Header.Set("User-Agent", ua)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != 200 {
			t.Fatalf("code %d", rec.Code)
		}
	})
}

func FuzzClientIP(f *testing.F) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	f.Add("10.0.0.1:80", "203.0.113.1, 10.0.0.2", "")
	f.Add("[2001:db8::1]:80", "", `for="[2001:db8::2]";by=x, for=198.51.100.1`)
	f.Add("192.0.2.1:1", "10.0.0.1", "for=10.0.0.3")
	f.Fuzz(func(t *testing.T, remote, xff, fwd string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		r.Header.Set("Forwarded", fwd)
		got := middleware.ClientIP(r, trusted)
		peer := middleware.ClientIP(&http.Request{RemoteAddr: remote, Header: http.Header{}}, nil)
		// Headers count only when the peer is a trusted proxy.
		trustedPeer := false
		for _, p := range trusted {
			trustedPeer = trustedPeer || (peer.IsValid() && p.Contains(peer))
		}
		if !trustedPeer && got != peer {
			t.Fatalf("untrusted peer %q: got %v, want the peer %v", remote, got, peer)
		}
		if got.IsValid() && (got.Is4In6() || got.Zone() != "") {
			t.Fatalf("not normalised: %v", got)
		}
	})
}

func TestCookieHeaderParsing(t *testing.T) {
	store := backend.NewMemStore()
	m := qsessions.New(backend.NewDB(store))
	s := m.Start(context.Background(), "", "", "")
	_ = s.Set("a", 1)
	c, _ := s.Save(context.Background())
	h := middleware.New(m, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, fmt.Sprint(qsessions.FromContext(r.Context()).GetInt("a")))
	}))
	for _, header := range []string{
		"sessionid=" + c.Token,
		"theme=dark; sessionid=" + c.Token + "; other=1",
		`sessionid="` + c.Token + `"`,
		"xsessionid=nope;sessionid=" + c.Token,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Cookie", header)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Body.String() != "1" {
			t.Errorf("Cookie %q: session not found (%q)", header, rec.Body.String())
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", "other="+c.Token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Body.String() != "0" {
		t.Error("a cookie of another name was taken as the session")
	}
}
