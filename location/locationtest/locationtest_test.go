package locationtest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"
)

// These tests read what Build writes with the readers package location
// uses (geoip2-golang/v2 over maxminddb-golang/v2), and run maxminddb's
// Verify, which checks the tree, the separator, every data record and the
// metadata more strictly than the specification.

var (
	london = Record{
		Network: "81.2.69.0/24", City: "London", Country: "United Kingdom", Continent: "Europe",
		CityNames: map[string]string{
			"de": "London", "es": "Londres", "fr": "Londres", "ja": "ロンドン",
			"pt-BR": "Londres", "ru": "Лондон", "zh-CN": "伦敦",
		},
		CountryNames:  map[string]string{"de": "Vereinigtes Königreich", "fr": "Royaume-Uni", "ja": "イギリス"},
		CountryCode:   "GB",
		ContinentCode: "EU",
		TimeZone:      "Europe/London",
		Latitude:      51.5142, Longitude: -0.0931, AccuracyRadius: 10, HasCoordinates: true,
	}
	sydney = Record{
		Network: "2400:cb00::/32", City: "Sydney", Country: "Australia", CountryCode: "AU",
		Continent: "Oceania", ContinentCode: "OC", TimeZone: "Australia/Sydney",
		Latitude: -33.8688, Longitude: 151.2093, AccuracyRadius: 1000, HasCoordinates: true,
	}
	nullIsland = Record{Network: "192.0.2.0/24", City: "Null Island", HasCoordinates: true}
	private    = Record{Network: "10.0.0.0/8", Country: "Intranet", CountryCode: "ZZ"}
)

// open builds a database, verifies it and opens it with both readers.
func open(t *testing.T, opts Options, recs ...Record) (*geoip2.Reader, *maxminddb.Reader) {
	t.Helper()
	b, err := Build(opts, recs...)
	if err != nil {
		t.Fatal(err)
	}
	return openBytes(t, b)
}

