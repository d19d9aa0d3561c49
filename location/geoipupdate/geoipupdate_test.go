package geoipupdate

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qsessions/qsessions/location"
	"github.com/qsessions/qsessions/location/locationtest"
)

const (
	accountID  = "123456"
	licenseKey = "sekrit-L1cense_Key+42" // '+' so its URL-encoded form differs
)

var release1 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// entry is one member of a test archive.
type entry struct {
	name string
	typ  byte
	body []byte
	link string
}

func tarGz(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link, ModTime: release1}
		if typ != tar.TypeReg {
			hdr.Size = 0
		}
		if typ == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write(e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// mmdb returns a database of the edition's type whose 81.2.69.0/24 record
// names city (city editions) or country (country editions).
func mmdb(t testing.TB, edition, name string) []byte {
	t.Helper()
	rec := locationtest.Record{Network: "81.2.69.0/24", Country: "United Kingdom", CountryCode: "GB"}
	if strings.HasSuffix(edition, "-City") {
		rec.City = name
	} else {
		rec.Country = name
	}
	b, err := locationtest.Build(locationtest.Options{DatabaseType: edition}, rec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// archive is a MaxMind-shaped archive: a dated directory holding the
// database and the licence files.
func archive(t testing.TB, edition string, db []byte) []byte {
	dir := edition + "_20240102/"
	return tarGz(t,
		entry{name: dir, typ: tar.TypeDir},
		entry{name: dir + "COPYRIGHT.txt", body: []byte("Database and Contents Copyright (c) MaxMind, Inc.\n")},
		entry{name: dir + "LICENSE.txt", body: []byte("Use of this MaxMind product is governed by ...\n")},
		entry{name: dir + edition + ".mmdb", body: db},
	)
}

// fakeMaxMind serves MaxMind's download API (and the legacy URL) from
// archives the test sets. With storage set, archive and checksum requests
// are answered with a redirect there, as MaxMind redirects to R2.
type fakeMaxMind struct {
	mu           sync.Mutex
	archives     map[string][]byte                                 // edition → .tar.gz
	sums         map[string]string                                 // edition → checksum body, overriding the true one
	noSums       bool                                              // answer checksum requests with 404
	lastModified time.Time                                         // Last-Modified of every archive
	handler      func(w http.ResponseWriter, r *http.Request) bool // runs first; true = handled
	storage      string                                            // base URL to redirect downloads to
	served       map[string]int                                    // edition → archives served with 200
	ims          []string                                          // If-Modified-Since headers seen on archive requests
}

func newFake(t testing.TB) *fakeMaxMind {
	f := &fakeMaxMind{
		archives:     map[string][]byte{},
		sums:         map[string]string{},
		served:       map[string]int{},
		lastModified: release1,
	}
	for _, e := range DefaultEditions {
		f.archives[e] = archive(t, e, mmdb(t, e, "v1-"+e))
	}
	return f
}

func (f *fakeMaxMind) set(fn func(f *fakeMaxMind)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeMaxMind) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	handler := f.handler
	f.mu.Unlock()
	if handler != nil && handler(w, r) {
		return
	}
	var edition string
	switch {
	case r.URL.Path == "/app/geoip_download":
		if r.URL.Query().Get("license_key") != licenseKey {
			http.Error(w, "Invalid license key", http.StatusUnauthorized)
			return
		}
		edition = r.URL.Query().Get("edition_id")
	case strings.HasPrefix(r.URL.Path, "/geoip/databases/") && strings.HasSuffix(r.URL.Path, "/download"):
		user, pass, ok := r.BasicAuth()
		if !ok || user != accountID || pass != licenseKey {
			w.Header().Set("WWW-Authenticate", `Basic realm="MaxMind"`)
			http.Error(w, `{"code":"ACCOUNT_ID_REQUIRED","error":"invalid account ID or license key"}`, http.StatusUnauthorized)
			return
		}
		edition = strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/geoip/databases/"), "/download")
	case strings.HasPrefix(r.URL.Path, "/storage/"):
		edition = strings.TrimPrefix(r.URL.Path, "/storage/")
	default:
		http.NotFound(w, r)
		return
	}
	suffix := r.URL.Query().Get("suffix")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.storage != "" && !strings.HasPrefix(r.URL.Path, "/storage/") {
		http.Redirect(w, r, f.storage+"/storage/"+edition+"?suffix="+suffix+"&X-Amz-Signature=abc", http.StatusFound)
		return
	}
	body, ok := f.archives[edition]
	if !ok {
		http.Error(w, "Database edition not found", http.StatusNotFound)
		return
	}
	switch suffix {
	case "tar.gz":
		f.ims = append(f.ims, r.Header.Get("If-Modified-Since"))
		if since, err := http.ParseTime(r.Header.Get("If-Modified-Since")); err == nil && !f.lastModified.Truncate(time.Second).After(since) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		f.served[edition]++
		w.Header().Set("Content-Type", "application/gzip")
		w.Header().Set("Last-Modified", f.lastModified.UTC().Format(http.TimeFormat))
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
	case "tar.gz.sha256":
		if f.noSums {
			http.NotFound(w, r)
			return
		}
		sum, ok := f.sums[edition]
		if !ok {
			h := sha256.Sum256(body)
			sum = hex.EncodeToString(h[:]) + "  " + edition + "_20240102.tar.gz\n"
		}
		fmt.Fprint(w, sum)
	default:
		http.Error(w, "bad suffix", http.StatusBadRequest)
	}
}

func (f *fakeMaxMind) servedCount(edition string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.served[edition]
}

// serveOn starts an httptest server for h on addr ("127.0.0.1:0").
func serveOn(t testing.TB, addr string, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(h)
	s.Listener.Close()
	s.Listener = l
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func config(dir, endpoint string) Config {
	return Config{Dir: dir, AccountID: accountID, LicenseKey: licenseKey, Endpoint: endpoint, IdleTimeout: 5 * time.Second, Timeout: 20 * time.Second}
}

// snapshot is an installed file's content and modification time.
type snapshot struct {
	data  []byte
	mtime time.Time
	info  os.FileInfo
}

func snap(t testing.TB, path string) snapshot {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{b, fi.ModTime(), fi}
}

func (s snapshot) same(o snapshot) bool {
	return bytes.Equal(s.data, o.data) && s.mtime.Equal(o.mtime) && os.SameFile(s.info, o.info)
}

// names lists dir.
func names(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func describe(t testing.TB, dir string) string {
	t.Helper()
	r, err := location.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return r.Describe(netip.MustParseAddr("81.2.69.1"))
}

func TestDownloadInstallsAndSkipsUnchanged(t *testing.T) {
	fake := newFake(t)
	srv := serveOn(t, "127.0.0.1:0", fake)
	dir := t.TempDir()
	var progress bytes.Buffer
	cfg := config(dir, srv.URL)
	cfg.Progress = &progress

	res, err := Download(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("results: %+v", res)
	}
	for _, r := range res {
		arch := fake.archives[r.Edition]
		sum := sha256.Sum256(arch)
		if !r.Updated || r.SHA256 != hex.EncodeToString(sum[:]) || !r.Modified.Equal(release1) ||
			r.Path != filepath.Join(dir, r.Edition+".mmdb") {
			t.Errorf("result %+v", r)
		}
		fi, err := os.Stat(r.Path)
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(release1) || fi.Size() != r.Size || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mtime %v size %d mode %v; want %v, %d, 0644", r.Path, fi.ModTime(), fi.Size(), fi.Mode(), release1, r.Size)
		}
	}
	if got := strings.Join(names(t, dir), " "); got != "GeoLite2-City.mmdb GeoLite2-Country.mmdb" {
		t.Fatalf("directory holds %s; want only the two databases", got)
	}
	if got := describe(t, dir); got != "v1-GeoLite2-City, United Kingdom" {
		t.Fatalf("installed database: %q", got)
	}
	if p := progress.String(); !strings.Contains(p, "GeoLite2-City: ") || !strings.Contains(p, " done\n") || strings.Contains(p, licenseKey) {
		t.Fatalf("progress output %q", p)
	}

	// Unchanged on the server: a conditional request, no download.
	before := snap(t, filepath.Join(dir, "GeoLite2-City.mmdb"))
	res, err = Download(context.Background(), config(dir, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Updated || !r.Modified.Equal(release1) {
			t.Errorf("second run: %+v, want not updated", r)
		}
	}
	if n := fake.servedCount("GeoLite2-City"); n != 1 {
		t.Fatalf("archive served %d times, want 1", n)
	}
	if ims := fake.ims[len(fake.ims)-1]; ims != release1.Format(http.TimeFormat) {
		t.Fatalf("If-Modified-Since = %q", ims)
	}
	if after := snap(t, filepath.Join(dir, "GeoLite2-City.mmdb")); !before.same(after) {
		t.Fatal("unchanged database was rewritten")
	}

	// A new release is installed over the old file.
	release2 := release1.Add(7 * 24 * time.Hour)
	fake.set(func(f *fakeMaxMind) {
		f.lastModified = release2
		f.archives["GeoLite2-City"] = archive(t, "GeoLite2-City", mmdb(t, "GeoLite2-City", "v2"))
	})
	res, err = Download(context.Background(), config(dir, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Updated || !res[0].Modified.Equal(release2) {
		t.Fatalf("third run: %+v", res[0])
	}
	if got := describe(t, dir); got != "v2, United Kingdom" {
		t.Fatalf("updated database: %q", got)
	}
}

// TestDownloadFailures checks that every kind of bad download fails with
// a clear error, leaves the installed database as it was, leaves no
// temporary file, and never shows the license key.
func TestDownloadFailures(t *testing.T) {
	const ed = "GeoLite2-City"
	good := mmdb(t, ed, "new")
	full := archive(t, ed, good)
	hang := func(w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done()
		return true
	}
	cases := []struct {
		name  string
		setup func(f *fakeMaxMind)
		is    error  // errors.Is target, if any
		want  string // substring of the error
	}{
		{"truncated archive", func(f *fakeMaxMind) { f.archives[ed] = full[:len(full)/2] }, nil, "truncated"},
		{"checksum mismatch", func(f *fakeMaxMind) { f.sums[ed] = strings.Repeat("ab", 32) + "  x.tar.gz\n" }, ErrChecksum, "SHA-256"},
		{"malformed checksum", func(f *fakeMaxMind) { f.sums[ed] = "<html>oops</html>" }, nil, "malformed"},
		{"path escape", func(f *fakeMaxMind) {
			f.archives[ed] = tarGz(t, entry{name: "../evil.mmdb", body: good}, entry{name: ed + ".mmdb", body: good})
		}, ErrUnsafeArchive, "outside the directory"},
		{"path escape after a clean prefix", func(f *fakeMaxMind) {
			f.archives[ed] = tarGz(t, entry{name: "GeoLite2-City_1/../../" + ed + ".mmdb", body: good})
		}, ErrUnsafeArchive, "outside the directory"},
		{"absolute path", func(f *fakeMaxMind) {
			f.archives[ed] = tarGz(t, entry{name: "/tmp/" + ed + ".mmdb", body: good})
		}, ErrUnsafeArchive, "absolute"},
		{"symlink", func(f *fakeMaxMind) {
			f.archives[ed] = tarGz(t, entry{name: "x/" + ed + ".mmdb", typ: tar.TypeSymlink, link: "/etc/passwd"})
		}, ErrUnsafeArchive, "is a link"},
		{"hard link", func(f *fakeMaxMind) {
			f.archives[ed] = tarGz(t, entry{name: "x/" + ed + ".mmdb", typ: tar.TypeLink, link: "../../etc/passwd"})
		}, ErrUnsafeArchive, "is a link"},
		{"no database in archive", func(f *fakeMaxMind) {
			f.archives[ed] = tarGz(t, entry{name: "x/README.txt", body: []byte("hi")})
		}, nil, "holds no GeoLite2-City.mmdb"},
		{"not a database", func(f *fakeMaxMind) {
			f.archives[ed] = archive(t, ed, []byte("this is not an mmdb file"))
		}, nil, "not a valid MaxMind database"},
		{"not gzip", func(f *fakeMaxMind) { f.archives[ed] = []byte("<html>maintenance</html>") }, nil, "gzip"},
		{"401", func(f *fakeMaxMind) {
			f.handler = func(w http.ResponseWriter, r *http.Request) bool {
				http.Error(w, "invalid license key "+licenseKey, http.StatusUnauthorized) // a server echoing the key
				return true
			}
		}, ErrAuth, "401"},
		{"500", func(f *fakeMaxMind) {
			f.handler = func(w http.ResponseWriter, r *http.Request) bool {
				http.Error(w, "internal error", http.StatusInternalServerError)
				return true
			}
		}, nil, "unexpected HTTP 500"},
		{"checksum request fails", func(f *fakeMaxMind) {
			f.handler = func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Query().Get("suffix") == "tar.gz.sha256" {
					http.Error(w, "busy", http.StatusServiceUnavailable)
					return true
				}
				return false
			}
		}, nil, "checksum"},
		{"server hangs before answering", func(f *fakeMaxMind) { f.handler = hang }, ErrTimeout, "no data from the server"},
		{"server hangs mid-body", func(f *fakeMaxMind) {
			f.handler = func(w http.ResponseWriter, r *http.Request) bool {
				w.Header().Set("Content-Length", fmt.Sprint(len(full)))
				w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
				w.Write(full[:len(full)/3])
				w.(http.Flusher).Flush()
				<-r.Context().Done()
				return true
			}
		}, ErrTimeout, "no data from the server"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFake(t)
			srv := serveOn(t, "127.0.0.1:0", fake)
			root := t.TempDir()
			dir := filepath.Join(root, "db")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			cfg := config(dir, srv.URL)
			cfg.Editions = []string{ed}
			if _, err := Download(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, ed+".mmdb")
			before := snap(t, path)

			fake.set(func(f *fakeMaxMind) {
				f.lastModified = release1.Add(24 * time.Hour) // a newer release: no 304
				tc.setup(f)
			})
			var progress bytes.Buffer
			cfg.Progress = &progress
			cfg.IdleTimeout = 150 * time.Millisecond
			start := time.Now()
			res, err := Download(context.Background(), cfg)
			if err == nil {
				t.Fatalf("no error; results %+v", res)
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			msg := err.Error()
			t.Logf("error: %s", msg)
			if !strings.Contains(msg, tc.want) || !strings.HasPrefix(msg, ed+": ") {
				t.Errorf("error %q does not say %q", msg, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error is not %v", tc.is)
			}
			if strings.Contains(msg, licenseKey) || strings.Contains(progress.String(), licenseKey) {
				t.Errorf("license key leaked: %q / %q", msg, progress.String())
			}
			if len(res) != 0 {
				t.Errorf("results for a failed edition: %+v", res)
			}
			if after := snap(t, path); !before.same(after) {
				t.Error("installed database changed")
			}
			if got := names(t, dir); len(got) != 1 {
				t.Errorf("directory holds %v, want only %s.mmdb", got, ed)
			}
			if got := names(t, root); len(got) != 1 {
				t.Errorf("parent directory holds %v, want only db", got)
			}
		})
	}
}

func TestDownloadWithoutPublishedChecksum(t *testing.T) {
	fake := newFake(t)
	fake.noSums = true
	srv := serveOn(t, "127.0.0.1:0", fake)
	res, err := Download(context.Background(), config(t.TempDir(), srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || !res[0].Updated || res[0].SHA256 != "" {
		t.Fatalf("results %+v", res)
	}
}

func TestDownloadOverallTimeout(t *testing.T) {
	fake := newFake(t)
	full := fake.archives["GeoLite2-City"]
	fake.handler = func(w http.ResponseWriter, r *http.Request) bool {
		// A byte every 20ms: never idle, never done.
		w.Header().Set("Content-Length", fmt.Sprint(len(full)))
		for i := range full {
			if _, err := w.Write(full[i : i+1]); err != nil {
				return true
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return true
			case <-time.After(20 * time.Millisecond):
			}
		}
		return true
	}
	srv := serveOn(t, "127.0.0.1:0", fake)
	cfg := config(t.TempDir(), srv.URL)
	cfg.Timeout = 300 * time.Millisecond
	cfg.IdleTimeout = 5 * time.Second // the trickle keeps the idle timer from firing
	start := time.Now()
	_, err := Download(context.Background(), cfg)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "did not finish within 300ms") {
		t.Fatalf("error %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
}

// TestRedirectDropsAuthorization: MaxMind answers with a redirect to its
// storage; the credentials must not follow to another host or port.
func TestRedirectDropsAuthorization(t *testing.T) {
	type seen struct{ auth, referer, rawQuery string }
	for _, storageAddr := range []string{"127.0.0.2:0", "localhost:0", "127.0.0.1:0"} {
		for _, legacy := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s legacy=%v", storageAddr, legacy), func(t *testing.T) {
				var (
					mu   sync.Mutex
					reqs []seen
				)
				storageFake := newFake(t)
				storage := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					reqs = append(reqs, seen{r.Header.Get("Authorization"), r.Header.Get("Referer"), r.URL.RawQuery})
					mu.Unlock()
					storageFake.ServeHTTP(w, r)
				}))
				l, err := net.Listen("tcp", storageAddr)
				if err != nil {
					t.Skipf("cannot listen on %s: %v", storageAddr, err)
				}
				storage.Listener.Close()
				storage.Listener = l
				storage.Start()
				t.Cleanup(storage.Close)
				storageURL := storage.URL
				if strings.HasPrefix(storageAddr, "localhost") {
					storageURL = "http://localhost:" + fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
				}

				api := newFake(t)
				api.storage = storageURL
				apiSrv := serveOn(t, "127.0.0.1:0", api)
				if strings.TrimPrefix(apiSrv.URL, "http://") == strings.TrimPrefix(storageURL, "http://") {
					t.Fatal("servers share an address")
				}
				cfg := config(t.TempDir(), apiSrv.URL)
				cfg.Legacy = legacy
				res, err := Download(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				if len(res) != 2 || !res[0].Updated || res[0].SHA256 == "" {
					t.Fatalf("results %+v", res)
				}
				mu.Lock()
				defer mu.Unlock()
				if len(reqs) != 4 { // two archives, two checksums
					t.Fatalf("storage saw %d requests", len(reqs))
				}
				for _, r := range reqs {
					if r.auth != "" {
						t.Errorf("Authorization %q reached the storage host", r.auth)
					}
					if strings.Contains(r.referer, licenseKey) || strings.Contains(r.rawQuery, "license_key") || r.referer != "" {
						t.Errorf("storage saw Referer %q, query %q", r.referer, r.rawQuery)
					}
				}
			})
		}
	}
}

func TestLegacyURLAndRedaction(t *testing.T) {
	fake := newFake(t)
	var gotQuery string
	fake.handler = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("legacy request sent Authorization")
		}
		gotQuery = r.URL.RawQuery
		return false
	}
	srv := serveOn(t, "127.0.0.1:0", fake)
	cfg := config(t.TempDir(), srv.URL)
	cfg.Legacy = true
	cfg.AccountID = ""
	res, err := Download(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("results %+v", res)
	}
	if !strings.Contains(gotQuery, "edition_id=GeoLite2-Country") || !strings.Contains(gotQuery, "suffix=tar.gz.sha256") {
		t.Fatalf("legacy query %q", gotQuery)
	}

	// Transport errors carry the URL; the key is in the legacy URL's query.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	cfg = config(t.TempDir(), closed)
	cfg.Legacy = true
	_, err = Download(context.Background(), cfg)
	if err == nil {
		t.Fatal("download from a closed port succeeded")
	}
	if msg := err.Error(); strings.Contains(msg, licenseKey) || strings.Contains(msg, "sekrit") || !strings.Contains(msg, "/app/geoip_download?edition_id=GeoLite2-City&license_key=REDACTED&suffix=tar.gz") {
		t.Fatalf("error %q", msg)
	}
}

func TestRedactCoversEncodedKey(t *testing.T) {
	u, err := newUpdater(config(t.TempDir(), "http://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	base := errors.New("x")
	err = u.redact(fmt.Errorf("a %s b %s: %w", licenseKey, "sekrit-L1cense_Key%2B42", base))
	if strings.Contains(err.Error(), "sekrit") || !errors.Is(err, base) {
		t.Fatalf("redact: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for name, cfg := range map[string]Config{
		"no key":              {Dir: dir, AccountID: accountID},
		"no account":          {Dir: dir, LicenseKey: licenseKey},
		"no dir":              {AccountID: accountID, LicenseKey: licenseKey},
		"missing dir":         {Dir: filepath.Join(dir, "nope"), AccountID: accountID, LicenseKey: licenseKey},
		"edition with path":   {Dir: dir, AccountID: accountID, LicenseKey: licenseKey, Editions: []string{"../GeoLite2-City"}},
		"ftp endpoint":        {Dir: dir, AccountID: accountID, LicenseKey: licenseKey, Endpoint: "ftp://127.0.0.1"},
		"endpoint with creds": {Dir: dir, AccountID: accountID, LicenseKey: licenseKey, Endpoint: "http://u:p@127.0.0.1"},
		"endpoint with key":   {Dir: dir, AccountID: accountID, LicenseKey: licenseKey, Endpoint: "%" + licenseKey},
	} {
		_, err := Download(context.Background(), cfg)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if strings.Contains(err.Error(), licenseKey) {
			t.Errorf("%s: key in %q", name, err)
		}
	}
}

func TestCheckRedirectRefusesDowngrade(t *testing.T) {
	first, _ := http.NewRequest("GET", "https://download.maxmind.com/x", nil)
	next, _ := http.NewRequest("GET", "http://download.maxmind.com/y", nil)
	if err := checkRedirect(next, []*http.Request{first}); err == nil {
		t.Fatal("https→http redirect allowed")
	}
}
