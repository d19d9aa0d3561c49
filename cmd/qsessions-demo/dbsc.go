package main

// Device-bound sessions (DBSC) in the demo: --dbsc mounts package dbsc's
// registration and refresh endpoints, asks the browser to bind the session
// at sign-in, and the pages mark bound sessions "Device-bound".
//
// DBSC needs a secure context: Chromium 156 ignores the registration
// header on plain HTTP (http://localhost included, although the draft
// allows it) and on HTTPS with certificate errors. So --dbsc also serves
// the demo over HTTPS on --dbsc-addr (default 127.0.0.1:8443), forwarding
// each request to the plain listener on --addr, with the certificate of
// --tls-cert/--tls-key or, without them, a self-signed one made for the
// run, whose SPKI hash it prints with the Chromium command line that
// trusts it. The forwarding keeps every part of the demo's handler (each
// feature's wrap included) in one place, main.go's server.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"time"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/backend"
	"github.com/qsessions/qsessions/dbsc"
	"github.com/qsessions/qsessions/middleware"
	"github.com/qsessions/qsessions/pages"
)

// DBSCKeysEnv names the environment variable with the challenge keys
// (comma-separated hex, 32 bytes or more each, as QSESSIONS_CACHE_KEYS):
// every process of an app must sign challenges with the same keys.
const DBSCKeysEnv = "QSESSIONS_DBSC_KEYS"

// chromiumDBSCFeatures are the Chromium 156 flags that turn DBSC on without
// an origin-trial token, with software keys (Linux has no TPM provider)
// and without the refresh and signing quotas.
const (
	chromiumDBSCEnable  = "DeviceBoundSessions:RequireOriginTrialTokens/false/RefreshQuota/false,EnableBoundSessionCredentialsSoftwareKeysForManualTesting"
	chromiumDBSCDisable = "DeviceBoundSessionSigningQuotaAndCaching"
)

// dbscConfig is what the --dbsc flags set (config.DBSC).
type dbscConfig struct {
	// On turns device-bound sessions on (--dbsc).
	On bool
	// Addr is where the HTTPS listener listens (--dbsc-addr); "" serves no
	// HTTPS (a TLS-terminating proxy of your own forwards to --addr, as
	// the tests' httptest TLS servers do).
	Addr string
	// TLSCert and TLSKey are PEM files of the HTTPS listener's certificate
	// (--tls-cert, --tls-key); both "" makes a self-signed one for
	// localhost, 127.0.0.1 and ::1, valid for a week.
	TLSCert, TLSKey string
	// CredentialTTL is the bound cookie's lifetime (--dbsc-ttl); 0 means
	// dbsc.DefaultCredentialTTL (5 minutes).
	CredentialTTL time.Duration
	// Now, when set, is the clock of the handlers (tests share a fake one
	// with the Manager and their protocol client; see dbsc_test.go).
	Now func() time.Time

	// run is the running feature, set by setup.
	run *dbscRun
}

// dbscRun is the running feature of one app.
type dbscRun struct {
	srv   *dbsc.Server
	https *http.Server // nil without Addr
	url   string       // the HTTPS listener's URL
}

func init() {
	register(feature{
		name:   "dbsc",
		flags:  dbscFlags,
		setup:  dbscSetup,
		routes: dbscRoutes,
		close:  dbscClose,
	})
}

func dbscFlags(fs *flag.FlagSet, cfg *config) {
	fs.BoolVar(&cfg.DBSC.On, "dbsc", false, "device-bound sessions (DBSC): bind sessions to a key of the browser's device, served over HTTPS on --dbsc-addr")
	fs.StringVar(&cfg.DBSC.Addr, "dbsc-addr", "127.0.0.1:8443", `with --dbsc, the HTTPS address that forwards to --addr ("" for none: your own TLS proxy forwards)`)
	fs.StringVar(&cfg.DBSC.TLSCert, "tls-cert", "", "with --dbsc, the HTTPS certificate (PEM); default: a self-signed one for this run")
	fs.StringVar(&cfg.DBSC.TLSKey, "tls-key", "", "with --dbsc, the private key of --tls-cert (PEM)")
	fs.DurationVar(&cfg.DBSC.CredentialTTL, "dbsc-ttl", dbsc.DefaultCredentialTTL, "with --dbsc, the lifetime of the short-lived bound cookie (at least 10s; Chromium refreshes it 2 minutes before it ends)")
}