func openBytes(t *testing.T, b []byte) (*geoip2.Reader, *maxminddb.Reader) {
	t.Helper()
	mm, err := maxminddb.OpenBytes(b)
	if err != nil {
		t.Fatalf("maxminddb: %v", err)
	}
	t.Cleanup(func() { mm.Close() })
	if err := mm.Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	g, err := geoip2.OpenBytes(b)
	if err != nil {
		t.Fatalf("geoip2: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g, mm
}

func city(t *testing.T, g *geoip2.Reader, ip string) *geoip2.City {
	t.Helper()
	c, err := g.City(netip.MustParseAddr(ip))
	if err != nil {
		t.Fatalf("City(%s): %v", ip, err)
	}
	return c
}

func TestCityDatabase(t *testing.T) {
	g, _ := open(t, Options{DatabaseType: "GeoLite2-City"}, private, london, sydney, nullIsland)

	c := city(t, g, "81.2.69.142")
	names := c.City.Names
	for lang, got := range map[string]string{
		"en": names.English, "de": names.German, "es": names.Spanish, "fr": names.French,
		"ja": names.Japanese, "pt-BR": names.BrazilianPortuguese, "ru": names.Russian, "zh-CN": names.SimplifiedChinese,
	} {
		want := london.CityNames[lang]
		if lang == "en" {
			want = london.City
		}
		if got != want {
			t.Errorf("city name %s = %q, want %q", lang, got, want)
		}
	}
	if c.City.GeoNameID == 0 {
		t.Error("city has no geoname_id")
	}
	if c.Country.Names.English != london.Country || c.Country.Names.German != london.CountryNames["de"] ||
		c.Country.Names.Japanese != london.CountryNames["ja"] || c.Country.Names.Spanish != "" {
		t.Errorf("country names = %+v", c.Country.Names)
	}
	if c.Country.ISOCode != "GB" || c.Continent.Code != "EU" || c.Continent.Names.English != "Europe" {
		t.Errorf("codes: country %q, continent %q %q", c.Country.ISOCode, c.Continent.Code, c.Continent.Names.English)
	}
	loc := c.Location
	if loc.Latitude == nil || loc.Longitude == nil || *loc.Latitude != london.Latitude || *loc.Longitude != london.Longitude {
		t.Errorf("coordinates = %v, %v", loc.Latitude, loc.Longitude)
	}
	if loc.AccuracyRadius != london.AccuracyRadius || loc.TimeZone != london.TimeZone {
		t.Errorf("location = %+v", loc)
	}
	if c.Traits.Network != netip.MustParsePrefix(london.Network) {
		t.Errorf("network = %v, want %s", c.Traits.Network, london.Network)
	}

	// IPv6, negative coordinates.
	s := city(t, g, "2400:cb00:2048::1")
	if s.City.Names.English != "Sydney" || s.Country.ISOCode != "AU" || s.Location.Latitude == nil ||
		*s.Location.Latitude != sydney.Latitude || *s.Location.Longitude != sydney.Longitude ||
		s.Location.AccuracyRadius != 1000 || s.Location.TimeZone != "Australia/Sydney" {
		t.Errorf("Sydney = %+v", s)
	}

	// Coordinates 0, 0 are written when HasCoordinates; a record without
	// coordinates has none.
	if n := city(t, g, "192.0.2.7"); !n.Location.HasCoordinates() || *n.Location.Latitude != 0 {
		t.Errorf("Null Island location = %+v", n.Location)
	}
	p := city(t, g, "10.20.30.40")
	if p.Location.Latitude != nil || p.City.HasData() || p.Country.Names.English != "Intranet" {
		t.Errorf("private network = %+v", p)
	}

	// Misses, IPv4 and IPv6.
	for _, ip := range []string{"8.8.8.8", "81.2.70.1", "2a00:1450::1", "::1"} {
		if m := city(t, g, ip); m.HasData() {
			t.Errorf("%s found %+v", ip, m)
		}
	}
}

func TestCountryDatabaseAndMetadata(t *testing.T) {
	built := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC) // needs 5 bytes of uint64
	g, mm := open(t, Options{DatabaseType: "GeoLite2-Country", BuildTime: built},
		Record{Network: "81.2.69.0/24", Country: "United Kingdom", CountryNames: map[string]string{"fr": "Royaume-Uni"}, CountryCode: "GB"},
		Record{Network: "2a02:c7c::/32", Country: "United Kingdom", CountryCode: "GB"})
	for _, ip := range []string{"81.2.69.1", "2a02:c7c:1::1"} {
		c, err := g.Country(netip.MustParseAddr(ip))
		if err != nil {
			t.Fatal(err)
		}
		if c.Country.ISOCode != "GB" || c.Country.Names.English != "United Kingdom" {
			t.Errorf("Country(%s) = %+v", ip, c.Country)
		}
	}
	c, _ := g.Country(netip.MustParseAddr("81.2.69.1"))
	if c.Country.Names.French != "Royaume-Uni" {
		t.Errorf("French name = %q", c.Country.Names.French)
	}
	if _, err := g.ASN(netip.MustParseAddr("81.2.69.1")); err == nil {
		t.Error("geoip2 read a Country database as ASN: database type not written")
	}

	md := mm.Metadata
	if md.DatabaseType != "GeoLite2-Country" || md.IPVersion != 6 || md.RecordSize != 28 ||
		md.BinaryFormatMajorVersion != 2 || md.BinaryFormatMinorVersion != 0 {
		t.Errorf("metadata = %+v", md)
	}
	if !md.BuildTime().Equal(built) {
		t.Errorf("build time = %v, want %v", md.BuildTime(), built)
	}
	if !slices.Contains(md.Languages, "pt-BR") || !slices.Contains(md.Languages, "en") || md.Description["en"] == "" {
		t.Errorf("languages %v, description %v", md.Languages, md.Description)
	}

	_, def := open(t, Options{DatabaseType: "GeoLite2-Country"})
	if want := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC); !def.Metadata.BuildTime().Equal(want) {
		t.Errorf("default build time = %v, want %v", def.Metadata.BuildTime(), want)
	}
}

