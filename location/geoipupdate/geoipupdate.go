// Package geoipupdate downloads MaxMind GeoIP2/GeoLite2 databases into a
// directory that a location.Reader reads, safely enough to run from cron on
// a production host:
//
//   - it uses MaxMind's current download API (HTTP Basic auth with account
//     ID and license key, then a redirect to MaxMind's storage) or, with
//     Config.Legacy, the older license-key URL;
//   - it sends If-Modified-Since with the installed file's modification time
//     and downloads nothing when MaxMind answers 304 Not Modified;
//   - it verifies the archive against the SHA-256 MaxMind publishes (always,
//     when the server offers a checksum);
//   - it extracts only the edition's .mmdb file, and refuses archives with
//     links or entries that would land outside the directory;
//   - it writes a temporary file in the directory, checks that it opens as
//     a MaxMind database, and renames it into place, so readers see the old
//     or the new file, never a partial one; on any error the installed file
//     is left as it was;
//   - it never sends credentials to another host after a redirect and never
//     puts the license key in an error or in progress output.
package geoipupdate

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/qsessions/qsessions/internal/text"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/oschwald/maxminddb-golang/v2"
)

// DefaultEndpoint is MaxMind's download server.
const DefaultEndpoint = "https://download.maxmind.com"

// DefaultEditions are the free databases package location reads.
var DefaultEditions = []string{"GeoLite2-City", "GeoLite2-Country"}

// DefaultMaxSize bounds the size of an extracted database (MaxMind's largest
// .mmdb files are a few hundred MB), so a hostile archive cannot fill the
// disk.
const DefaultMaxSize int64 = 4 << 30

// ErrTimeout is wrapped by the error of a download that hit Config.Timeout
// or Config.IdleTimeout.
var ErrTimeout = errors.New("timed out")

// ErrChecksum is wrapped by the error of a download whose archive does not
// match the SHA-256 the server published.
var ErrChecksum = errors.New("checksum mismatch")

// ErrUnsafeArchive is wrapped by the error of an archive holding a link, an
// absolute path or a path that leaves the directory.
var ErrUnsafeArchive = errors.New("unsafe archive")

// ErrAuth is wrapped by the error of a download the server refused with
// HTTP 401 or 403.
var ErrAuth = errors.New("authentication failed")

// Config says what to download where. Dir and LicenseKey are required, and
// AccountID unless Legacy.
type Config struct {
	// Dir is the directory the .mmdb files are installed in, as
	// <edition>.mmdb. It must exist.
	Dir string
	// Editions are MaxMind edition IDs; empty means DefaultEditions.
	Editions []string
	// AccountID is the MaxMind account ID, sent with HTTP Basic auth (not
	// used with Legacy).
	AccountID string
	// LicenseKey is the account's license key. It is sent only to the
	// Endpoint's scheme, host and port, and is replaced by "REDACTED" in
	// every error.
	LicenseKey string
	// Endpoint is the base URL of the download server; empty means
	// DefaultEndpoint. Tests and mirrors point it elsewhere.
	Endpoint string
	// Legacy selects the old URL form with the license key in the query
	// (/app/geoip_download?edition_id=...&license_key=...&suffix=tar.gz)
	// instead of HTTP Basic auth.
	Legacy bool
	// Client is the HTTP client to use; nil means a client with
	// http.DefaultTransport's settings (proxy from the environment). Its
	// CheckRedirect is replaced by one that drops the Authorization and
	// Referer headers when a redirect leaves the endpoint's scheme, host and
	// port, and refuses https-to-http redirects.
	Client *http.Client
	// Timeout bounds the whole Download call; zero means no bound besides
	// the context's.
	Timeout time.Duration
	// IdleTimeout aborts a request when the server sends nothing (no
	// response header, no body byte) for this long; zero means one minute,
	// negative disables it.
	IdleTimeout time.Duration
	// Progress, when not nil, receives a progress line per edition that is
	// rewritten in place with "\r" (for a terminal) and ends with "\n".
	Progress io.Writer
	// MaxSize bounds the extracted database; zero means DefaultMaxSize.
	MaxSize int64
	// UserAgent is sent with each request; empty means
	// "qsessions-geoipupdate".
	UserAgent string
}

