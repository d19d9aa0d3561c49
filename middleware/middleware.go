// Package middleware is qsessions' net/http middleware: it reads the session
// cookie, finds the client IP (trusting X-Forwarded-For only from configured
// proxies) and the User-Agent, puts a lazy *qsessions.Session in the request
// context, and saves it just before the first byte of the response headers.
//
//	mux := http.NewServeMux()
//	...
//	http.ListenAndServe(addr, middleware.New(manager, middleware.Options{})(mux))
package middleware

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/internal/ratelog"
)

// Cookie configures the session cookie. The zero value gives the defaults.
type Cookie struct {
	// Name is the cookie name; default "sessionid" (Django's). A "__Host-"
	// name requires Secure, Path "/" and no Domain, and New enforces that.
	Name string
	// Domain is the cookie's Domain; default none (host-only).
	Domain string
	// Path is the cookie's Path; default "/".
	Path string
	// Insecure turns the Secure flag off, for local HTTP only. Default: Secure.
	Insecure bool
	// SameSite defaults to http.SameSiteLaxMode: sent on top-level
	// navigations, not on cross-site subrequests or POSTs.
	SameSite http.SameSite
	// BrowserSession makes cookies end with the browser unless the session
	// asked for remember-me. Default: persistent until the session expires.
	BrowserSession bool
}

// Options configures the middleware. The zero value gives the defaults.
type Options struct {
	Cookie Cookie
	// BoundCookie is the name of the short-lived cookie of device-bound
	// sessions (DBSC; package dbsc sets it, with the same default); the
	// middleware hands it to the session, which requires it for a bound
	// session. Default DefaultBoundCookie.
	BoundCookie string
	// TrustedProxies are the peers whose X-Forwarded-For / Forwarded
	// headers are believed; default none, so the client IP is RemoteAddr.
	TrustedProxies []netip.Prefix
	// ErrorHandler answers a request whose session could not be loaded or
	// saved, before any header was written; the headers the handler set
	// (a redirect's Location, say) are dropped first. Default:
	// DefaultErrorHandler.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// SaveTimeout bounds a save; default 5 s. Saves run with
	// context.WithoutCancel, so a client that hangs up does not cancel a
	// logout; when the request's context has a deadline, the save ends at
	// most SaveGrace after it. The Manager's Timeout bounds each backend
	// call within it.
	SaveTimeout time.Duration
	// Logger receives the failures behind error responses and save errors
	// that happen after headers were written, each kind at most once a
	// minute with a count of the lines held back; default slog.Default().
	Logger *slog.Logger
}

// SaveGrace is how long past its request's deadline a save may run (the
// request had a deadline, e.g. a budget the app set): enough for one
// statement on a healthy database, never a hung database's worth.
const SaveGrace = 500 * time.Millisecond

// DefaultBoundCookie is the default name of the bound cookie of
// device-bound sessions, package dbsc's default.
const DefaultBoundCookie = "__Host-qsessions_dbsc"

// RetryAfter is the Retry-After DefaultErrorHandler sends with a 503, in
// seconds.
const RetryAfter = "2"

// DefaultErrorHandler answers, with a short plain-text body:
//   - 400 for backend.ErrSessionInterrupted (Django's SessionInterrupted):
//     the session was signed out elsewhere while the request ran;
//   - 503 with Retry-After for qsessions.ErrUnavailable: the database or the
//     cache did not answer in time; the session is probably intact, so the
//     client should retry rather than sign in again;
//   - 500 for anything else (a value too large, a bug).
func DefaultErrorHandler(w http.ResponseWriter, _ *http.Request, err error) {
	switch {
	case errors.Is(err, backend.ErrSessionInterrupted):
		http.Error(w, "Your session ended while the request was processed (it was signed out elsewhere). Please try again.", http.StatusBadRequest)
	case errors.Is(err, qsessions.ErrUnavailable):
		w.Header().Set("Retry-After", RetryAfter)
		http.Error(w, "The service is briefly unavailable. Please try again in a moment.", http.StatusServiceUnavailable)
	default:
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
	}
}

// errorClass names the kind of a session error for the logs.
func errorClass(err error) (string, slog.Level) {
	switch {
	case errors.Is(err, backend.ErrSessionInterrupted):
		return "interrupted", slog.LevelInfo
	case errors.Is(err, qsessions.ErrUnavailable):
		return "unavailable", slog.LevelError
	}
	return "internal", slog.LevelError
}

// New returns the middleware. It panics if opts.Cookie breaks the __Host-
// prefix rules (a configuration error found at start-up).
func New(m *qsessions.Manager, opts Options) func(http.Handler) http.Handler {
	c := opts.Cookie
	if c.Name == "" {
		c.Name = "sessionid"
	}
	if c.Path == "" {
		c.Path = "/"
	}
	if c.SameSite == 0 {
		c.SameSite = http.SameSiteLaxMode
	}
	if strings.HasPrefix(c.Name, "__Host-") && (c.Insecure || c.Path != "/" || c.Domain != "") {
		panic("middleware: a __Host- cookie must be Secure, with Path \"/\" and no Domain")
	}
	if strings.HasPrefix(c.Name, "__Secure-") && c.Insecure {
		panic("middleware: a __Secure- cookie must be Secure")
	}
	opts.Cookie = c
	if opts.ErrorHandler == nil {
		opts.ErrorHandler = DefaultErrorHandler
	}
	if opts.SaveTimeout <= 0 {
		opts.SaveTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BoundCookie == "" {
		opts.BoundCookie = DefaultBoundCookie
	}
	logs := &ratelog.Limiter{}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token := cookieValue(r.Header, c.Name)
			s := m.StartAddr(r.Context(), token, ClientIP(r, opts.TrustedProxies), r.UserAgent())
			if token != "" {
				if b := cookieValue(r.Header, opts.BoundCookie); b != "" {
					s.SetBoundCredential(b)
				}
			}
			r = r.WithContext(qsessions.NewContext(r.Context(), s))
			sw := &responseWriter{ResponseWriter: w, s: s, r: r, opts: &opts, logs: logs}
			next.ServeHTTP(sw, r)
			sw.commit()
		})
	}
}