// TestIPv4InIPv6Tree checks where IPv4 networks live in an IPv6 database:
// at ::a.b.c.d, with the IPv4-mapped, Teredo and 6to4 aliases pointing at
// them, and the aliases hidden from a walk over the networks.
func TestIPv4InIPv6Tree(t *testing.T) {
	_, mm := open(t, Options{DatabaseType: "GeoLite2-City"}, london, sydney)
	for _, ip := range []string{
		"81.2.69.1",           // what readers get
		"::5102:4501",         // ::81.2.69.1, where the data is
		"::ffff:81.2.69.1",    // IPv4-mapped alias
		"2002:5102:4501::1",   // 6to4 alias
		"2001:0:5102:4501::1", // Teredo alias
		"::ffff:81.2.69.255",  // last address of the network
		"2002:5102:4500::",    // 6to4 of 81.2.69.0
	} {
		var rec struct {
			City struct {
				Names map[string]string `maxminddb:"names"`
			} `maxminddb:"city"`
		}
		res := mm.Lookup(netip.MustParseAddr(ip))
		if err := res.Decode(&rec); err != nil {
			t.Fatalf("%s: %v", ip, err)
		}
		if !res.Found() || rec.City.Names["en"] != "London" {
			t.Errorf("%s: found %v, %v", ip, res.Found(), rec.City.Names)
		}
	}
	if res := mm.Lookup(netip.MustParseAddr("::ffff:81.2.70.1")); res.Found() {
		t.Error("::ffff:81.2.70.1 found")
	}

	var nets []string
	for res := range mm.Networks() {
		if res.Err() != nil {
			t.Fatal(res.Err())
		}
		nets = append(nets, res.Prefix().String())
	}
	if want := []string{london.Network, sydney.Network}; !slices.Equal(nets, want) {
		t.Errorf("networks = %v, want %v", nets, want)
	}
	n := 0
	for range mm.Networks(maxminddb.IncludeAliasedNetworks()) {
		n++
	}
	if n != 5 { // ::/96 copy, three aliases, Sydney
		t.Errorf("%d networks with aliases, want 5", n)
	}
}

// TestWideNetworkKeepsAliases inserts networks that contain the aliases:
// they cover everything around them, and the aliases still lead to the
// IPv4 networks.
func TestWideNetworkKeepsAliases(t *testing.T) {
	g, _ := open(t, Options{DatabaseType: "GeoLite2-City"},
		Record{Network: "::/0", City: "everywhere"}, Record{Network: "2000::/3", City: "global"}, london)
	for ip, want := range map[string]string{
		"81.2.69.1":           "London",
		"::ffff:81.2.69.1":    "London",
		"2002:5102:4501::1":   "London",
		"2001:0:5102:4501::1": "London",
		"8.8.8.8":             "everywhere", // ::/0 covers ::/96 too
		"::ffff:8.8.8.8":      "everywhere",
		"2001:db8::1":         "global", // beside the Teredo alias
		"2003::1":             "global", // beside the 6to4 alias
		"2a00:1450::1":        "global",
		"fe80::1":             "everywhere",
	} {
		if got := city(t, g, ip).City.Names.English; got != want {
			t.Errorf("%s: %q, want %q", ip, got, want)
		}
	}
}

func TestIPv4OnlyDatabase(t *testing.T) {
	g, mm := open(t, Options{DatabaseType: "GeoLite2-City", IPVersion: 4}, private, london)
	if mm.Metadata.IPVersion != 4 {
		t.Fatalf("ip_version = %d", mm.Metadata.IPVersion)
	}
	if c := city(t, g, "81.2.69.200"); c.City.Names.English != "London" || c.Traits.Network.String() != london.Network {
		t.Errorf("London = %+v", c)
	}
	if c := city(t, g, "10.255.0.1"); c.Country.ISOCode != "ZZ" {
		t.Errorf("private = %+v", c.Country)
	}
	if c := city(t, g, "81.2.68.255"); c.HasData() {
		t.Errorf("miss found %+v", c)
	}
	// 32 bits deep at most: a /24 and a /8 need fewer than 33 nodes.
	if mm.Metadata.NodeCount > 33 {
		t.Errorf("node count %d for two IPv4 networks", mm.Metadata.NodeCount)
	}
	// The whole IPv4 space: the tree is its root alone, both halves
	// pointing at the data.
	g, mm = open(t, Options{DatabaseType: "GeoLite2-City", IPVersion: 4}, Record{Network: "0.0.0.0/0", City: "all"})
	for _, ip := range []string{"0.0.0.0", "127.0.0.1", "255.255.255.255"} {
		if c := city(t, g, ip); c.City.Names.English != "all" {
			t.Errorf("%s in 0.0.0.0/0: %+v", ip, c.City)
		}
	}
	if mm.Metadata.NodeCount != 1 {
		t.Errorf("node count %d for 0.0.0.0/0", mm.Metadata.NodeCount)
	}
	_, err := Build(Options{IPVersion: 4}, sydney)
	if err == nil || !strings.Contains(err.Error(), "IPv4-only") {
		t.Errorf("IPv6 network in an IPv4 database: %v", err)
	}
}

