package device_test

import (
	"fmt"

	"github.com/qsessions/qsessions/device"
)

func ExampleParse() {
	d := device.Parse("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36")
	fmt.Println(d)
	fmt.Println(d.Short())
	fmt.Println(d.Kind)
	// Output:
	// Other / macOS 10.13.6 / Chrome 70.0.3538.102
	// Other / macOS / Chrome
	// desktop
}

func ExampleInfo_Label() {
	for _, ua := range []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"",
	} {
		fmt.Println(device.Parse(ua).Label())
	}
	// Output:
	// Chrome on Windows
	// Safari on iPhone
	// Chrome on Pixel 7
	// Googlebot
	// Unknown device
}
