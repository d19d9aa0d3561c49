// Command qsessions-demo is a small web app showing what qsessions is for:
// sign in, see your active sessions with their devices and locations,
// revoke one, sign out everywhere else, and (as an admin) browse every
// session. It runs on a SQLite file in the working directory with the
// in-process cache by default and needs nothing else installed:
//
//	go run ./cmd/qsessions-demo            # http://127.0.0.1:8080
//
// It applies qsessions' embedded migrations for the database's dialect,
// creates (or resets) two demo users with fresh random passwords and prints
// them. Flags switch to real servers:
//
//	--addr HOST:PORT          listen address (default 127.0.0.1:8080)
//	--db URL                  postgres://, mysql://, maria:// or sqlite:// (default sqlite://qsessions-demo.db)
//	--memcache HOST:PORT,...  use memcached instead of the in-process cache
//	--geoip-dir DIR           show locations from the GeoIP2/GeoLite2 databases in DIR
//	--trusted-proxies CIDR,... believe X-Forwarded-For from these peers
//
// Optional features, each in a file of its own (feature.go):
//
//	--dbsc [--dbsc-addr, --tls-cert/--tls-key, --dbsc-ttl]  device-bound sessions over HTTPS (dbsc.go, docs/dbsc.md)
//	--accept-django-cookies [--django-db URL, --django-table, --django-secret-key-env, --django-fallback-keys-env]
//	                          open Django's sessions during a cut-over (django.go, docs/django.md)
//	--metrics-addr HOST:PORT  Prometheus text of the OpenTelemetry metrics, and /healthz (metrics.go)
//	--trace stdout            print the spans (metrics.go, docs/observability.md)
//
// Sign-in alerts and the security log are always on (alerts.go,
// docs/alerts.md): new devices and places are logged as alert lines and
// shown on the sessions page.
//
// QSESSIONS_CACHE_KEYS (comma-separated hex, 32 bytes or more each)
// authenticates the cache entries; with --memcache and no keys, the demo
// generates one for the run and says so.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "address to listen on")
	flag.StringVar(&cfg.DB, "db", "sqlite://qsessions-demo.db", "database URL: postgres://, mysql://, maria:// or sqlite://")
	flag.StringVar(&cfg.Memcache, "memcache", "", "memcached servers (host:port,...); default: the in-process cache")
	flag.StringVar(&cfg.GeoIPDir, "geoip-dir", "", "directory with GeoLite2-City.mmdb and/or GeoLite2-Country.mmdb, for locations")
	flag.StringVar(&cfg.TrustedProxies, "trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-For is believed (default: none)")
	for _, f := range features {
		if f.flags != nil {
			f.flags(flag.CommandLine, &cfg)
		}
	}
	flag.Parse()
	if flag.NArg() > 0 {
		log.Fatalf("qsessions-demo: unexpected arguments %q (all settings are flags; see -h)", flag.Args())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, os.Stdout); err != nil {
		log.Fatalf("qsessions-demo: %v", err)
	}
}

// serve sets the demo up, prints its users and address to out, and serves
// until ctx ends.
func serve(ctx context.Context, cfg config, out io.Writer) error {
	a, err := newApp(ctx, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	// Exactly "user: NAME  password: PASS" per user, for people and scripts;
	// who is an admin goes on a line of its own.
	for _, u := range a.users {
		fmt.Fprintf(out, "user: %s  password: %s\n", u.Name, u.Password)
	}
	for _, u := range a.users {
		if u.Admin {
			fmt.Fprintf(out, "admin: %s\n", u.Name)
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	for _, n := range a.notes {
		fmt.Fprintln(out, "note:", n)
	}
	fmt.Fprintf(out, "qsessions demo on http://%s (database %s, %s)\n", ln.Addr(), a.dbURL, a.cacheDesc)
	a.m.StartCleaner(ctx)
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-done
	return nil
}