// dbscSetup builds the handlers over the demo's Manager, makes the session
// cookie Secure and hands the bound cookie's name to the middleware, and
// opens the HTTPS listener.
func dbscSetup(_ context.Context, a *app, mw *middleware.Options, _ *pages.Config) error {
	c := &a.cfg.DBSC
	if !c.On {
		return nil
	}
	keys, err := backend.ParseCacheKeys(os.Getenv(DBSCKeysEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", DBSCKeysEnv, err)
	}
	if len(keys) == 0 && a.mc != nil {
		a.notes = append(a.notes, fmt.Sprintf("no %s set: DBSC challenges are signed with a key made for this run; "+
			"set %s to the same hex key(s) in every process that serves the app", DBSCKeysEnv, DBSCKeysEnv))
	}
	cfg := dbsc.Config{
		Store:         dbsc.NewManagerStore(a.m, mw.Cookie.Name),
		ChallengeKeys: keys,
		CredentialTTL: c.CredentialTTL,
		Now:           c.Now,
	}
	if a.mc != nil {
		// Several demo processes on one memcached share sessions; they
		// must share used challenges too.
		if cfg.ReplayGuard, err = dbsc.NewCacheReplayGuard(a.mc, "qsessions-demo:dbsc:", c.Now); err != nil {
			return err
		}
	}
	srv, err := dbsc.New(cfg)
	if err != nil {
		return err
	}
	run := &dbscRun{srv: srv}
	// Over HTTPS the session cookie is Secure, like the bound one (a
	// __Host- cookie).
	mw.Cookie.Insecure = false
	mw.BoundCookie = srv.CookieName()
	if c.Addr != "" {
		if err := run.listen(a, mw); err != nil {
			return err
		}
	}
	c.run = run
	return nil
}

// listen opens the HTTPS listener on Addr that forwards to the plain one
// on a.cfg.Addr, trusting its X-Forwarded-For so the pages show the
// browser's address.
func (run *dbscRun) listen(a *app, mw *middleware.Options) error {
	c := &a.cfg.DBSC
	host, port, err := net.SplitHostPort(a.cfg.Addr)
	if err != nil || port == "" || port == "0" {
		return fmt.Errorf("--dbsc forwards HTTPS from --dbsc-addr to --addr, which needs a fixed port (got %q)", a.cfg.Addr)
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	cert, spki, self, err := dbscCertificate(c.TLSCert, c.TLSKey)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("--dbsc-addr: %w", err)
	}
	target := &url.URL{Scheme: "http", Host: net.JoinHostPort(host, port)}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // the origin the browser sees, for CSRF checks
			pr.SetXForwarded()
		},
		ErrorLog: slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
	}
	mw.TrustedProxies = append(mw.TrustedProxies, netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128"))
	run.https = &http.Server{
		Handler:           proxy,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		// Browsers that do not trust the certificate end handshakes; that
		// is no news worth a log line.
		ErrorLog: slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug),
	}
	go func() { _ = run.https.ServeTLS(ln, "", "") }()
	_, lport, _ := net.SplitHostPort(ln.Addr().String())
	run.url = "https://localhost:" + lport + "/"
	how := "the certificate of --tls-cert"
	if self {
		how = "a self-signed certificate made for this run"
	}
	a.notes = append(a.notes,
		fmt.Sprintf("device-bound sessions (DBSC) on %s (%s, SPKI %s; Chromium needs a secure context without certificate errors)", run.url, how, spki),
		fmt.Sprintf("try it with: chromium --user-data-dir=$(mktemp -d) --enable-features=%s --disable-features=%s --ignore-certificate-errors-spki-list=%s %s",
			chromiumDBSCEnable, chromiumDBSCDisable, spki, run.url))
	return nil
}

// dbscCertificate loads the certificate of certFile and keyFile, or makes
// a self-signed one (self true), and returns it with the base64 SHA-256 of
// its SubjectPublicKeyInfo (what --ignore-certificate-errors-spki-list
// takes).
func dbscCertificate(certFile, keyFile string) (cert tls.Certificate, spki string, self bool, err error) {
	switch {
	case certFile != "" && keyFile != "":
		cert, err = tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return cert, "", false, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
	case certFile != "" || keyFile != "":
		return cert, "", false, errors.New("--tls-cert and --tls-key go together")
	default:
		self = true
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return cert, "", false, err
		}
		serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
		now := time.Now()
		tmpl := &x509.Certificate{
			SerialNumber: serial,
			Subject:      pkix.Name{CommonName: "qsessions demo (self-signed)"},
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(7 * 24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			return cert, "", false, err
		}
		cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return cert, "", false, fmt.Errorf("--tls-cert: %w", err)
	}
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	return cert, base64.StdEncoding.EncodeToString(sum[:]), self, nil
}

func dbscRoutes(a *app, mux *http.ServeMux) {
	if run := a.cfg.DBSC.run; run != nil {
		run.srv.Register(mux)
	}
}

func dbscClose(a *app) {
	if run := a.cfg.DBSC.run; run != nil && run.https != nil {
		_ = run.https.Close()
	}
}

// startDeviceBinding asks the browser that has just signed in to bind the
// session to a key of its device (with --dbsc; otherwise it does nothing).
// It runs after Session.Login, which rotated the token, so it names the
// new session key. Only a sign-in may ask: a registration challenge on
// any other response would let a thief holding the long-lived cookie bind
// the session to his own key.
func (a *app) startDeviceBinding(w http.ResponseWriter, r *http.Request, s *qsessions.Session) {
	run := a.cfg.DBSC.run
	if run == nil {
		return
	}
	rec := s.Record()
	if rec == nil {
		return
	}
	if err := run.srv.StartRegistration(w, rec.Key); err != nil {
		// The sign-in stands; the session stays unbound.
		a.logs.Log(r.Context(), slog.Default(), slog.LevelError, "dbsc", "demo: asking for a device binding failed", "err", err)
	}
}

// dbscURL is the HTTPS address of the demo with --dbsc ("" without).
func (a *app) dbscURL() string {
	if run := a.cfg.DBSC.run; run != nil {
		return run.url
	}
	return ""
}
