// Package location finds where an IP address is, from MaxMind GeoIP2 or
// GeoLite2 databases (.mmdb files), for "your active sessions" pages.
//
// A [Reader] opens a directory holding any of
//
//	GeoIP2-City.mmdb     GeoLite2-City.mmdb
//	GeoIP2-Country.mmdb  GeoLite2-Country.mmdb
//
// (the commercial GeoIP2 file wins when both editions are present), looks an
// address up in the city database first and falls back to the country
// database, and can swap in new files while lookups run ([Reader.Reload],
// [WithWatch]). The sub-package geoipupdate downloads the files; the
// `qsessions geoip download` command wraps it.
//
// Database files are memory-mapped. Replace them by renaming a new file over
// the old one (as geoipupdate and `qsessions geoip download` do); never
// rewrite a file that a Reader has open in place, because the mapped pages
// would change under running lookups. (On Windows a mapped file cannot be
// replaced at all: close the Reader, or point it at a new directory.)
package location

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/geoip2-golang/v2"
)

// Database file names Open looks for, in order of preference per kind.
var (
	// CityFiles are the city database names, best first.
	CityFiles = []string{"GeoIP2-City.mmdb", "GeoLite2-City.mmdb"}
	// CountryFiles are the country database names, best first.
	CountryFiles = []string{"GeoIP2-Country.mmdb", "GeoLite2-Country.mmdb"}
)

// ErrClosed is returned by lookups and reloads on a Reader after Close.
var ErrClosed = errors.New("location: reader is closed")

// ErrNoDatabase is returned (wrapped, with the directory) by Open and Reload
// when the directory holds none of the database files and [AllowEmpty] was
// not given.
var ErrNoDatabase = errors.New("location: no GeoIP2/GeoLite2 City or Country database")

// Info is where an IP address is, as far as the databases know. Every field
// is empty when unknown; a lookup of a private or unknown address gives the
// zero Info.
type Info struct {
	// City is the city name, e.g. "London". Only city databases have it.
	City string `json:"city,omitempty"`
	// Country is the country name, e.g. "United Kingdom".
	Country string `json:"country,omitempty"`
	// CountryCode is the ISO 3166-1 alpha-2 code, e.g. "GB".
	CountryCode string `json:"country_code,omitempty"`
	// Continent is the continent name, e.g. "Europe".
	Continent string `json:"continent,omitempty"`
	// ContinentCode is the two-letter continent code, e.g. "EU".
	ContinentCode string `json:"continent_code,omitempty"`
	// TimeZone is the IANA time zone, e.g. "Europe/London".
	TimeZone string `json:"time_zone,omitempty"`
	// Latitude is the approximate latitude (see AccuracyRadius); it is
	// meaningful only when HasCoordinates is true.
	Latitude float64 `json:"latitude"`
	// Longitude is the approximate longitude, as Latitude.
	Longitude float64 `json:"longitude"`
	// HasCoordinates reports whether the database had coordinates.
	HasCoordinates bool `json:"has_coordinates"`
	// AccuracyRadius is the radius in kilometres around the coordinates in
	// which MaxMind is 67% confident the address is.
	AccuracyRadius uint16 `json:"accuracy_radius_km,omitempty"`
}

// IsZero reports whether nothing is known about the address.
func (i Info) IsZero() bool { return i == Info{} }

// String returns "City, Country", or "Country" when the city is unknown, or
// "" when the country is unknown too (a city without a country gives just
// the city). It allocates only when joining two names.
func (i Info) String() string {
	switch {
	case i.City != "" && i.Country != "":
		return i.City + ", " + i.Country
	case i.Country != "":
		return i.Country
	default:
		return i.City
	}
}

// Locator is what the session layer needs from a GeoIP source: *Reader
// implements it, and tests can pass a fake. Lookup must be safe for
// concurrent use, return the zero Info and a nil error for private and
// unknown addresses, and an error only when the lookup itself failed.
type Locator interface {
	Lookup(ip netip.Addr) (Info, error)
}

// Describe returns l's Info.String() for ip, or "" when l is nil or the
// lookup fails. It costs one Lookup.
func Describe(l Locator, ip netip.Addr) string {
	if l == nil {
		return ""
	}
	info, err := l.Lookup(ip)
	if err != nil {
		return ""
	}
	return info.String()
}

// Option configures Open.
type Option func(*options)

type options struct {
	watch      time.Duration
	onReload   func(error)
	lang       string
	allowEmpty bool
}

