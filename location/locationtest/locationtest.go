// Package locationtest builds small GeoIP2-format databases (.mmdb files)
// for tests, so tests of code that uses package location need neither
// MaxMind's files nor network access. It writes the MaxMind DB format
// (https://maxmind.github.io/MaxMind-DB/) itself, with the standard library
// only, so a test helper adds no module to the go.sum of apps that require
// qsessions. It is meant to be imported from _test.go files only.
//
// IPv6 databases keep IPv4 networks at ::a.b.c.d/96+n and point the IPv4
// aliases (::ffff:0:0/96, 2001::/32, 2002::/16) at them, as MaxMind's
// databases do, so github.com/oschwald/maxminddb-golang/v2 and
// github.com/oschwald/geoip2-golang/v2 find IPv4 addresses in both forms.
package locationtest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Record is the data of one network, in the layout of MaxMind's City and
// Country databases. Empty fields are left out of the record.
type Record struct {
	// Network is the CIDR the record covers, e.g. "81.2.69.0/24" or
	// "2001:218::/32".
	Network string
	// City, Country and Continent are the English names.
	City, Country, Continent string
	// CityNames and CountryNames add names in other languages ("de", "fr",
	// "pt-BR", ...).
	CityNames, CountryNames map[string]string
	// CountryCode is the ISO code ("GB"); ContinentCode the continent's ("EU").
	CountryCode, ContinentCode string
	// TimeZone is the IANA zone ("Europe/London").
	TimeZone string
	// Latitude and Longitude are written when HasCoordinates.
	Latitude, Longitude float64
	// AccuracyRadius (km) is written when HasCoordinates.
	AccuracyRadius uint16
	// HasCoordinates says whether the record has a location.
	HasCoordinates bool
}

// Options describe the database file.
type Options struct {
	// DatabaseType is the metadata type, e.g. "GeoLite2-City" or
	// "GeoLite2-Country"; package location only opens the GeoIP2/GeoLite2
	// City and Country types.
	DatabaseType string
	// IPVersion is 6 (the default; IPv4 and IPv6) or 4 (IPv4 only).
	IPVersion int
	// BuildTime is the metadata build time; zero means 2024-01-02 UTC, so
	// files are reproducible.
	BuildTime time.Time
}

// Build returns the bytes of a database holding recs. Records are inserted
// in order and a later record replaces an earlier one on the addresses they
// share, so put a wide network before the narrower ones nested in it.
// Reserved networks (private, loopback) are allowed, so tests can check that
// lookups skip them. Records with equal data are stored once.
//
// Errors: an IPVersion other than 0, 4 or 6, a Network that is not a CIDR,
// an IPv6 network in an IPv4-only database, a network inside an IPv4 alias
// (write the IPv4 network), a name that is not UTF-8, a coordinate that is
// not finite, a BuildTime before 1970.
//
// Cost: time and memory linear in the records times their prefix lengths
// (a tree node per bit); well under a millisecond for a handful of records,
// a few milliseconds for a thousand.
func Build(opts Options, recs ...Record) ([]byte, error) {
	return build(opts, 28, recs)
}

// build is Build with a choice of record size (24, 28 or 32 bits).
func build(opts Options, recordSize int, recs []Record) ([]byte, error) {
	if opts.IPVersion == 0 {
		opts.IPVersion = 6
	}
	if opts.BuildTime.IsZero() {
		opts.BuildTime = time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	}
	if opts.BuildTime.Before(time.Unix(0, 0)) {
		return nil, fmt.Errorf("locationtest: BuildTime %s is before 1970", opts.BuildTime.UTC().Format(time.RFC3339))
	}
	w, err := newWriter(opts.IPVersion, recordSize)
	if err != nil {
		return nil, fmt.Errorf("locationtest: %w", err)
	}
	for _, r := range recs {
		if err := w.insert(r.Network, r.mmdb()); err != nil {
			return nil, fmt.Errorf("locationtest: %w", err)
		}
	}
	b, err := w.bytes(map[string]any{
		"binary_format_major_version": uint16(2),
		"binary_format_minor_version": uint16(0),
		"build_epoch":                 uint64(opts.BuildTime.Unix()),
		"database_type":               opts.DatabaseType,
		"description":                 map[string]any{"en": "qsessions test database"},
		"languages":                   []any{"de", "en", "es", "fr", "ja", "pt-BR", "ru", "zh-CN"},
	})
	if err != nil {
		return nil, fmt.Errorf("locationtest: %w", err)
	}
	return b, nil
}

// WriteFile builds a database and installs it at path the way downloads do:
// a temporary file in the same directory renamed over path, so a Reader that
// has the old file mapped is not disturbed. It fails the test on error.
func WriteFile(t testing.TB, path string, opts Options, recs ...Record) {
	t.Helper()
	b, err := Build(opts, recs...)
	if err != nil {
		t.Fatal(err)
	}
	Install(t, path, b)
}

// Install writes b to path through a temporary file and a rename. It fails
// the test on error.
func Install(t testing.TB, path string, b []byte) {
	t.Helper()
	f, err := os.CreateTemp(filepath.Dir(path), ".locationtest-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		t.Fatal(err)
	}
}

// mmdb returns the record's data in the layout of MaxMind's City and
// Country databases.
func (r Record) mmdb() map[string]any {
	m := map[string]any{}
	if names := names(r.City, r.CityNames); names != nil {
		m["city"] = map[string]any{"names": names, "geoname_id": uint32(1)}
	}
	if names := names(r.Country, r.CountryNames); names != nil || r.CountryCode != "" {
		c := map[string]any{}
		if names != nil {
			c["names"] = names
		}
		if r.CountryCode != "" {
			c["iso_code"] = r.CountryCode
		}
		m["country"] = c
	}
	if r.Continent != "" || r.ContinentCode != "" {
		c := map[string]any{}
		if r.Continent != "" {
			c["names"] = map[string]any{"en": r.Continent}
		}
		if r.ContinentCode != "" {
			c["code"] = r.ContinentCode
		}
		m["continent"] = c
	}
	loc := map[string]any{}
	if r.TimeZone != "" {
		loc["time_zone"] = r.TimeZone
	}
	if r.HasCoordinates {
		loc["latitude"] = r.Latitude
		loc["longitude"] = r.Longitude
		loc["accuracy_radius"] = r.AccuracyRadius
	}
	if len(loc) > 0 {
		m["location"] = loc
	}
	return m
}

func names(en string, other map[string]string) map[string]any {
	if en == "" && len(other) == 0 {
		return nil
	}
	m := map[string]any{}
	if en != "" {
		m["en"] = en
	}
	for lang, n := range other {
		m[lang] = n
	}
	return m
}
