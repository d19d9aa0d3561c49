package qsessions_test

import (
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/qsessions/qsessions"
	"github.com/qsessions/qsessions/location"
	"github.com/qsessions/qsessions/location/locationtest"
)

// countingLocator counts lookups into a real GeoIP2 reader.
type countingLocator struct {
	r     *location.Reader
	calls atomic.Int32
}

func (c *countingLocator) Lookup(ip netip.Addr) (location.Info, error) {
	c.calls.Add(1)
	return c.r.Lookup(ip)
}

// newLocator opens a City database, built for the test, that places
// 203.0.113.0/24 and 198.51.100.0/24 in Tehran.
func newLocator(t *testing.T) *countingLocator {
	dir := t.TempDir()
	rec := func(n string) locationtest.Record {
		return locationtest.Record{Network: n, City: "Tehran", Country: "Iran", CountryCode: "IR", Continent: "Asia", ContinentCode: "AS"}
	}
	locationtest.WriteFile(t, filepath.Join(dir, "GeoLite2-City.mmdb"), locationtest.Options{DatabaseType: "GeoLite2-City"},
		rec("203.0.113.0/24"), rec("198.51.100.0/24"))
	r, err := location.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &countingLocator{r: r}
}

func TestDeviceAndLocation(t *testing.T) {
	in := qsessions.Info{IP: "203.0.113.9",
		UserAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36"}
	if got := in.Device().String(); got != "Other / macOS 10.13.6 / Chrome 70.0.3538.102" {
		t.Fatalf("Device = %q", got)
	}
	l := newLocator(t)
	if got := in.Location(l); got != "Tehran, Iran" {
		t.Fatalf("Location = %q", got)
	}
	if got := (qsessions.Info{IP: "10.0.0.1"}).Location(l); got != "" {
		t.Fatalf("private address located as %q", got)
	}
	if got := in.Location(nil); got != "" {
		t.Fatalf("nil locator gave %q", got)
	}
	// A page of 100 sessions from 3 addresses: 3 lookups.
	var page []qsessions.Info
	for i := range 100 {
		page = append(page, qsessions.Info{IP: []string{"203.0.113.1", "203.0.113.2", "198.51.100.7"}[i%3]})
	}
	l.calls.Store(0)
	got := qsessions.Locate(l, page)
	if n := l.calls.Load(); n != 3 || len(got) != 3 || got["198.51.100.7"].City != "Tehran" {
		t.Fatalf("Locate made %d lookups, got %v", n, got)
	}
}
