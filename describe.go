package qsessions

import (
	"net/netip"

	"github.com/qsessions/qsessions/device"
	"github.com/qsessions/qsessions/location"
)

// Device parses the session's user agent (device, OS, browser). Cost: one
// parse, about 2 µs.
func (i Info) Device() device.Info { return device.Parse(i.UserAgent) }

// Location describes where the session's IP is ("City, Country",
// "Country" or "") with l, which the app opened (location.Open); a nil l
// gives "".
func (i Info) Location(l location.Locator) string {
	ip, err := netip.ParseAddr(i.IP)
	if err != nil {
		return ""
	}
	return location.Describe(l, ip)
}

// LocationInfo looks the session's IP up with l. Private and unknown
// addresses give an empty Info, not an error.
func (i Info) LocationInfo(l location.Locator) (location.Info, error) {
	ip, err := netip.ParseAddr(i.IP)
	if err != nil || l == nil {
		return location.Info{}, nil
	}
	return l.Lookup(ip)
}

// Locate looks up each distinct IP of list once with l and returns the
// results by IP, so a page of 100 sessions from three addresses costs three
// lookups. Failed lookups are left out.
func Locate(l location.Locator, list []Info) map[string]location.Info {
	out := make(map[string]location.Info)
	if l == nil {
		return out
	}
	for _, in := range list {
		if _, done := out[in.IP]; done {
			continue
		}
		if li, err := in.LocationInfo(l); err == nil {
			out[in.IP] = li
		}
	}
	return out
}