// Result is what happened to one edition.
type Result struct {
	// Edition is the edition ID, e.g. "GeoLite2-City".
	Edition string
	// Path is the installed file, <Dir>/<Edition>.mmdb.
	Path string
	// Updated is true when a new file was installed, false when the
	// installed one was up to date (HTTP 304).
	Updated bool
	// Modified is the file's release time (the server's Last-Modified),
	// also set as the file's modification time.
	Modified time.Time
	// Size is the installed file's size in bytes.
	Size int64
	// SHA256 is the verified hex checksum of the archive, or "" when the
	// server published none (or nothing was downloaded).
	SHA256 string
}

var editionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// Download fetches every edition of cfg in turn and installs those that
// changed. An edition that fails does not stop the others: the error joins
// one error per failed edition (each prefixed with the edition) and the
// results hold the editions that succeeded. Cost: one conditional request
// per edition when nothing changed; otherwise the archive (GeoLite2-City is
// about 35 MB) streamed through gzip and SHA-256 with constant memory, one
// checksum request, and one temporary file in Dir.
func Download(ctx context.Context, cfg Config) ([]Result, error) {
	u, err := newUpdater(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, cfg.Timeout,
			fmt.Errorf("download did not finish within %v: %w", cfg.Timeout, ErrTimeout))
		defer cancel()
	}
	var (
		results []Result
		errs    []error
	)
	for _, edition := range u.editions {
		res, err := u.edition(ctx, edition)
		if err != nil {
			errs = append(errs, u.redact(fmt.Errorf("%s: %w", edition, err)))
			continue
		}
		results = append(results, res)
	}
	return results, errors.Join(errs...)
}

type updater struct {
	cfg      Config
	editions []string
	base     *url.URL
	client   *http.Client
	idle     time.Duration
	maxSize  int64
	secrets  []string
}

func newUpdater(cfg Config) (*updater, error) {
	u := &updater{cfg: cfg, editions: cfg.Editions, idle: cfg.IdleTimeout, maxSize: cfg.MaxSize}
	if cfg.LicenseKey != "" {
		u.secrets = []string{cfg.LicenseKey, url.QueryEscape(cfg.LicenseKey), url.PathEscape(cfg.LicenseKey)}
	}
	if len(u.editions) == 0 {
		u.editions = DefaultEditions
	}
	for _, e := range u.editions {
		if !editionRE.MatchString(e) {
			return nil, fmt.Errorf("geoipupdate: invalid edition ID %q (want letters, digits, '-' and '_')", text.Elide(e, 64))
		}
	}
	if cfg.Dir == "" {
		return nil, errors.New("geoipupdate: no database directory given")
	}
	if fi, err := os.Stat(cfg.Dir); err != nil {
		return nil, fmt.Errorf("geoipupdate: database directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("geoipupdate: database directory %s is not a directory", cfg.Dir)
	}
	if cfg.LicenseKey == "" {
		return nil, errors.New("geoipupdate: no license key given")
	}
	if cfg.AccountID == "" && !cfg.Legacy {
		return nil, errors.New("geoipupdate: no account ID given (the legacy license-key-only URL needs Legacy)")
	}
	if strings.ContainsAny(cfg.AccountID, ":\r\n") {
		return nil, errors.New("geoipupdate: account ID contains ':' or a line break")
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	base, err := url.Parse(endpoint)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, u.redact(fmt.Errorf("geoipupdate: endpoint %q is not an http(s) URL", text.Elide(endpoint, 200)))
	}
	if base.User != nil || base.RawQuery != "" || base.Fragment != "" {
		return nil, errors.New("geoipupdate: endpoint must not contain credentials, a query or a fragment")
	}
	u.base = base
	if u.idle == 0 {
		u.idle = time.Minute
	}
	if u.maxSize <= 0 {
		u.maxSize = DefaultMaxSize
	}
	c := http.Client{}
	if cfg.Client != nil {
		c = *cfg.Client
	} else {
		c.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	c.CheckRedirect = checkRedirect
	u.client = &c
	return u, nil
}

// checkRedirect follows at most 10 redirects, refuses https→http, drops
// Authorization when the redirect leaves the first request's scheme, host
// or port (net/http compares host names only), and always drops Referer,
// which would carry a legacy URL's license key to the next host.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	first := via[0].URL
	if first.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("refusing redirect from https to %s", req.URL.Scheme)
	}
	if req.URL.Scheme != first.Scheme || !strings.EqualFold(req.URL.Host, first.Host) {
		req.Header.Del("Authorization")
	}
	req.Header.Del("Referer")
	return nil
}