// WithWatch makes the Reader check the directory every interval (a stat of
// the four file names; no file is read) and Reload when a file appeared,
// disappeared or was replaced (different inode, size or modification
// time). A Reload that fails keeps the current databases and is retried only
// after the files change again. Close stops the watcher. Intervals below
// 10ms are raised to 10ms; zero or less disables watching (the default).
func WithWatch(interval time.Duration) Option {
	return func(o *options) { o.watch = max(interval, 0) }
}

// WithReloadHook calls fn after every Reload the watcher triggers, with its
// result (nil on success), e.g. to log it. fn runs on the watcher goroutine
// and should return quickly.
func WithReloadHook(fn func(error)) Option {
	return func(o *options) { o.onReload = fn }
}

// WithLanguage picks the language of names: one of "en" (the default), "de",
// "es", "fr", "ja", "pt-BR", "ru", "zh-CN", the languages MaxMind's databases
// carry. A name missing in that language falls back to English; an unknown
// language means English.
func WithLanguage(lang string) Option {
	return func(o *options) { o.lang = lang }
}

// AllowEmpty lets Open succeed on a directory without any database (e.g.
// before the first download). Lookups then return the zero Info until a
// Reload (or the watcher) finds files.
func AllowEmpty() Option {
	return func(o *options) { o.allowEmpty = true }
}

