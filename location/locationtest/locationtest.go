// Package locationtest builds small GeoIP2-format databases (.mmdb files)
// for tests, so tests of code that uses package location need neither
// MaxMind's files nor network access. It uses github.com/maxmind/mmdbwriter
// and is meant to be imported from _test.go files only.
package locationtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
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

// Build returns the bytes of a database holding recs. Reserved networks
// (private, loopback) are allowed, so tests can check that lookups skip
// them. Cost: a few milliseconds for a handful of records.
func Build(opts Options, recs ...Record) ([]byte, error) {
	if opts.IPVersion == 0 {
		opts.IPVersion = 6
	}
	if opts.BuildTime.IsZero() {
		opts.BuildTime = time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	}
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            opts.DatabaseType,
		IPVersion:               opts.IPVersion,
		RecordSize:              28,
		IncludeReservedNetworks: true,
		BuildEpoch:              opts.BuildTime.Unix(),
		Languages:               []string{"en", "de", "fr"},
		Description:             map[string]string{"en": "qsessions test database"},
	})
	if err != nil {
		return nil, fmt.Errorf("locationtest: new tree: %w", err)
	}
	for _, r := range recs {
		_, network, err := net.ParseCIDR(r.Network)
		if err != nil {
			return nil, fmt.Errorf("locationtest: record network: %w", err)
		}
		if err := tree.Insert(network, r.mmdb()); err != nil {
			return nil, fmt.Errorf("locationtest: insert %s: %w", r.Network, err)
		}
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("locationtest: write tree: %w", err)
	}
	return buf.Bytes(), nil
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

func (r Record) mmdb() mmdbtype.Map {
	m := mmdbtype.Map{}
	if names := names(r.City, r.CityNames); names != nil {
		m["city"] = mmdbtype.Map{"names": names, "geoname_id": mmdbtype.Uint32(1)}
	}
	if names := names(r.Country, r.CountryNames); names != nil || r.CountryCode != "" {
		c := mmdbtype.Map{}
		if names != nil {
			c["names"] = names
		}
		if r.CountryCode != "" {
			c["iso_code"] = mmdbtype.String(r.CountryCode)
		}
		m["country"] = c
	}
	if r.Continent != "" || r.ContinentCode != "" {
		c := mmdbtype.Map{}
		if r.Continent != "" {
			c["names"] = mmdbtype.Map{"en": mmdbtype.String(r.Continent)}
		}
		if r.ContinentCode != "" {
			c["code"] = mmdbtype.String(r.ContinentCode)
		}
		m["continent"] = c
	}
	loc := mmdbtype.Map{}
	if r.TimeZone != "" {
		loc["time_zone"] = mmdbtype.String(r.TimeZone)
	}
	if r.HasCoordinates {
		loc["latitude"] = mmdbtype.Float64(r.Latitude)
		loc["longitude"] = mmdbtype.Float64(r.Longitude)
		loc["accuracy_radius"] = mmdbtype.Uint16(r.AccuracyRadius)
	}
	if len(loc) > 0 {
		m["location"] = loc
	}
	return m
}

func names(en string, other map[string]string) mmdbtype.Map {
	if en == "" && len(other) == 0 {
		return nil
	}
	m := mmdbtype.Map{}
	if en != "" {
		m["en"] = mmdbtype.String(en)
	}
	for lang, n := range other {
		m[mmdbtype.String(lang)] = mmdbtype.String(n)
	}
	return m
}