// redact replaces the license key in err's text. The result still unwraps
// to err for errors.Is; the wrapped errors' own text is scrubbed where it
// holds URLs (see get).
func (u *updater) redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := msg
	for _, s := range u.secrets {
		if s != "" {
			red = strings.ReplaceAll(red, s, "REDACTED")
		}
	}
	if red == msg {
		return err
	}
	return &redactedError{msg: red, err: err}
}

type redactedError struct {
	msg string
	err error
}

// Error returns the redacted message.
func (e *redactedError) Error() string { return e.msg }

// Unwrap returns the original error, for errors.Is and errors.As.
func (e *redactedError) Unwrap() error { return e.err }

func (u *updater) urls(edition string) (archive, checksum string) {
	q := url.Values{}
	var p string
	if u.cfg.Legacy {
		p = "/app/geoip_download"
		q.Set("edition_id", edition)
		q.Set("license_key", u.cfg.LicenseKey)
	} else {
		p = "/geoip/databases/" + edition + "/download"
	}
	a := *u.base
	a.Path = strings.TrimSuffix(a.Path, "/") + p
	a.RawPath = ""
	c := a
	q.Set("suffix", "tar.gz")
	a.RawQuery = q.Encode()
	q.Set("suffix", "tar.gz.sha256")
	c.RawQuery = q.Encode()
	return a.String(), c.String()
}

// displayURL is rawURL for messages: user info dropped and a license_key
// query parameter replaced by REDACTED.
func displayURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	q := u.Query()
	if q.Has("license_key") {
		q.Set("license_key", "REDACTED")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func (u *updater) edition(ctx context.Context, edition string) (Result, error) {
	res := Result{Edition: edition, Path: filepath.Join(u.cfg.Dir, edition+".mmdb")}
	archiveURL, checksumURL := u.urls(edition)

	var since time.Time
	if fi, err := os.Stat(res.Path); err == nil && fi.Mode().IsRegular() {
		since = fi.ModTime()
	}

	resp, body, cancel, err := u.get(ctx, archiveURL, since)
	if err != nil {
		return res, err
	}
	defer cancel()
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && !since.IsZero():
		res.Modified = since
		if fi, err := os.Stat(res.Path); err == nil {
			res.Size = fi.Size()
		}
		return res, nil
	case resp.StatusCode != http.StatusOK:
		return res, statusError("archive", archiveURL, resp)
	}
	res.Modified = time.Now()
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		res.Modified = lm
	}

	tmp, err := os.CreateTemp(u.cfg.Dir, "."+edition+".mmdb.download-*")
	if err != nil {
		return res, fmt.Errorf("create temporary file: %w", err)
	}
	installed := false
	defer func() {
		if !installed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	var pr *progress
	if u.cfg.Progress != nil {
		pr = &progress{w: u.cfg.Progress, edition: edition, total: resp.ContentLength}
	}
	sum, size, err := u.extract(body, pr, edition, tmp)
	if pr != nil {
		pr.finish(err == nil)
	}
	if err != nil {
		return res, err
	}
	resp.Body.Close()
	cancel() // stop the archive's idle timer; the body is fully read

	want, err := u.checksum(ctx, checksumURL)
	if err != nil {
		return res, err
	}
	if want != "" && want != sum {
		return res, fmt.Errorf("%w: archive from %s has SHA-256 %s, the server published %s",
			ErrChecksum, displayURL(archiveURL), sum, want)
	}
	res.SHA256 = want

	if err := tmp.Sync(); err != nil {
		return res, fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return res, fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := checkDatabase(tmp.Name()); err != nil {
		return res, fmt.Errorf("%s.mmdb from the archive: %w", edition, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return res, fmt.Errorf("install %s: %w", res.Path, err)
	}
	if err := os.Chtimes(tmp.Name(), res.Modified, res.Modified); err != nil {
		return res, fmt.Errorf("install %s: %w", res.Path, err)
	}
	if err := os.Rename(tmp.Name(), res.Path); err != nil {
		return res, fmt.Errorf("install %s: %w", res.Path, err)
	}
	installed = true
	syncDir(u.cfg.Dir)
	res.Updated = true
	res.Size = size
	return res, nil
}

// get sends a GET and returns the response with its body wrapped by the
// idle timer. The caller calls cancel when done with the body.
func (u *updater) get(ctx context.Context, rawURL string, since time.Time) (*http.Response, io.Reader, context.CancelFunc, error) {
	ctx, cancelCause := context.WithCancelCause(ctx)
	var timer *time.Timer
	if u.idle > 0 {
		idle := u.idle
		timer = time.AfterFunc(idle, func() {
			cancelCause(fmt.Errorf("no data from the server for %v: %w", idle, ErrTimeout))
		})
	}
	cancel := func() {
		if timer != nil {
			timer.Stop()
		}
		cancelCause(context.Canceled)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		cancel()
		return nil, nil, nil, fmt.Errorf("build request for %s: %w", displayURL(rawURL), err)
	}
	if !u.cfg.Legacy {
		req.SetBasicAuth(u.cfg.AccountID, u.cfg.LicenseKey)
	}
	if !since.IsZero() {
		req.Header.Set("If-Modified-Since", since.UTC().Format(http.TimeFormat))
	}
	ua := u.cfg.UserAgent
	if ua == "" {
		ua = "qsessions-geoipupdate"
	}
	req.Header.Set("User-Agent", ua)
	resp, err := u.client.Do(req)
	if err != nil {
		err = requestError(ctx, rawURL, err)
		cancel()
		return nil, nil, nil, err
	}
	if timer != nil {
		timer.Reset(u.idle)
	}
	body := &bodyReader{ctx: ctx, r: resp.Body, timer: timer, idle: u.idle, url: rawURL}
	return resp, body, cancel, nil
}

// requestError turns a client error into one that says what timed out and
// does not show the URL's query (a legacy URL holds the key).
func requestError(ctx context.Context, rawURL string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = displayURL(ue.URL)
	}
	if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil && !errors.Is(cause, context.Canceled) {
		return fmt.Errorf("GET %s: %w", displayURL(rawURL), cause)
	}
	if ue != nil {
		return fmt.Errorf("GET %s: %w", displayURL(rawURL), ue.Err)
	}
	return fmt.Errorf("GET %s: %w", displayURL(rawURL), err)
}

// bodyReader resets the idle timer on every read that returns data and
// reports the idle or overall timeout instead of a bare "context canceled".
type bodyReader struct {
	ctx   context.Context
	r     io.Reader
	timer *time.Timer
	idle  time.Duration
	url   string
}

// Read reads from the response body, feeding the idle timer.
func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 && b.timer != nil {
		b.timer.Reset(b.idle)
	}
	if err != nil && err != io.EOF {
		err = requestError(b.ctx, b.url, err)
	}
	return n, err
}

