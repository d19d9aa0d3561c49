package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qsessions/qsessions/location/locationtest"
)

const (
	testAccount = "424242"
	testKey     = "cli-secret-license-key"
)

// geoipServer is a minimal MaxMind download server (Basic auth, suffix
// tar.gz and tar.gz.sha256, If-Modified-Since) for the CLI tests; the
// download logic itself is tested in location/geoipupdate.
func geoipServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	released := time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)
	archives := map[string][]byte{}
	for _, ed := range []string{"GeoLite2-City", "GeoLite2-Country"} {
		rec := locationtest.Record{Network: "81.2.69.0/24", Country: "United Kingdom", CountryCode: "GB", Continent: "Europe", ContinentCode: "EU"}
		if ed == "GeoLite2-City" {
			rec.City, rec.TimeZone = "London", "Europe/London"
		}
		db, err := locationtest.Build(locationtest.Options{DatabaseType: ed}, rec,
			locationtest.Record{Network: "175.16.199.0/24", Country: "China", CountryCode: "CN"})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		name := ed + "_20240304/" + ed + ".mmdb"
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(db))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(db)
		tw.Close()
		zw.Close()
		archives[ed] = buf.Bytes()
	}
	var downloads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != testAccount || p != testKey {
			http.Error(w, "invalid license key", http.StatusUnauthorized)
			return
		}
		ed := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/geoip/databases/"), "/download")
		body, ok := archives[ed]
		if !ok {
			http.NotFound(w, r)
			return
		}
		switch r.URL.Query().Get("suffix") {
		case "tar.gz":
			if since, err := http.ParseTime(r.Header.Get("If-Modified-Since")); err == nil && !released.After(since) {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			downloads.Add(1)
			w.Header().Set("Last-Modified", released.Format(http.TimeFormat))
			w.Write(body)
		case "tar.gz.sha256":
			sum := sha256.Sum256(body)
			fmt.Fprintf(w, "%s  %s_20240304.tar.gz\n", hex.EncodeToString(sum[:]), ed)
		default:
			http.Error(w, "bad suffix", http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &downloads
}

func geoip(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = commands["geoip"].run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

func TestGeoIPDownloadAndLookup(t *testing.T) {
	srv, downloads := geoipServer(t)
	dir := t.TempDir()
	t.Setenv("MAXMIND_ACCOUNT_ID", testAccount)
	t.Setenv("MAXMIND_LICENSE_KEY", testKey)

	out, errOut, err := geoip(t, "download", "--dir", dir, "--endpoint", srv.URL)
	if err != nil {
		t.Fatalf("download: %v\n%s", err, errOut)
	}
	want := fmt.Sprintf("GeoLite2-City: updated to the release of 2024-03-04 (sha256 verified) -> %s\n"+
		"GeoLite2-Country: updated to the release of 2024-03-04 (sha256 verified) -> %s\n",
		filepath.Join(dir, "GeoLite2-City.mmdb"), filepath.Join(dir, "GeoLite2-Country.mmdb"))
	if out != want {
		t.Fatalf("download output:\n%s\nwant:\n%s", out, want)
	}
	if errOut != "" {
		t.Fatalf("stderr not a terminal, yet: %q", errOut)
	}

	out, _, err = geoip(t, "download", "--dir", dir, "--endpoint", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "GeoLite2-City: up to date (release of 2024-03-04)") || downloads.Load() != 2 {
		t.Fatalf("second download: %q, %d archives fetched", out, downloads.Load())
	}

	out, errOut, err = geoip(t, "lookup", "--dir", dir, "81.2.69.142", "175.16.199.3", "10.0.0.1", "::1", "8.8.8.8")
	if err != nil {
		t.Fatalf("lookup: %v\n%s", err, errOut)
	}
	want = "81.2.69.142\tLondon, United Kingdom\n175.16.199.3\tChina\n10.0.0.1\t\n::1\t\n8.8.8.8\t\n"
	if out != want {
		t.Fatalf("lookup output:\n%q\nwant\n%q", out, want)
	}

	out, _, err = geoip(t, "lookup", "--dir", dir, "--json", "81.2.69.142")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, `{"ip":"81.2.69.142","city":"London","country":"United Kingdom","country_code":"GB",`) {
		t.Fatalf("json output %q", out)
	}
}

func TestGeoIPLookupErrors(t *testing.T) {
	srv, _ := geoipServer(t)
	dir := t.TempDir()
	if _, _, err := geoip(t, "download", "--dir", dir, "--endpoint", srv.URL, "--account-id", testAccount, "--license-key", testKey, "--editions", "GeoLite2-Country"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "GeoLite2-City.mmdb")); !os.IsNotExist(err) {
		t.Fatalf("--editions ignored: %v", err)
	}
	out, errOut, err := geoip(t, "lookup", "--dir", dir, "81.2.69.142", "not-an-ip")
	if err == nil || !strings.Contains(errOut, `"not-an-ip" is not an IP address`) {
		t.Fatalf("bad IP: err %v, stderr %q", err, errOut)
	}
	if out != "81.2.69.142\tUnited Kingdom\n" {
		t.Fatalf("output %q (country database only)", out)
	}
	if _, _, err := geoip(t, "lookup", "--dir", t.TempDir(), "81.2.69.142"); err == nil || !strings.Contains(err.Error(), "no GeoIP2/GeoLite2") {
		t.Fatalf("empty directory: %v", err)
	}
	if _, _, err := geoip(t, "lookup", "81.2.69.142"); err == nil || !strings.Contains(err.Error(), "--dir") {
		t.Fatalf("missing --dir: %v", err)
	}
}

func TestGeoIPDownloadErrorsHideKey(t *testing.T) {
	srv, _ := geoipServer(t)
	t.Setenv("MAXMIND_ACCOUNT_ID", testAccount)
	t.Setenv("MAXMIND_LICENSE_KEY", "")
	dir := t.TempDir()
	wrong := "wrong-" + testKey

	// Through main's run: exit status and the printed error.
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"geoip", "download", "--dir", dir, "--endpoint", srv.URL, "--license-key", wrong}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit code %d", code)
	}
	if !strings.Contains(errb.String(), "HTTP 401") || strings.Contains(out.String()+errb.String(), wrong) {
		t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
	}

	// Legacy URL against a server that is gone: the key is in the URL.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	_, errOut, err := geoip(t, "download", "--dir", dir, "--endpoint", gone.URL, "--legacy", "--license-key", testKey, "--idle-timeout", "2s")
	if err == nil || strings.Contains(err.Error()+errOut, testKey) {
		t.Fatalf("legacy error %v / %q", err, errOut)
	}

	if _, _, err := geoip(t, "download", "--dir", dir, "--endpoint", srv.URL); err == nil || !strings.Contains(err.Error(), "license key") {
		t.Fatalf("no key: %v", err)
	}
	if _, _, err := geoip(t, "download", "--endpoint", srv.URL); err == nil || !strings.Contains(err.Error(), "--dir") {
		t.Fatalf("no dir: %v", err)
	}
	if _, _, err := geoip(t, "frobnicate"); err == nil {
		t.Fatal("unknown subcommand accepted")
	}
	if _, _, err := geoip(t); err == nil {
		t.Fatal("missing subcommand accepted")
	}
	if _, errOut, err := geoip(t, "download", "-h"); err != nil || !strings.Contains(errOut, "-license-key") {
		t.Fatalf("-h: %v %q", err, errOut)
	}
}