// Reader looks IP addresses up in the databases of one directory. It is safe
// for concurrent use. Lookups never wait for a Reload: a Reload opens the new
// files, swaps them in with one atomic store, and the old files are closed
// (unmapped) by whichever goroutine releases the last lookup still using
// them.
type Reader struct {
	dir  string
	opts options

	cur atomic.Pointer[generation]

	mu       sync.Mutex // serialises Reload and Close
	closed   bool
	failed   []fileState // the files the last failed Reload saw
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// Open opens the databases in dir. It fails when dir cannot be read, when a
// database file is present but cannot be opened (corrupt, or not a City or
// Country database), or when there is no database at all (unless
// [AllowEmpty]). Cost: one stat per candidate name and an mmap per file
// found; nothing is read into memory up front.
func Open(dir string, opts ...Option) (*Reader, error) {
	r := &Reader{dir: dir}
	for _, o := range opts {
		if o != nil {
			o(&r.opts)
		}
	}
	if r.opts.watch > 0 && r.opts.watch < 10*time.Millisecond {
		r.opts.watch = 10 * time.Millisecond
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("location: open database directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("location: open database directory: %s is not a directory", dir)
	}
	g, err := r.load(statAll(dir))
	if err != nil {
		return nil, err
	}
	r.cur.Store(g)
	if r.opts.watch > 0 {
		r.stop = make(chan struct{})
		r.done = make(chan struct{})
		go r.watch()
	}
	return r, nil
}

// Dir returns the directory the Reader was opened on.
func (r *Reader) Dir() string { return r.dir }

// Lookup returns what the databases know about ip: the city database's
// record if it has one, else the country database's. An IPv4-mapped IPv6
// address is looked up as IPv4 and a zone is ignored. The zero addr, private,
// loopback, link-local, multicast, CGNAT and unspecified addresses, and
// addresses not in the databases, give the zero Info and a nil error; an
// error means a corrupt database or a closed Reader.
//
// Cost: one or two tree walks and record decodes in memory-mapped files,
// under a microsecond and 3 allocations (about 1 KiB) per lookup
// (BenchmarkLookup); no lock, one atomic reference count increment and
// decrement.
func (r *Reader) Lookup(ip netip.Addr) (Info, error) {
	ip = ip.Unmap().WithZone("")
	if !Routable(ip) {
		return Info{}, nil
	}
	g, err := r.acquire()
	if err != nil {
		return Info{}, err
	}
	defer g.release()
	return g.lookup(ip, r.opts.lang)
}

// LookupString parses s (an IPv4 or IPv6 address, surrounding space
// ignored) and calls Lookup. Text that is not an IP address is an error.
func (r *Reader) LookupString(s string) (Info, error) {
	ip, err := ParseIP(s)
	if err != nil {
		return Info{}, err
	}
	return r.Lookup(ip)
}

// Describe returns Lookup(ip).String(): "City, Country", "Country" or "".
// Errors give "". It costs one Lookup.
func (r *Reader) Describe(ip netip.Addr) string {
	return Describe(r, ip)
}

// ParseIP parses an IPv4 or IPv6 address as Lookup wants it (surrounding
// space trimmed, IPv4-mapped addresses unmapped, zone dropped). The error
// quotes at most 64 bytes of s.
func ParseIP(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		if len(s) > 64 {
			s = s[:64] + "..."
		}
		return netip.Addr{}, fmt.Errorf("location: %q is not an IP address", s)
	}
	return ip.Unmap().WithZone(""), nil
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// Routable reports whether ip is a public unicast address worth looking up:
// false for the zero Addr and for unspecified, loopback, private (RFC 1918,
// fc00::/7), shared CGNAT (100.64.0.0/10), link-local and multicast
// addresses.
func Routable(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsValid() && ip.IsGlobalUnicast() && !ip.IsPrivate() && !cgnat.Contains(ip)
}

// Database describes one open database file.
type Database struct {
	// Path is the file's path.
	Path string
	// Type is the database type from its metadata, e.g. "GeoLite2-City".
	Type string
	// BuildTime is when MaxMind built the file.
	BuildTime time.Time
	// IPVersion is 4 for IPv4-only databases, 6 for IPv6 (with IPv4).
	IPVersion uint
}

// Databases returns the files in use, city first; nil after Close or when
// none was found. Cost: one small allocation.
func (r *Reader) Databases() []Database {
	g, err := r.acquire()
	if err != nil {
		return nil
	}
	defer g.release()
	var out []Database
	for _, d := range []*db{g.city, g.country} {
		if d != nil {
			m := d.r.Metadata()
			out = append(out, Database{Path: d.path, Type: m.DatabaseType, BuildTime: m.BuildTime(), IPVersion: m.IPVersion})
		}
	}
	return out
}

// Reload opens the database files of the directory again and swaps them in
// atomically: a lookup sees either all old or all new files. If anything
// fails (a corrupt file, no database left and no [AllowEmpty]), the current
// databases stay in use and the error says why. Lookups running during a
// Reload are neither blocked nor failed; the old files are unmapped once the
// last of them finishes. Reload calls are serialised with each other and
// with Close.
func (r *Reader) Reload() error {
	return r.reload(statAll(r.dir))
}

func (r *Reader) reload(states []fileState) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	g, err := r.load(states)
	if err != nil {
		r.failed = states
		return err
	}
	r.failed = nil
	if old := r.cur.Swap(g); old != nil {
		old.release()
	}
	return nil
}

// Close stops the watcher and closes the databases once no lookup uses them
// any more. Lookups after Close return ErrClosed. Close is idempotent.
func (r *Reader) Close() error {
	if r.stop != nil {
		r.stopOnce.Do(func() { close(r.stop) })
		<-r.done
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if old := r.cur.Swap(nil); old != nil {
		old.release()
	}
	return nil
}

func (r *Reader) watch() {
	defer close(r.done)
	t := time.NewTicker(r.opts.watch)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		states := statAll(r.dir)
		if !r.changed(states) {
			continue
		}
		err := r.reload(states)
		if errors.Is(err, ErrClosed) {
			return
		}
		if r.opts.onReload != nil {
			r.opts.onReload(err)
		}
	}
}

// changed reports whether states differ from both the files in use and the
// files the last failed reload saw.
func (r *Reader) changed(states []fileState) bool {
	g, err := r.acquire()
	if err != nil {
		return false
	}
	defer g.release()
	r.mu.Lock()
	failed := r.failed
	r.mu.Unlock()
	return !sameStates(states, g.states) && (failed == nil || !sameStates(states, failed))
}

// acquire returns the current generation with its reference count raised,
// or ErrClosed. It never returns a generation whose count already reached
// zero (one that is being or has been closed).
func (r *Reader) acquire() (*generation, error) {
	for {
		g := r.cur.Load()
		if g == nil {
			return nil, ErrClosed
		}
		n := g.refs.Load()
		if n <= 0 {
			// g was swapped out and released between the Load and now;
			// r.cur already holds its successor.
			continue
		}
		if g.refs.CompareAndSwap(n, n+1) {
			return g, nil
		}
	}
}

// generation is one set of open database files. refs counts the Reader's
// own reference (until the generation is swapped out) plus one per running
// lookup; the last release closes the files.
type generation struct {
	refs    atomic.Int64
	city    *db
	country *db
	states  []fileState
}

type db struct {
	r    *geoip2.Reader
	path string
	ipv4 bool // IPv4-only database: IPv6 addresses are not in it
}

func (g *generation) release() {
	if g.refs.Add(-1) == 0 {
		for _, d := range []*db{g.city, g.country} {
			if d != nil {
				_ = d.r.Close() // munmap; nothing can use the reader any more
			}
		}
	}
}

// load opens the files that states found. On error nothing stays open.
func (r *Reader) load(states []fileState) (*generation, error) {
	g := &generation{states: states}
	g.refs.Store(1)
	var err error
	if g.city, err = openFirst(r.dir, CityFiles, states); err != nil {
		return nil, err
	}
	if g.country, err = openFirst(r.dir, CountryFiles, states); err != nil {
		if g.city != nil {
			_ = g.city.r.Close()
		}
		return nil, err
	}
	if g.city == nil && g.country == nil && !r.opts.allowEmpty {
		return nil, fmt.Errorf("%w in %s (want one of %s)", ErrNoDatabase, r.dir,
			strings.Join(append(append([]string(nil), CityFiles...), CountryFiles...), ", "))
	}
	return g, nil
}

// openFirst opens the first of names that states saw as a regular file.
func openFirst(dir string, names []string, states []fileState) (*db, error) {
	for _, name := range names {
		if st := findState(states, name); st == nil || !st.exists {
			continue
		}
		path := filepath.Join(dir, name)
		rd, err := geoip2.Open(path)
		if err != nil {
			if rd != nil {
				_ = rd.Close() // geoip2 returns an open reader with an unknown-type error
			}
			return nil, fmt.Errorf("location: open %s: %w", path, err)
		}
		// geoip2 opens any MaxMind database (ASN, ISP, ...) and refuses
		// only the lookup; find out now rather than on every request.
		if _, err := rd.City(netip.IPv4Unspecified()); err != nil {
			_ = rd.Close()
			return nil, fmt.Errorf("location: open %s: not a City or Country database: %w", path, err)
		}
		return &db{r: rd, path: path, ipv4: rd.Metadata().IPVersion == 4}, nil
	}
	return nil, nil
}

func (g *generation) lookup(ip netip.Addr, lang string) (Info, error) {
	var info Info
	if d := g.city; d != nil && !(d.ipv4 && ip.Is6()) {
		rec, err := d.r.City(ip)
		if err != nil {
			return Info{}, fmt.Errorf("location: look up %s in %s: %w", ip, d.path, err)
		}
		info = Info{
			City:          name(rec.City.Names, lang),
			Country:       name(rec.Country.Names, lang),
			CountryCode:   rec.Country.ISOCode,
			Continent:     name(rec.Continent.Names, lang),
			ContinentCode: rec.Continent.Code,
			TimeZone:      rec.Location.TimeZone,
		}
		if rec.Location.HasCoordinates() {
			info.Latitude, info.Longitude = *rec.Location.Latitude, *rec.Location.Longitude
			info.HasCoordinates = true
			info.AccuracyRadius = rec.Location.AccuracyRadius
		}
	}
	if info.CountryCode != "" || info.Country != "" {
		return info, nil
	}
	if d := g.country; d != nil && !(d.ipv4 && ip.Is6()) {
		rec, err := d.r.Country(ip)
		if err != nil {
			return Info{}, fmt.Errorf("location: look up %s in %s: %w", ip, d.path, err)
		}
		info.Country = name(rec.Country.Names, lang)
		info.CountryCode = rec.Country.ISOCode
		if info.Continent == "" && info.ContinentCode == "" {
			info.Continent = name(rec.Continent.Names, lang)
			info.ContinentCode = rec.Continent.Code
		}
	}
	return info, nil
}

// name returns the name in lang, or in English when lang has none.
func name(n geoip2.Names, lang string) string {
	var s string
	switch lang {
	case "de":
		s = n.German
	case "es":
		s = n.Spanish
	case "fr":
		s = n.French
	case "ja":
		s = n.Japanese
	case "pt-BR":
		s = n.BrazilianPortuguese
	case "ru":
		s = n.Russian
	case "zh-CN":
		s = n.SimplifiedChinese
	}
	if s == "" {
		s = n.English
	}
	return s
}

// fileState is what the watcher compares: whether a candidate file exists
// and, if so, its identity, size and modification time.
type fileState struct {
	name   string
	exists bool
	info   os.FileInfo
}

func statAll(dir string) []fileState {
	states := make([]fileState, 0, len(CityFiles)+len(CountryFiles))
	for _, names := range [][]string{CityFiles, CountryFiles} {
		for _, name := range names {
			st := fileState{name: name}
			if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Mode().IsRegular() {
				st.exists, st.info = true, fi
			}
			states = append(states, st)
		}
	}
	return states
}

func findState(states []fileState, name string) *fileState {
	for i := range states {
		if states[i].name == name {
			return &states[i]
		}
	}
	return nil
}

func sameStates(a, b []fileState) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.name != y.name || x.exists != y.exists {
			return false
		}
		if x.exists && (x.info.Size() != y.info.Size() || !x.info.ModTime().Equal(y.info.ModTime()) || !os.SameFile(x.info, y.info)) {
			return false
		}
	}
	return true
}
