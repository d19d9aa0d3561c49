package device_test

import (
	"fmt"

	"github.com/qsessions/qsessions/device"
)

// The forms of one User-Agent: Label for people, VersionLabel for admin
// lists, String and Short in django-qsessions' layout.
func ExampleInfo_forms() {
	ua := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	d := device.Parse(ua)
	fmt.Println(d.Label())        // for people: the pages, the CLI, alerts
	fmt.Println(d.VersionLabel()) // the admin list
	fmt.Println(d.String())       // django-qsessions' form
	fmt.Println(d.Short())        // the same without versions
	fmt.Println(d.Kind)
	// Output:
	// Chrome on Windows
	// Chrome 120 on Windows
	// Other / Windows 10 / Chrome 120.0.0.0
	// Other / Windows / Chrome
	// desktop
}

// The forms of the clients docs/devices-and-locations.md lists.
func ExampleInfo_table() {
	for _, ua := range []string{
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"curl/8.4.0",
		"",
	} {
		d := device.Parse(ua)
		fmt.Printf("| %s | %s | %s |\n", d.Label(), d.VersionLabel(), d.String())
	}
	// Output:
	// | Chrome on Mac | Chrome 120 on Mac | Other / macOS 10.15.7 / Chrome 120.0.0.0 |
	// | Firefox on Windows | Firefox 121 on Windows | Other / Windows 10 / Firefox 121.0 |
	// | Safari on iPhone | Safari 17 on iPhone | iPhone / iOS 17.2 / Mobile Safari 17.2 |
	// | Safari on iPad | Safari 17 on iPad | iPad / iOS 17.2 / Mobile Safari 17.2 |
	// | Chrome on Pixel 7 | Chrome 109 on Pixel 7 | Pixel 7 / Android 13 / Chrome Mobile 109.0.0.0 |
	// | Chrome on Android | Chrome 118 on Android | K / Android 10 / Chrome Mobile 118.0.0.0 |
	// | Samsung Internet on SM-S918B | Samsung Internet 23 on SM-S918B | SM-S918B / Android 14 / Samsung Browser 23.0 |
	// | Googlebot | Googlebot | Other / Other / Googlebot 2.1 |
	// | curl | curl | Other / Other / curl 8.4.0 |
	// | Unknown device | Unknown device | Other / Other / Other |
}