// TestManyNestedNetworks inserts hundreds of random, partly nested, IPv4 and
// IPv6 networks with every record size and checks every lookup against a
// model: the last record whose network holds the address wins.
func TestManyNestedNetworks(t *testing.T) {
	for _, ipv := range []int{4, 6} {
		for _, size := range []int{24, 28, 32} {
			t.Run(fmt.Sprintf("IPv%d/%d-bit", ipv, size), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(ipv), uint64(size)))
				pools := []netip.Prefix{
					netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("81.2.0.0/16"),
					netip.MustParsePrefix("0.0.0.0/0"),
				}
				if ipv == 6 {
					pools = append(pools, netip.MustParsePrefix("2a00::/12"), netip.MustParsePrefix("2400:cb00::/32"),
						netip.MustParsePrefix("2000::/3")) // holds the Teredo and 6to4 aliases
				}
				recs := []Record{{Network: "0.0.0.0/1", City: "wide"}}
				if ipv == 6 {
					recs = append(recs, Record{Network: "2000::/3", City: "global unicast"})
				}
				for i := range 400 {
					pool := pools[r.IntN(len(pools))]
					bits := pool.Bits() + r.IntN(pool.Addr().BitLen()-pool.Bits()+1)
					p, _ := randomIn(r, pool).Prefix(bits)
					if ipv == 6 && inAlias(p) {
						continue
					}
					recs = append(recs, Record{Network: p.String(), City: fmt.Sprintf("net-%d", i),
						HasCoordinates: i%3 == 0, Latitude: float64(i) / 7, Longitude: -float64(i) / 3, AccuracyRadius: uint16(i * 150)})
				}
				b, err := build(Options{DatabaseType: "GeoLite2-City", IPVersion: ipv}, size, recs)
				if err != nil {
					t.Fatal(err)
				}
				g, mm := openBytes(t, b)
				if mm.Metadata.RecordSize != uint(size) {
					t.Fatalf("record size %d", mm.Metadata.RecordSize)
				}

				var probes []netip.Addr
				for _, rec := range recs {
					p := netip.MustParsePrefix(rec.Network)
					probes = append(probes, p.Addr(), lastIn(p), randomIn(r, p))
				}
				for range 500 {
					probes = append(probes, randomIn(r, pools[r.IntN(len(pools))]))
				}
				hits := 0
				for _, ip := range probes {
					if ipv == 6 && inAlias(netip.PrefixFrom(ip, ip.BitLen())) {
						continue
					}
					c, err := g.City(ip)
					if err != nil {
						t.Fatalf("City(%s): %v", ip, err)
					}
					want := -1
					for i := len(recs) - 1; i >= 0; i-- {
						if netip.MustParsePrefix(recs[i].Network).Contains(ip) {
							want = i
							break
						}
					}
					if want < 0 {
						if c.HasData() {
							t.Errorf("%s: found %q, want a miss", ip, c.City.Names.English)
						}
						continue
					}
					hits++
					w := recs[want]
					if c.City.Names.English != w.City {
						t.Fatalf("%s: city %q, want %q (%s)", ip, c.City.Names.English, w.City, w.Network)
					}
					if w.HasCoordinates != c.Location.HasCoordinates() || w.HasCoordinates &&
						(*c.Location.Latitude != w.Latitude || *c.Location.Longitude != w.Longitude || c.Location.AccuracyRadius != w.AccuracyRadius) {
						t.Errorf("%s: location %+v, want %+v", ip, c.Location, w)
					}
					// The reported network holds the address and lies inside
					// the record's network (later records may cut it).
					wn := netip.MustParsePrefix(w.Network)
					if !c.Traits.Network.Contains(ip) || c.Traits.Network.Bits() < wn.Bits() || !wn.Contains(c.Traits.Network.Addr()) {
						t.Errorf("%s: network %s, record %s", ip, c.Traits.Network, wn)
					}
				}
				if hits < len(probes)/2 {
					t.Errorf("only %d of %d probes hit: the test checks little", hits, len(probes))
				}
			})
		}
	}
}