// statusError describes an unexpected HTTP status, with the start of the
// server's message.
func statusError(what, rawURL string, resp *http.Response) error {
	msg := serverMessage(resp.Body)
	if msg != "" {
		msg = ": server says " + msg
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: GET %s %s: HTTP %s%s (check the account ID and license key, and that the account may download this edition)",
			ErrAuth, what, displayURL(rawURL), resp.Status, msg)
	case http.StatusNotFound:
		return fmt.Errorf("GET %s %s: HTTP %s%s (unknown edition?)", what, displayURL(rawURL), resp.Status, msg)
	}
	return fmt.Errorf("GET %s %s: unexpected HTTP %s%s", what, displayURL(rawURL), resp.Status, msg)
}

// serverMessage returns up to 200 printable characters of r, quoted.
func serverMessage(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 512))
	s := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, strings.ToValidUTF8(string(b), ""))
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return ""
	}
	return fmt.Sprintf("%q", text.Elide(s, 200))
}

// checksum fetches the published SHA-256 of the archive. A 404 means the
// server publishes none: "" and no error. Any other failure is an error, so
// a checksum the server offers cannot be skipped by making it fail.
func (u *updater) checksum(ctx context.Context, rawURL string) (string, error) {
	resp, body, cancel, err := u.get(ctx, rawURL, time.Time{})
	if err != nil {
		return "", fmt.Errorf("checksum: %w", err)
	}
	defer cancel()
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return "", nil
	default:
		return "", statusError("checksum", rawURL, resp)
	}
	b, err := io.ReadAll(io.LimitReader(body, 4096))
	if err != nil {
		return "", fmt.Errorf("checksum: read: %w", err)
	}
	// "<64 hex digits>  GeoLite2-City_20240102.tar.gz"
	fields := strings.Fields(string(b))
	if len(fields) == 0 || len(fields[0]) != 64 {
		return "", fmt.Errorf("checksum from %s is malformed (want \"<sha256 hex>  <file name>\")", displayURL(rawURL))
	}
	sum := strings.ToLower(fields[0])
	if _, err := hex.DecodeString(sum); err != nil {
		return "", fmt.Errorf("checksum from %s is not hexadecimal", displayURL(rawURL))
	}
	return sum, nil
}

