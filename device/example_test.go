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