// TestLargeDatabase writes records after 16.8 MB of data, so their pointers
// needs more than 24 bits: 28- and 32-bit records hold it (the 28-bit
// layout shares a byte between the two records' top bits), 24-bit ones
// cannot and Build says so.
func TestLargeDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 16.8 MB")
	}
	// Readers decode at most 2 MiB per record, so the 16.8 MB are nine
	// records of 1.9 MB.
	recs := []Record{{Network: "3.0.0.0/8", City: "first"}}
	for k := range 9 {
		recs = append(recs, Record{Network: fmt.Sprintf("1.%d.0.0/16", k),
			CityNames: map[string]string{"xx": strings.Repeat(string(rune('a'+k)), 1_900_000)}})
	}
	recs = append(recs, Record{Network: "2.0.0.0/8", City: "after"})
	for _, size := range []int{28, 32} {
		b, err := build(Options{DatabaseType: "GeoLite2-City", IPVersion: 4}, size, recs)
		if err != nil {
			t.Fatal(err)
		}
		g, _ := openBytes(t, b)
		// 2.0.0.0/8 and 3.0.0.0/8 are the left and right records of one
		// node: one points past 2^24, the other to the start of the data.
		if got := city(t, g, "2.3.4.5").City.Names.English; got != "after" {
			t.Errorf("%d-bit: 2.3.4.5 = %q", size, got)
		}
		if got := city(t, g, "3.3.4.5").City.Names.English; got != "first" {
			t.Errorf("%d-bit: 3.3.4.5 = %q", size, got)
		}
	}
	if _, err := build(Options{DatabaseType: "GeoLite2-City", IPVersion: 4}, 24, recs); err == nil || !strings.Contains(err.Error(), "24-bit") {
		t.Errorf("24-bit records for 16.8 MB: %v", err)
	}
	// One string longer than the format's largest size (16,843,036 bytes).
	_, err := Build(Options{}, Record{Network: "1.0.0.0/8", City: strings.Repeat("x", 16_850_000)})
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("string of 16,850,000 bytes: %v", err)
	}
}

func TestLaterRecordReplaces(t *testing.T) {
	a := Record{Network: "10.0.0.0/8", City: "A"}
	b := Record{Network: "10.1.0.0/16", City: "B"}
	g, _ := open(t, Options{DatabaseType: "GeoLite2-City"}, a, b)
	if got := city(t, g, "10.1.2.3").City.Names.English; got != "B" {
		t.Errorf("nested network: %q", got)
	}
	if got := city(t, g, "10.2.0.1").City.Names.English; got != "A" {
		t.Errorf("outer network: %q", got)
	}
	g, _ = open(t, Options{DatabaseType: "GeoLite2-City"}, b, a)
	if got := city(t, g, "10.1.2.3").City.Names.English; got != "A" {
		t.Errorf("wide network inserted last: %q", got)
	}
}

