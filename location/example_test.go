package location_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/qsessions/qsessions/location"
	"github.com/qsessions/qsessions/location/locationtest"
)

func ExampleReader_Describe() {
	// A directory with a tiny city database; in production it holds the
	// files `qsessions geoip download` installs.
	dir, err := os.MkdirTemp("", "geoip")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	db, err := locationtest.Build(locationtest.Options{DatabaseType: "GeoLite2-City"},
		locationtest.Record{Network: "81.2.69.0/24", City: "London", Country: "United Kingdom", CountryCode: "GB"})
	if err != nil {
		panic(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "GeoLite2-City.mmdb"), db, 0o644); err != nil {
		panic(err)
	}

	r, err := location.Open(dir)
	if err != nil {
		panic(err)
	}
	defer r.Close()
	for _, ip := range []string{"81.2.69.142", "192.168.1.10", "8.8.8.8"} {
		fmt.Printf("%s\t%q\n", ip, r.Describe(netip.MustParseAddr(ip)))
	}
	// Output:
	// 81.2.69.142	"London, United Kingdom"
	// 192.168.1.10	""
	// 8.8.8.8	""
}
