package location

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qsessions/qsessions/location/locationtest"
)

var (
	london = locationtest.Record{
		Network: "81.2.69.0/24", City: "London", Country: "United Kingdom", CountryCode: "GB",
		Continent: "Europe", ContinentCode: "EU", TimeZone: "Europe/London",
		Latitude: 51.5142, Longitude: -0.0931, AccuracyRadius: 10, HasCoordinates: true,
		CityNames: map[string]string{"fr": "Londres"}, CountryNames: map[string]string{"de": "Vereinigtes Königreich"},
	}
	tokyo = locationtest.Record{
		Network: "2001:218::/32", City: "Tokyo", Country: "Japan", CountryCode: "JP",
		Continent: "Asia", ContinentCode: "AS", TimeZone: "Asia/Tokyo",
		Latitude: 35.6893, Longitude: 139.6899, AccuracyRadius: 100, HasCoordinates: true,
	}
	// A city database record that knows the country only.
	sweden = locationtest.Record{
		Network: "89.160.20.0/24", Country: "Sweden", CountryCode: "SE", Continent: "Europe", ContinentCode: "EU",
		TimeZone: "Europe/Stockholm",
	}
	// Present in the databases, but private: Lookup must not report it.
	private = locationtest.Record{Network: "10.0.0.0/8", City: "Intranet", Country: "Nowhere", CountryCode: "ZZ"}

	cityRecords    = []locationtest.Record{london, tokyo, sweden, private}
	countryRecords = []locationtest.Record{
		{Network: "81.2.69.0/24", Country: "United Kingdom", CountryCode: "GB", Continent: "Europe", ContinentCode: "EU"},
		{Network: "175.16.199.0/24", Country: "China", CountryCode: "CN", Continent: "Asia", ContinentCode: "AS"},
		{Network: "2001:480::/32", Country: "United States", CountryCode: "US", Continent: "North America", ContinentCode: "NA"},
		{Network: "100.64.0.0/10", Country: "Shared", CountryCode: "ZZ"},
		{Network: "::1/128", Country: "Loopback", CountryCode: "ZZ"},
	}
)

func cityOpts() locationtest.Options { return locationtest.Options{DatabaseType: "GeoLite2-City"} }
func countryOpts() locationtest.Options {
	return locationtest.Options{DatabaseType: "GeoLite2-Country"}
}

// testDir returns a directory with a GeoLite2 City and Country database.
func testDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	locationtest.WriteFile(t, filepath.Join(dir, "GeoLite2-City.mmdb"), cityOpts(), cityRecords...)
	locationtest.WriteFile(t, filepath.Join(dir, "GeoLite2-Country.mmdb"), countryOpts(), countryRecords...)
	return dir
}