func TestEqualNeighboursMerge(t *testing.T) {
	lo := Record{Network: "10.0.0.0/25", City: "Same"}
	hi := Record{Network: "10.0.0.128/25", City: "Same"}
	g, mm := open(t, Options{DatabaseType: "GeoLite2-City"}, lo, hi)
	if n := city(t, g, "10.0.0.200").Traits.Network.String(); n != "10.0.0.0/24" {
		t.Errorf("network = %s, want the merged /24", n)
	}
	n := 0
	for range mm.Networks() {
		n++
	}
	if n != 1 {
		t.Errorf("%d networks, want 1", n)
	}
	two, err := Build(Options{DatabaseType: "GeoLite2-City"}, lo, Record{Network: "192.168.0.0/16", City: "Same"})
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(two, []byte("Same")); n != 1 {
		t.Errorf("two networks with equal data: %d copies of the data, want 1", n)
	}
}

func TestEmptyDatabaseAndEmptyRecord(t *testing.T) {
	g, mm := open(t, Options{DatabaseType: "GeoLite2-ASN"})
	if res := mm.Lookup(netip.MustParseAddr("1.2.3.4")); res.Found() || res.Err() != nil {
		t.Errorf("empty database: found %v, err %v", res.Found(), res.Err())
	}
	if _, err := g.City(netip.MustParseAddr("1.2.3.4")); err == nil {
		t.Error("geoip2 read an ASN database as City")
	}
	_, mm = open(t, Options{DatabaseType: "GeoLite2-City"}, Record{Network: "1.2.3.0/24"})
	var v map[string]any
	res := mm.Lookup(netip.MustParseAddr("1.2.3.4"))
	if err := res.Decode(&v); err != nil || !res.Found() || len(v) != 0 {
		t.Errorf("record without data: found %v, %v, %v", res.Found(), v, err)
	}
}

// TestEncodingSizes round-trips strings, maps and integers across the
// boundaries where the format's size encoding changes (29, 285, 65821).
func TestEncodingSizes(t *testing.T) {
	lengths := []int{1, 28, 29, 30, 284, 285, 286, 65820, 65821, 65822, 100_000}
	radii := []uint16{0, 1, 255, 256, 65535}
	var recs []Record
	for i, n := range lengths {
		recs = append(recs, Record{
			Network:        fmt.Sprintf("10.0.%d.0/24", i),
			CityNames:      map[string]string{"xx": strings.Repeat("é", n/2) + strings.Repeat("a", n%2)},
			HasCoordinates: true, AccuracyRadius: radii[i%len(radii)],
		})
	}
	bigMap := map[string]string{}
	for i := range 300 {
		bigMap[fmt.Sprintf("l%03d", i)] = fmt.Sprint(i)
	}
	recs = append(recs, Record{Network: "10.1.0.0/16", CountryNames: bigMap})
	_, mm := open(t, Options{DatabaseType: "GeoLite2-City"}, recs...)
	type out struct {
		City struct {
			Names map[string]string `maxminddb:"names"`
		} `maxminddb:"city"`
		Country struct {
			Names map[string]string `maxminddb:"names"`
		} `maxminddb:"country"`
		Location struct {
			AccuracyRadius uint16 `maxminddb:"accuracy_radius"`
		} `maxminddb:"location"`
	}
	for i, rec := range recs[:len(lengths)] {
		var o out
		if err := mm.Lookup(netip.MustParseAddr(fmt.Sprintf("10.0.%d.1", i))).Decode(&o); err != nil {
			t.Fatalf("length %d: %v", lengths[i], err)
		}
		if o.City.Names["xx"] != rec.CityNames["xx"] {
			t.Errorf("string of %d bytes came back as %d bytes", len(rec.CityNames["xx"]), len(o.City.Names["xx"]))
		}
		if o.Location.AccuracyRadius != rec.AccuracyRadius {
			t.Errorf("uint16 %d came back as %d", rec.AccuracyRadius, o.Location.AccuracyRadius)
		}
	}
	var o out
	if err := mm.Lookup(netip.MustParseAddr("10.1.2.3")).Decode(&o); err != nil {
		t.Fatal(err)
	}
	if len(o.Country.Names) != len(bigMap) || o.Country.Names["l299"] != "299" {
		t.Errorf("map of %d entries came back with %d", len(bigMap), len(o.Country.Names))
	}
}