// extract reads the .tar.gz from r, hashing every byte, writes the entry
// named <edition>.mmdb to out, and returns the archive's hex SHA-256 and the
// extracted size.
func (u *updater) extract(r io.Reader, pr *progress, edition string, out io.Writer) (string, int64, error) {
	h := sha256.New()
	var src io.Reader = r
	if pr != nil {
		src = io.TeeReader(src, pr)
	}
	raw := bufio.NewReaderSize(io.TeeReader(src, h), 64<<10)
	zr, err := gzip.NewReader(raw)
	if err != nil {
		return "", 0, fmt.Errorf("read archive: %w", describeReadErr(err))
	}
	tr := tar.NewReader(zr)
	want := edition + ".mmdb"
	var size int64 = -1
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", 0, fmt.Errorf("read archive: %w", describeReadErr(err))
		}
		name, err := entryName(hdr)
		if err != nil {
			return "", 0, err
		}
		if hdr.Typeflag == tar.TypeDir || path.Base(name) != want {
			continue // README, LICENSE, COPYRIGHT, directories
		}
		if size >= 0 {
			return "", 0, fmt.Errorf("%w: archive holds %s twice", ErrUnsafeArchive, want)
		}
		n, err := io.Copy(out, io.LimitReader(tr, u.maxSize+1))
		if err != nil {
			return "", 0, fmt.Errorf("extract %s: %w", want, describeReadErr(err))
		}
		if n > u.maxSize {
			return "", 0, fmt.Errorf("%s in the archive is larger than %d bytes", want, u.maxSize)
		}
		size = n
	}
	// Read the rest (tar padding, gzip trailer): it checks the gzip CRC and
	// puts every byte of the download into the hash.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return "", 0, fmt.Errorf("read archive: %w", describeReadErr(err))
	}
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return "", 0, fmt.Errorf("read archive: %w", describeReadErr(err))
	}
	if size < 0 {
		return "", 0, fmt.Errorf("archive holds no %s", want)
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}

func describeReadErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("archive is truncated: %w", err)
	}
	return err
}

// entryName checks one tar header: links, devices and names that are
// absolute or climb out with ".." are refused.
func entryName(hdr *tar.Header) (string, error) {
	name := hdr.Name
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeDir:
	case tar.TypeSymlink, tar.TypeLink:
		return "", fmt.Errorf("%w: entry %q is a link (to %q)", ErrUnsafeArchive, text.Elide(name, 200), text.Elide(hdr.Linkname, 200))
	default:
		return "", fmt.Errorf("%w: entry %q has type %q, want a file or directory", ErrUnsafeArchive, text.Elide(name, 200), hdr.Typeflag)
	}
	if name == "" || strings.ContainsAny(name, "\\\x00") || strings.HasPrefix(name, "/") || filepath.IsAbs(name) || filepath.VolumeName(name) != "" {
		return "", fmt.Errorf("%w: entry %q has an absolute or non-portable path", ErrUnsafeArchive, text.Elide(name, 200))
	}
	clean := path.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("%w: entry %q would be written outside the directory", ErrUnsafeArchive, text.Elide(name, 200))
	}
	return clean, nil
}

// checkDatabase opens path as a MaxMind database, which also checks its
// metadata and search tree size.
func checkDatabase(path string) error {
	r, err := maxminddb.Open(path)
	if err != nil {
		return fmt.Errorf("not a valid MaxMind database: %w", err)
	}
	defer r.Close()
	if r.Metadata.DatabaseType == "" {
		return errors.New("not a valid MaxMind database: no database type in its metadata")
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: not supported on every OS
		d.Close()
	}
}

// progress writes "\r<edition>: 12.3 / 35.0 MiB (35%)" at most every 100ms.
type progress struct {
	w       io.Writer
	edition string
	total   int64
	n       int64
	last    time.Time
}

// Write counts downloaded bytes and redraws the line now and then.
func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.print()
	}
	return len(b), nil
}

func (p *progress) print() {
	const mib = 1 << 20
	if p.total > 0 {
		fmt.Fprintf(p.w, "\r%s: %.1f / %.1f MiB (%d%%)", p.edition, float64(p.n)/mib, float64(p.total)/mib, p.n*100/p.total)
	} else {
		fmt.Fprintf(p.w, "\r%s: %.1f MiB", p.edition, float64(p.n)/mib)
	}
}

func (p *progress) finish(ok bool) {
	p.print()
	if ok {
		fmt.Fprintln(p.w, " done")
	} else {
		fmt.Fprintln(p.w, " failed")
	}
}