func open(t testing.TB, dir string, opts ...Option) *Reader {
	t.Helper()
	r, err := Open(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func lookup(t *testing.T, r *Reader, ip string) Info {
	t.Helper()
	info, err := r.LookupString(ip)
	if err != nil {
		t.Fatalf("Lookup(%s): %v", ip, err)
	}
	return info
}

func TestLookupCityAndCountry(t *testing.T) {
	r := open(t, testDir(t))

	got := lookup(t, r, "81.2.69.142")
	want := Info{
		City: "London", Country: "United Kingdom", CountryCode: "GB", Continent: "Europe", ContinentCode: "EU",
		TimeZone: "Europe/London", Latitude: 51.5142, Longitude: -0.0931, HasCoordinates: true, AccuracyRadius: 10,
	}
	if got != want {
		t.Fatalf("London:\n got %+v\nwant %+v", got, want)
	}

	got = lookup(t, r, "2001:218:1::1")
	if got.City != "Tokyo" || got.CountryCode != "JP" || got.ContinentCode != "AS" || got.TimeZone != "Asia/Tokyo" || !got.HasCoordinates {
		t.Fatalf("Tokyo (IPv6, city database): %+v", got)
	}

	// Not in the city database: the country database answers.
	got = lookup(t, r, "175.16.199.7")
	if want := (Info{Country: "China", CountryCode: "CN", Continent: "Asia", ContinentCode: "AS"}); got != want {
		t.Fatalf("country fallback (IPv4): got %+v, want %+v", got, want)
	}
	got = lookup(t, r, "2001:480::7")
	if want := (Info{Country: "United States", CountryCode: "US", Continent: "North America", ContinentCode: "NA"}); got != want {
		t.Fatalf("country fallback (IPv6): got %+v, want %+v", got, want)
	}

	// A city record without a city.
	if got = lookup(t, r, "89.160.20.1"); got.City != "" || got.Country != "Sweden" || got.TimeZone != "Europe/Stockholm" {
		t.Fatalf("Sweden: %+v", got)
	}
}

func TestLookupNormalisesAddress(t *testing.T) {
	r := open(t, testDir(t))
	for _, ip := range []string{"::ffff:81.2.69.142", " 81.2.69.142\n"} {
		if got := lookup(t, r, ip); got.City != "London" {
			t.Errorf("Lookup(%q) = %+v, want London", ip, got)
		}
	}
	zoned := netip.MustParseAddr("2001:218::1%eth0")
	if got, err := r.Lookup(zoned); err != nil || got.City != "Tokyo" {
		t.Errorf("Lookup(%s) = %+v, %v", zoned, got, err)
	}
}

func TestLookupEmptyForPrivateAndUnknown(t *testing.T) {
	r := open(t, testDir(t))
	for _, ip := range []string{
		"10.1.2.3", // in both databases, but private
		"192.168.1.1", "172.16.0.1", "127.0.0.1", "::1", "fe80::1%eth0", "fd00::1",
		"100.64.1.1", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "169.254.1.1",
		"8.8.8.8", "2606:4700::1111", // public, but in neither database
	} {
		got, err := r.LookupString(ip)
		if err != nil || !got.IsZero() {
			t.Errorf("Lookup(%s) = %+v, %v; want zero Info, nil", ip, got, err)
		}
		if d := r.Describe(netip.MustParseAddr(ip)); d != "" {
			t.Errorf("Describe(%s) = %q, want empty", ip, d)
		}
	}
	if got, err := r.Lookup(netip.Addr{}); err != nil || !got.IsZero() {
		t.Errorf("Lookup(zero Addr) = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "not-an-ip", "81.2.69.142:443", "[::1]", strings.Repeat("1", 500)} {
		_, err := r.LookupString(bad)
		if err == nil {
			t.Errorf("LookupString(%.20q) did not fail", bad)
		} else if len(err.Error()) > 120 {
			t.Errorf("error too long: %s", err)
		}
	}
}

func TestDescribe(t *testing.T) {
	r := open(t, testDir(t))
	for ip, want := range map[string]string{
		"81.2.69.142":   "London, United Kingdom",
		"2001:218::1":   "Tokyo, Japan",
		"175.16.199.1":  "China",
		"89.160.20.128": "Sweden",
		"8.8.8.8":       "",
		"127.0.0.1":     "",
	} {
		if got := r.Describe(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Describe(%s) = %q, want %q", ip, got, want)
		}
	}
	if got := Describe(nil, netip.MustParseAddr("81.2.69.142")); got != "" {
		t.Errorf("Describe(nil Locator) = %q", got)
	}
	var l Locator = r // *Reader is a Locator
	if got := Describe(l, netip.MustParseAddr("81.2.69.142")); got != "London, United Kingdom" {
		t.Errorf("Describe(Locator) = %q", got)
	}
	if got := (Info{City: "Springfield"}).String(); got != "Springfield" {
		t.Errorf("city-only String() = %q", got)
	}
}

func TestCountryOnlyAndCityOnly(t *testing.T) {
	dir := t.TempDir()
	locationtest.WriteFile(t, filepath.Join(dir, "GeoLite2-Country.mmdb"), countryOpts(), countryRecords...)
	r := open(t, dir)
	if got := lookup(t, r, "81.2.69.142"); got.City != "" || got.Country != "United Kingdom" || got.HasCoordinates {
		t.Fatalf("country-only directory: %+v", got)
	}
	if dbs := r.Databases(); len(dbs) != 1 || dbs[0].Type != "GeoLite2-Country" {
		t.Fatalf("Databases() = %+v", dbs)
	}

	dir = t.TempDir()
	locationtest.WriteFile(t, filepath.Join(dir, "GeoLite2-City.mmdb"), cityOpts(), cityRecords...)
	r = open(t, dir)
	if got := r.Describe(netip.MustParseAddr("81.2.69.142")); got != "London, United Kingdom" {
		t.Fatalf("city-only directory: %q", got)
	}
	if got := lookup(t, r, "175.16.199.1"); !got.IsZero() {
		t.Fatalf("city-only directory, address not in it: %+v", got)
	}
}

func TestPrefersGeoIP2Files(t *testing.T) {
	dir := testDir(t)
	paid := london
	paid.City = "City of London"
	locationtest.WriteFile(t, filepath.Join(dir, "GeoIP2-City.mmdb"), locationtest.Options{DatabaseType: "GeoIP2-City"}, paid)
	r := open(t, dir)
	if got := lookup(t, r, "81.2.69.142"); got.City != "City of London" {
		t.Fatalf("GeoIP2-City.mmdb not preferred: %+v", got)
	}
	dbs := r.Databases()
	if len(dbs) != 2 || filepath.Base(dbs[0].Path) != "GeoIP2-City.mmdb" || dbs[0].Type != "GeoIP2-City" ||
		!dbs[0].BuildTime.Equal(time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)) || dbs[0].IPVersion != 6 {
		t.Fatalf("Databases() = %+v", dbs)
	}
}

func TestIPv4OnlyDatabase(t *testing.T) {
	dir := t.TempDir()
	v4 := []locationtest.Record{london}
	locationtest.WriteFile(t, filepath.Join(dir, "GeoLite2-City.mmdb"), locationtest.Options{DatabaseType: "GeoLite2-City", IPVersion: 4}, v4...)
	r := open(t, dir)
	if got := lookup(t, r, "81.2.69.142"); got.City != "London" {
		t.Fatalf("IPv4 lookup: %+v", got)
	}
	if got, err := r.LookupString("2001:218::1"); err != nil || !got.IsZero() {
		t.Fatalf("IPv6 lookup in IPv4-only database = %+v, %v; want zero, nil", got, err)
	}
}

func TestLanguage(t *testing.T) {
	dir := testDir(t)
	r := open(t, dir, WithLanguage("fr"))
	if got := r.Describe(netip.MustParseAddr("81.2.69.142")); got != "Londres, United Kingdom" {
		t.Errorf("fr: %q (country falls back to English)", got)
	}
	r = open(t, dir, WithLanguage("de"))
	if got := r.Describe(netip.MustParseAddr("81.2.69.142")); got != "London, Vereinigtes Königreich" {
		t.Errorf("de: %q", got)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing directory: %v", err)
	}
	empty := t.TempDir()
	if _, err := Open(empty); !errors.Is(err, ErrNoDatabase) || !strings.Contains(err.Error(), empty) {
		t.Errorf("empty directory: %v", err)
	}
	r, err := Open(empty, AllowEmpty())
	if err != nil {
		t.Fatalf("AllowEmpty: %v", err)
	}
	if got, err := r.LookupString("81.2.69.142"); err != nil || !got.IsZero() {
		t.Errorf("lookup without databases = %+v, %v", got, err)
	}
	r.Close()

	corrupt := t.TempDir()
	if err := os.WriteFile(filepath.Join(corrupt, "GeoLite2-City.mmdb"), []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(corrupt); err == nil || !strings.Contains(err.Error(), "GeoLite2-City.mmdb") {
		t.Errorf("corrupt file: %v", err)
	}

	wrongType := t.TempDir()
	locationtest.WriteFile(t, filepath.Join(wrongType, "GeoLite2-Country.mmdb"), locationtest.Options{DatabaseType: "GeoLite2-ASN"})
	if _, err := Open(wrongType); err == nil || !strings.Contains(err.Error(), "GeoLite2-ASN") {
		t.Errorf("ASN database under a country name: %v", err)
	}
}

func TestInfoJSON(t *testing.T) {
	r := open(t, testDir(t))
	b, err := json.Marshal(lookup(t, r, "175.16.199.1"))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"country":"China","country_code":"CN","continent":"Asia","continent_code":"AS","latitude":0,"longitude":0,"has_coordinates":false}`
	if string(b) != want {
		t.Fatalf("JSON = %s\nwant   %s", b, want)
	}
}

// gen writes generation k of a city and a country database: in both, the
// names carry k, and 81.2.69.0/24 has a city record without a country, so a
// lookup of it reads both files and must see the same k in both names.
func gen(t testing.TB, dir string, k int) {
	t.Helper()
	locationtest.WriteFile(t, filepath.Join(dir, "GeoLite2-City.mmdb"), cityOpts(),
		locationtest.Record{Network: "81.2.69.0/24", City: fmt.Sprintf("City-%d", k)})
	locationtest.WriteFile(t, filepath.Join(dir, "GeoLite2-Country.mmdb"), countryOpts(),
		locationtest.Record{Network: "81.2.69.0/24", Country: fmt.Sprintf("Country-%d", k), CountryCode: "GB"})
}

// genBytes returns the two files of generation k, for installing by rename.
func genBytes(t testing.TB, k int) (city, country []byte) {
	t.Helper()
	var err error
	city, err = locationtest.Build(cityOpts(), locationtest.Record{Network: "81.2.69.0/24", City: fmt.Sprintf("City-%d", k)})
	if err != nil {
		t.Fatal(err)
	}
	country, err = locationtest.Build(countryOpts(), locationtest.Record{Network: "81.2.69.0/24", Country: fmt.Sprintf("Country-%d", k), CountryCode: "GB"})
	if err != nil {
		t.Fatal(err)
	}
	return city, country
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	gen(t, dir, 1)
	r := open(t, dir)
	ip := netip.MustParseAddr("81.2.69.1")
	if got := r.Describe(ip); got != "City-1, Country-1" {
		t.Fatalf("before reload: %q", got)
	}

	gen(t, dir, 2)
	if got := r.Describe(ip); got != "City-1, Country-1" {
		t.Fatalf("files replaced, no reload yet: %q (the old mapping must stay in use)", got)
	}
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := r.Describe(ip); got != "City-2, Country-2" {
		t.Fatalf("after reload: %q", got)
	}

	// A failed reload keeps the databases in use.
	locationtest.Install(t, filepath.Join(dir, "GeoLite2-Country.mmdb"), []byte("garbage"))
	if err := r.Reload(); err == nil || !strings.Contains(err.Error(), "GeoLite2-Country.mmdb") {
		t.Fatalf("reload of a corrupt file: %v", err)
	}
	if got := r.Describe(ip); got != "City-2, Country-2" {
		t.Fatalf("after failed reload: %q", got)
	}
	// So does a reload that finds nothing.
	os.Remove(filepath.Join(dir, "GeoLite2-Country.mmdb"))
	os.Remove(filepath.Join(dir, "GeoLite2-City.mmdb"))
	if err := r.Reload(); !errors.Is(err, ErrNoDatabase) {
		t.Fatalf("reload of an empty directory: %v", err)
	}
	if got := r.Describe(ip); got != "City-2, Country-2" {
		t.Fatalf("after reload of an empty directory: %q", got)
	}
}

// TestReloadClosesOldFilesAfterLastLookup checks the reference counting: a
// generation swapped out while a lookup holds it stays open until that
// lookup releases it, and is closed then.
func TestReloadClosesOldFilesAfterLastLookup(t *testing.T) {
	dir := t.TempDir()
	gen(t, dir, 1)
	r := open(t, dir)
	ip := netip.MustParseAddr("81.2.69.1")

	held, err := r.acquire() // a lookup in flight
	if err != nil {
		t.Fatal(err)
	}
	gen(t, dir, 2)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := held.refs.Load(); n != 1 {
		t.Fatalf("old generation refs = %d, want 1 (the lookup in flight)", n)
	}
	info, err := held.lookup(ip, "")
	if err != nil || info.City != "City-1" {
		t.Fatalf("lookup on the swapped-out generation = %+v, %v; want City-1", info, err)
	}
	held.release()
	if n := held.refs.Load(); n != 0 {
		t.Fatalf("old generation refs = %d after the last release, want 0", n)
	}
	if _, err := held.city.r.City(ip); err == nil {
		t.Fatal("old city database still open after its last lookup released it")
	}
	if _, err := held.country.r.Country(ip); err == nil {
		t.Fatal("old country database still open after its last lookup released it")
	}
	if got := r.Describe(ip); got != "City-2, Country-2" {
		t.Fatalf("current generation: %q", got)
	}
}

// TestReloadUnderConcurrentLookups runs lookups on many goroutines while
// the files are replaced and reloaded; run it with -race. No lookup may fail
// or combine a city from one generation with a country from another.
func TestReloadUnderConcurrentLookups(t *testing.T) {
	const gens = 40
	dir := t.TempDir()
	files := make([][2][]byte, gens)
	for k := range files {
		files[k][0], files[k][1] = genBytes(t, k)
	}
	gen(t, dir, 0)
	r := open(t, dir)
	ip := netip.MustParseAddr("81.2.69.1")

	var (
		stop    atomic.Bool
		lookups atomic.Int64
		wg      sync.WaitGroup
		errs    = make(chan error, 16)
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				info, err := r.Lookup(ip)
				if err != nil {
					errs <- fmt.Errorf("lookup failed during reload: %w", err)
					return
				}
				var c, k int
				if _, err := fmt.Sscanf(info.City, "City-%d", &c); err != nil {
					errs <- fmt.Errorf("half-loaded result %+v", info)
					return
				}
				if _, err := fmt.Sscanf(info.Country, "Country-%d", &k); err != nil || k != c {
					errs <- fmt.Errorf("mixed generations: %+v", info)
					return
				}
				lookups.Add(1)
			}
		}()
	}
	for k := 1; k < gens; k++ {
		locationtest.Install(t, filepath.Join(dir, "GeoLite2-City.mmdb"), files[k][0])
		locationtest.Install(t, filepath.Join(dir, "GeoLite2-Country.mmdb"), files[k][1])
		if err := r.Reload(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := lookups.Load(); n < gens {
		t.Fatalf("only %d lookups ran", n)
	}
	if got := r.Describe(ip); got != fmt.Sprintf("City-%d, Country-%d", gens-1, gens-1) {
		t.Fatalf("final: %q", got)
	}
}

func TestWatch(t *testing.T) {
	dir := t.TempDir()
	gen(t, dir, 1)
	reloads := make(chan error, 16)
	r := open(t, dir, WithWatch(10*time.Millisecond), WithReloadHook(func(err error) { reloads <- err }))
	ip := netip.MustParseAddr("81.2.69.1")
	next := func() error {
		t.Helper()
		select {
		case err := <-reloads:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("the watcher did not reload")
			return nil
		}
	}

	gen(t, dir, 2)
	if err := next(); err != nil {
		t.Fatal(err)
	}
	// Renaming two files is two changes; the watcher may see them as one or
	// two reloads.
	deadline := time.Now().Add(5 * time.Second)
	for r.Describe(ip) != "City-2, Country-2" {
		if time.Now().After(deadline) {
			t.Fatalf("after watch reload: %q", r.Describe(ip))
		}
		time.Sleep(5 * time.Millisecond)
	}
	drain(reloads)

	// A corrupt file: one failed reload, the old data stays, and no retry
	// until the files change again.
	locationtest.Install(t, filepath.Join(dir, "GeoLite2-City.mmdb"), []byte("garbage"))
	for {
		// Skip a success report of the previous step still on its way.
		if err := next(); err != nil {
			if !strings.Contains(err.Error(), "GeoLite2-City.mmdb") {
				t.Fatalf("reload error does not name the file: %v", err)
			}
			break
		}
	}
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-reloads:
		t.Fatalf("watcher retried an unchanged failed file: %v", err)
	default:
	}
	if got := r.Describe(ip); got != "City-2, Country-2" {
		t.Fatalf("after failed watch reload: %q", got)
	}

	gen(t, dir, 3)
	deadline = time.Now().Add(5 * time.Second)
	for r.Describe(ip) != "City-3, Country-3" {
		if time.Now().After(deadline) {
			t.Fatalf("after recovery: %q", r.Describe(ip))
		}
		time.Sleep(5 * time.Millisecond)
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	drain(reloads)
	gen(t, dir, 4)
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-reloads:
		t.Fatalf("watcher ran after Close: %v", err)
	default:
	}
}

func drain(c chan error) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

func TestClose(t *testing.T) {
	r, err := Open(testDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := r.LookupString("81.2.69.142"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Lookup after Close: %v", err)
	}
	if err := r.Reload(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Reload after Close: %v", err)
	}
	if r.Databases() != nil {
		t.Fatal("Databases after Close")
	}
}

func FuzzLookup(f *testing.F) {
	dir := testDir(f)
	r, err := Open(dir)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { r.Close() })
	for _, s := range []string{"81.2.69.142", "2001:218::1", "::ffff:81.2.69.1", "10.0.0.1", "fe80::1%eth0", "", "1.2.3", "::ffff:1.2.3.4%x", "175.16.199.255"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		info, err := r.LookupString(s)
		ip, perr := ParseIP(s)
		if perr != nil {
			if err == nil {
				t.Fatalf("LookupString(%q) accepted what ParseIP rejects", s)
			}
			return
		}
		if err != nil {
			t.Fatalf("LookupString(%q): %v", s, err)
		}
		if !Routable(ip) && !info.IsZero() {
			t.Fatalf("non-routable %s gave %+v", ip, info)
		}
		if again, _ := r.Lookup(ip); again != info {
			t.Fatalf("Lookup(%s) not deterministic: %+v then %+v", ip, info, again)
		}
		if info.City != "" && info.Country == "" {
			t.Fatalf("city without country: %+v", info)
		}
	})
}

func BenchmarkLookup(b *testing.B) {
	r := open(b, testDir(b))
	ip := netip.MustParseAddr("81.2.69.142")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Lookup(ip); err != nil {
				b.Fatal(err)
			}
		}
	})
}
