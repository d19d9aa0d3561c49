package location_test

import (
	"fmt"
	"log"
	"net/netip"
	"time"

	"github.com/qsessions/qsessions/location"
)

// Opening the databases `qsessions geoip download` installs, with hot reload.
func ExampleOpen() {
	geo, err := location.Open("/var/lib/qsessions/geoip", location.WithWatch(time.Minute))
	if err != nil {
		log.Fatal(err) // location.ErrNoDatabase: no City or Country file there
	}
	defer geo.Close()

	ip := netip.MustParseAddr("81.2.69.142")
	fmt.Println(geo.Describe(ip)) // London, United Kingdom
	info, err := geo.Lookup(ip)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.City, info.CountryCode, info.TimeZone) // London GB Europe/London
}