func TestReproducible(t *testing.T) {
	recs := []Record{london, sydney, private, nullIsland}
	first, err := Build(Options{DatabaseType: "GeoLite2-City"}, recs...)
	if err != nil {
		t.Fatal(err)
	}
	// The name maps are Go maps, iterated in random order each time.
	for range 20 {
		again, err := Build(Options{DatabaseType: "GeoLite2-City"}, recs...)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatal("two builds of the same records differ")
		}
	}
	later, err := Build(Options{DatabaseType: "GeoLite2-City", BuildTime: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}, recs...)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(first, later) {
		t.Error("BuildTime is not written")
	}
}

func TestBadInput(t *testing.T) {
	ok := Record{Network: "81.2.69.0/24", City: "London"}
	for _, tc := range []struct {
		name string
		opts Options
		recs []Record
		want string
	}{
		{"IP version 5", Options{IPVersion: 5}, []Record{ok}, "IPVersion must be 4 or 6"},
		{"address without length", Options{}, []Record{{Network: "81.2.69.1"}}, `network "81.2.69.1"`},
		{"empty network", Options{}, []Record{{}}, `network ""`},
		{"garbage network", Options{}, []Record{{Network: "not/a/net"}}, `network "not/a/net"`},
		{"length too long", Options{}, []Record{{Network: "81.2.69.0/33"}}, `network "81.2.69.0/33"`},
		{"IPv6 in IPv4-only", Options{IPVersion: 4}, []Record{{Network: "2a00::/16"}}, "IPv4-only"},
		{"inside the 6to4 alias", Options{}, []Record{{Network: "2002:5102::/32"}}, "2002::/16"},
		{"inside the Teredo alias", Options{}, []Record{{Network: "2001:0:1::/48"}}, "2001::/32"},
		{"invalid UTF-8", Options{}, []Record{{Network: "1.0.0.0/8", City: "Lond\xffon"}}, "UTF-8"},
		{"NaN latitude", Options{}, []Record{{Network: "1.0.0.0/8", HasCoordinates: true, Latitude: nanValue()}}, "latitude"},
		{"build time before 1970", Options{BuildTime: time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)}, nil, "before 1970"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Build(tc.opts, tc.recs...)
			if err == nil {
				t.Fatalf("no error, %d bytes", len(b))
			}
			if !strings.HasPrefix(err.Error(), "locationtest: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
	// An IPv4 network written IPv4-mapped is the IPv4 network.
	g, _ := open(t, Options{DatabaseType: "GeoLite2-City"}, Record{Network: "::ffff:81.2.69.0/120", City: "London"})
	if c := city(t, g, "81.2.69.1"); c.City.Names.English != "London" || c.Traits.Network.String() != "81.2.69.0/24" {
		t.Errorf("IPv4-mapped network: %+v", c)
	}
}

func TestWriteFileInstalls(t *testing.T) {
	path := filepath.Join(t.TempDir(), "GeoLite2-City.mmdb")
	WriteFile(t, path, Options{DatabaseType: "GeoLite2-City"}, london)
	g, err := geoip2.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if c := city(t, g, "81.2.69.1"); c.City.Names.English != "London" {
		t.Errorf("written file: %+v", c.City)
	}
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".locationtest-*"))
	if len(matches) != 0 {
		t.Errorf("temporary files left: %v", matches)
	}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

// randomIn returns a random address of p.
func randomIn(r *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		if r.IntN(2) == 1 {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// lastIn returns the last address of p.
func lastIn(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func inAlias(p netip.Prefix) bool {
	for _, a := range aliases {
		if a.Overlaps(p) && a.Bits() <= p.Bits() {
			return true
		}
	}
	return false
}

// BenchmarkBuild measures Build for a thousand IPv4 /24 networks in an
// IPv6 database, the claim in Build's documentation.
func BenchmarkBuild(b *testing.B) {
	recs := make([]Record, 1000)
	for i := range recs {
		recs[i] = Record{Network: fmt.Sprintf("10.%d.%d.0/24", i/256, i%256), City: fmt.Sprint("city-", i), CountryCode: "GB"}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(Options{DatabaseType: "GeoLite2-City"}, recs...); err != nil {
			b.Fatal(err)
		}
	}
}