// responseWriter saves the session before the first header byte.
type responseWriter struct {
	http.ResponseWriter
	s    *qsessions.Session
	r    *http.Request
	opts *Options
	logs *ratelog.Limiter

	once    sync.Once
	failed  bool // an error response replaced the handler's
	written bool
}

// commit saves the session and sets or deletes the cookie; it runs once.
func (w *responseWriter) commit() {
	w.once.Do(func() {
		ctx := w.r.Context() // a session that writes nothing: no timer
		if w.s.SaveWrites() {
			// A client that hangs up does not cancel the save; a request
			// with a deadline keeps it, with a second's grace, so the save
			// never stretches it far past its budget.
			d := w.opts.SaveTimeout
			if dl, ok := ctx.Deadline(); ok {
				d = min(d, max(time.Until(dl), 0)+SaveGrace)
			}
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), d)
			defer cancel()
		}
		res, err := w.s.Save(ctx)
		if err != nil && !w.written {
			// The error response replaces the handler's: its headers (a
			// redirect's Location, a content type) go.
			clear(w.Header())
		}
		c := w.opts.Cookie
		switch {
		case res.Delete:
			http.SetCookie(w.ResponseWriter, &http.Cookie{Name: c.Name, Value: "", Path: c.Path, Domain: c.Domain,
				MaxAge: -1, Secure: !c.Insecure, HttpOnly: true, SameSite: c.SameSite})
		case res.Token != "":
			ck := &http.Cookie{Name: c.Name, Value: res.Token, Path: c.Path, Domain: c.Domain,
				Secure: !c.Insecure, HttpOnly: true, SameSite: c.SameSite}
			persist := res.Persist > 0 || (res.Persist == 0 && !c.BrowserSession)
			if persist {
				ck.Expires = res.Expires
				ck.MaxAge = max(1, int(time.Until(res.Expires).Seconds()))
			}
			http.SetCookie(w.ResponseWriter, ck)
		}
		if res.Token != "" || res.Delete || w.s.Accessed() {
			w.Header().Add("Vary", "Cookie")
		}
		if err != nil {
			class, level := errorClass(err)
			if w.written {
				w.logs.Log(w.r.Context(), w.opts.Logger, level, "after-headers-"+class,
					"qsessions: saving the session after the response started", "err", err)
				return
			}
			w.logs.Log(w.r.Context(), w.opts.Logger, level, class+" "+w.r.Method+" "+w.r.URL.Path,
				"qsessions: answering with an error: the session could not be loaded or saved", "err", err, "path", w.r.URL.Path)
			w.failed = true
			w.written = true
			w.opts.ErrorHandler(w.ResponseWriter, w.r, err)
		}
	})
}

// WriteHeader saves the session, then writes the header (or drops it when
// the save failed and an error response went out instead).
func (w *responseWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code) // informational: headers not final
		return
	}
	w.commit()
	if w.failed {
		return
	}
	w.written = true
	w.ResponseWriter.WriteHeader(code)
}

// Write saves the session before the first byte.
func (w *responseWriter) Write(p []byte) (int, error) {
	w.commit()
	if w.failed {
		return len(p), nil // the error response stands; the handler's body is dropped
	}
	w.written = true
	return w.ResponseWriter.Write(p)
}

// Flush saves the session, then flushes.
func (w *responseWriter) Flush() {
	_ = w.FlushError()
}

// FlushError saves the session, then flushes through http.ResponseController.
func (w *responseWriter) FlushError() error {
	w.commit()
	w.written = true
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack saves the session (its cookie cannot be sent any more), then
// hijacks the connection.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.commit()
	w.written = true
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// maxCookies is net/http's limit on the cookies of a request (its
// httpcookiemaxnum default): past it, the request has no session cookie,
// as http.Request.Cookie would report none.
const maxCookies = 3000

// cookieValue returns the value of the first cookie called name in the
// request's Cookie headers ("" when there is none, or when the request sends
// more than maxCookies cookies), with the quotes around a quoted value
// removed; the session layer checks its shape. It is http.Request.Cookie
// without allocations: Cookie builds a slice and a *http.Cookie for the
// match, two of the five allocations an untouched request costs otherwise
// (BenchmarkSessions/*/RequestUntouched: 7 instead of 5).
func cookieValue(h http.Header, name string) string {
	lines := h["Cookie"]
	n := 0
	for _, line := range lines {
		n += strings.Count(line, ";") + 1
	}
	if n > maxCookies {
		return ""
	}
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			if strings.TrimSpace(k) != name {
				continue
			}
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v
		}
	}
	return ""
}
