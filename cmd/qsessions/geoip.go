package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/qsessions/qsessions/location"
	"github.com/qsessions/qsessions/location/geoipupdate"
)

func init() {
	commands["geoip"] = command{
		summary: "download GeoIP2/GeoLite2 databases, or look IP addresses up in them",
		run: group(geoipUsage, sub{"download", geoipDownload}, sub{"lookup", func(_ context.Context, args []string, stdout, stderr io.Writer) error {
			return geoipLookup(args, stdout, stderr)
		}}),
	}
}

const geoipUsage = `usage:
  qsessions geoip download --dir DIR [flags]
  qsessions geoip lookup --dir DIR [--json] IP...

download fetches MaxMind databases into DIR (only when they changed) and
verifies them; credentials come from --account-id/--license-key or, better
(flags show up in ps), MAXMIND_ACCOUNT_ID and MAXMIND_LICENSE_KEY.
lookup prints one line per IP: the IP, a tab, and "City, Country".
`

func geoipDownload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qsessions geoip download", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory to install the .mmdb files in (required)")
	editions := fs.String("editions", strings.Join(geoipupdate.DefaultEditions, ","), "comma-separated MaxMind edition IDs")
	accountID := fs.String("account-id", "", "MaxMind account ID (default $MAXMIND_ACCOUNT_ID)")
	licenseKey := fs.String("license-key", "", "MaxMind license key (default $MAXMIND_LICENSE_KEY; the flag is visible to other users in ps)")
	legacy := fs.Bool("legacy", false, "use the legacy license-key URL (/app/geoip_download) instead of HTTP Basic auth")
	endpoint := fs.String("endpoint", geoipupdate.DefaultEndpoint, "base URL of the download server")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up when the whole download takes longer (0: no limit)")
	idle := fs.Duration("idle-timeout", time.Minute, "give up when the server sends nothing for this long")
	quiet := fs.Bool("quiet", false, "no progress output even on a terminal")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("download: unexpected argument %q", fs.Arg(0))
	}
	if *dir == "" {
		return errors.New("download: --dir is required")
	}
	cfg := geoipupdate.Config{
		Dir:         *dir,
		AccountID:   firstNonEmpty(*accountID, os.Getenv("MAXMIND_ACCOUNT_ID")),
		LicenseKey:  firstNonEmpty(*licenseKey, os.Getenv("MAXMIND_LICENSE_KEY")),
		Endpoint:    *endpoint,
		Legacy:      *legacy,
		Timeout:     *timeout,
		IdleTimeout: *idle,
		UserAgent:   "qsessions-geoip-download",
	}
	if *idle <= 0 {
		cfg.IdleTimeout = -1
	}
	for _, e := range strings.Split(*editions, ",") {
		if e = strings.TrimSpace(e); e != "" {
			cfg.Editions = append(cfg.Editions, e)
		}
	}
	if !*quiet && isTerminal(stderr) {
		cfg.Progress = stderr
	}
	results, err := geoipupdate.Download(ctx, cfg)
	for _, r := range results {
		if r.Updated {
			check := "no checksum published"
			if r.SHA256 != "" {
				check = "sha256 verified"
			}
			fmt.Fprintf(stdout, "%s: updated to the release of %s (%s) -> %s\n", r.Edition, r.Modified.UTC().Format(time.DateOnly), check, r.Path)
		} else {
			fmt.Fprintf(stdout, "%s: up to date (release of %s) -> %s\n", r.Edition, r.Modified.UTC().Format(time.DateOnly), r.Path)
		}
	}
	return err
}

func geoipLookup(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qsessions geoip lookup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory holding GeoLite2-City.mmdb and/or GeoLite2-Country.mmdb (required)")
	asJSON := fs.Bool("json", false, "print the IP and every field as one JSON object per line")
	lang := fs.String("lang", "en", "language of names: en, de, es, fr, ja, pt-BR, ru, zh-CN")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *dir == "" {
		return errors.New("lookup: --dir is required")
	}
	if fs.NArg() == 0 {
		return errors.New("lookup: no IP address given")
	}
	r, err := location.Open(*dir, location.WithLanguage(*lang))
	if err != nil {
		return err
	}
	defer r.Close()
	var failed int
	for _, arg := range fs.Args() {
		info, err := r.LookupString(arg)
		if err != nil {
			fmt.Fprintf(stderr, "qsessions geoip lookup: %v\n", err)
			failed++
			continue
		}
		if *asJSON {
			b, err := json.Marshal(struct {
				IP string `json:"ip"`
				location.Info
			}{arg, info})
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s\n", b)
			continue
		}
		fmt.Fprintf(stdout, "%s\t%s\n", arg, info.String())
	}
	if failed > 0 {
		return fmt.Errorf("lookup: %d of %d addresses could not be looked up", failed, fs.NArg())
	}
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// isTerminal reports whether w is a character device such as a terminal
// (good enough to decide on progress output; /dev/null counts too, which is
// harmless).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
