package device

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// realAgents are User-Agent headers as real clients send them, with what a
// sessions page should show for each.
var realAgents = []struct {
	name, ua    string
	long, short string
	kind        Kind
}{
	{"chrome 70 macOS (issue example)",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36",
		"Other / macOS 10.13.6 / Chrome 70.0.3538.102", "Other / macOS / Chrome", KindDesktop},
	{"chrome android reduced UA (django-qsessions README example)",
		"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Mobile Safari/537.36",
		"K / Android 10 / Chrome Mobile 118.0.0.0", "K / Android / Chrome Mobile", KindMobile},
	{"chrome windows",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Other / Windows 10 / Chrome 120.0.0.0", "Other / Windows / Chrome", KindDesktop},
	{"firefox windows",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
		"Other / Windows 10 / Firefox 121.0", "Other / Windows / Firefox", KindDesktop},
	{"edge windows",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
		"Other / Windows 10 / Edge 120.0.2210.91", "Other / Windows / Edge", KindDesktop},
	{"safari macOS",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
		"Other / macOS 10.15.7 / Safari 17.2", "Other / macOS / Safari", KindDesktop},
	{"firefox linux",
		"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
		"Other / Linux / Firefox 120.0", "Other / Linux / Firefox", KindDesktop},
	{"chromebook",
		"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Other / ChromeOS / Chrome 120.0.0.0", "Other / ChromeOS / Chrome", KindDesktop},
	{"internet explorer 11",
		"Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
		"Other / Windows 7 / Internet Explorer 11.0", "Other / Windows / Internet Explorer", KindDesktop},
	{"safari iPhone",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
		"iPhone / iOS 17.2 / Mobile Safari 17.2", "iPhone / iOS / Mobile Safari", KindMobile},
	{"safari iPad",
		"Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
		"iPad / iOS 16.6 / Mobile Safari 16.6", "iPad / iOS / Mobile Safari", KindTablet},
	{"chrome iPhone",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
		"iPhone / iOS 17.1 / Chrome Mobile iOS 120.0.6099.119", "iPhone / iOS / Chrome Mobile iOS", KindMobile},
	{"samsung internet",
		"Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
		"SM-S918B / Android 13 / Samsung Browser 23.0", "SM-S918B / Android / Samsung Browser", KindMobile},
	{"firefox android",
		"Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0",
		"Other / Android 14 / Firefox Mobile 121.0", "Other / Android / Firefox Mobile", KindMobile},
	{"android tablet without Mobile token",
		"Mozilla/5.0 (Linux; Android 9; SM-T820) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
		"SM-T820 / Android 9 / Chrome 119.0.0.0", "SM-T820 / Android / Chrome", KindTablet},
	{"android webview",
		"Mozilla/5.0 (Linux; Android 10; SM-G973F Build/QP1A.190711.020; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/118.0.0.0 Mobile Safari/537.36",
		"SM-G973F / Android 10 / Chrome Mobile WebView 118.0.0.0", "SM-G973F / Android / Chrome Mobile WebView", KindMobile},
	{"edge android",
		"Mozilla/5.0 (Linux; Android 12; Pixel 6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36 EdgA/120.0.2210.115",
		"Pixel 6 / Android 12 / Edge Mobile 120.0.2210.115", "Pixel 6 / Android / Edge Mobile", KindMobile},
	{"googlebot",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"Other / Other / Googlebot 2.1", "Other / Other / Googlebot", KindBot},
	{"googlebot smartphone",
		"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.129 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"Nexus 5X / Android 6.0.1 / Googlebot 2.1", "Nexus 5X / Android / Googlebot", KindBot},
	{"bingbot",
		"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
		"Other / Other / Bingbot 2.0", "Other / Other / Bingbot", KindBot},
	{"slack link preview",
		"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
		"Other / Other / Slackbot-LinkExpanding 1.0", "Other / Other / Slackbot-LinkExpanding", KindBot},
	{"headless chrome",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
		"Other / Linux / Headless Chrome 120.0.0.0", "Other / Linux / Headless Chrome", KindBot},
	{"curl", "curl/8.4.0", "Other / Other / curl 8.4.0", "Other / Other / curl", KindUnknown},
	{"python requests", "python-requests/2.31.0", "Other / Other / python-requests 2.31.0", "Other / Other / python-requests", KindUnknown},
	{"empty", "", "Other / Other / Other", "Other / Other / Other", KindUnknown},
	{"bare Mozilla token", "Mozilla/5.0", "Other / Other / Other", "Other / Other / Other", KindUnknown},
	{"500 characters of garbage", strings.Repeat("x7#;", 125), "Other / Other / Other", "Other / Other / Other", KindUnknown},
}

func TestParseRealAgents(t *testing.T) {
	if len(realAgents) < 15 {
		t.Fatalf("only %d agents", len(realAgents))
	}
	for _, tc := range realAgents {
		t.Run(tc.name, func(t *testing.T) {
			got := Parse(tc.ua)
			if s := got.String(); s != tc.long {
				t.Errorf("String() = %q, want %q (parsed %+v)", s, tc.long, got)
			}
			if s := got.Short(); s != tc.short {
				t.Errorf("Short() = %q, want %q", s, tc.short)
			}
			if got.Kind != tc.kind {
				t.Errorf("Kind = %v, want %v", got.Kind, tc.kind)
			}
			checkClean(t, got)
		})
	}
}

// TestLabel checks the form people read on their sessions page against
// real User-Agent headers.
func TestLabel(t *testing.T) {
	for _, tc := range []struct{ name, ua, want string }{
		{"chrome windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
			"Chrome on Windows"},
		{"edge windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
			"Edge on Windows"},
		{"internet explorer 11", "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
			"Internet Explorer on Windows"},
		{"safari macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
			"Safari on Mac"},
		{"chrome macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36",
			"Chrome on Mac"},
		{"firefox linux", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
			"Firefox on Linux"},
		{"opera linux", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 OPR/106.0.0.0",
			"Opera on Linux"},
		{"chromebook", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
			"Chrome on Chromebook"},
		{"safari iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
			"Safari on iPhone"},
		{"chrome iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
			"Chrome on iPhone"},
		{"firefox iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/121.0 Mobile/15E148 Safari/605.1.15",
			"Firefox on iPhone"},
		{"in-app browser iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
			"iPhone"},
		{"safari iPad", "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
			"Safari on iPad"},
		{"chrome Pixel 7", "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Mobile Safari/537.36",
			"Chrome on Pixel 7"},
		{"chrome Pixel 7 Pro with build", "Mozilla/5.0 (Linux; Android 14; Pixel 7 Pro Build/UQ1A.240205.004) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.6167.143 Mobile Safari/537.36",
			"Chrome on Pixel 7 Pro"},
		{"chrome android reduced UA", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Mobile Safari/537.36",
			"Chrome on Android"},
		{"chrome android tablet reduced UA", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Safari/537.36",
			"Chrome on Android tablet"},
		{"samsung internet", "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
			"Samsung Internet on SM-S918B"},
		{"samsung tablet chrome", "Mozilla/5.0 (Linux; Android 9; SM-T820) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
			"Chrome on SM-T820"},
		{"firefox android", "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0",
			"Firefox on Android"},
		{"edge android", "Mozilla/5.0 (Linux; Android 12; Pixel 6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36 EdgA/120.0.2210.115",
			"Edge on Pixel 6"},
		{"android webview", "Mozilla/5.0 (Linux; Android 10; SM-G973F Build/QP1A.190711.020; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/118.0.0.0 Mobile Safari/537.36",
			"Android WebView on SM-G973F"},
		{"googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot"},
		{"googlebot smartphone", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.129 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
			"Googlebot"},
		{"headless chrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
			"Headless Chrome"},
		{"curl", "curl/8.4.0", "curl"},
		{"python requests", "python-requests/2.31.0", "python-requests"},
		{"bare app name", "MyApp", "MyApp"},
		{"empty", "", Unknown},
		{"bare Mozilla token", "Mozilla/5.0", Unknown},
		{"garbage", strings.Repeat("x7#;", 125), Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Parse(tc.ua)
			if got := d.Label(); got != tc.want {
				t.Errorf("Label() = %q, want %q (parsed %+v)", got, tc.want, d)
			}
		})
	}
}

// TestLabelFields checks Label on hand-made Infos, for the cases no real
// header reaches.
func TestLabelFields(t *testing.T) {
	for _, tc := range []struct {
		in   Info
		want string
	}{
		{Info{}, Unknown},
		{Info{Kind: KindBot}, "Bot"},
		{Info{OS: "Windows", OSVersion: "10"}, "Windows"},
		{Info{OS: "iOS", Browser: "Mobile Safari"}, "Safari on iOS"},
		{Info{OS: "Android", Device: "K", Browser: "Firefox Mobile", Kind: KindTablet}, "Firefox on Android tablet"},
		{Info{OS: "CrOS", Browser: "Chrome"}, "Chrome on Chromebook"},
		{Info{OS: "FreeBSD", Browser: "Firefox", BrowserVersion: "121.0"}, "Firefox on FreeBSD"},
		{Info{Device: "Nintendo Switch", Browser: "NetFront"}, "NetFront on Nintendo Switch"},
	} {
		if got := tc.in.Label(); got != tc.want {
			t.Errorf("%+v: Label() = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestLabelAllocs checks Label's documented cost: the result string at
// most.
func TestLabelAllocs(t *testing.T) {
	for _, ua := range []string{realAgents[0].ua, "curl/8.4.0", ""} {
		d := Parse(ua)
		if n := testing.AllocsPerRun(100, func() { _ = d.Label() }); n > 1 {
			t.Errorf("Label() of %q: %v allocations", d.Label(), n)
		}
	}
}

func TestParseFields(t *testing.T) {
	got := Parse(realAgents[0].ua)
	want := Info{OS: "macOS", OSVersion: "10.13.6", Browser: "Chrome", BrowserVersion: "70.0.3538.102", Kind: KindDesktop}
	if got != want {
		t.Fatalf("Parse = %+v, want %+v", got, want)
	}
	if !got.IsDesktop() || got.IsMobile() || got.IsTablet() || got.IsBot() || got.IsZero() {
		t.Fatalf("predicates wrong for %+v", got)
	}
	if !Parse("").IsZero() {
		t.Fatalf("Parse(\"\") = %+v, want zero", Parse(""))
	}
	if !Parse("Twitterbot/1.0").IsBot() {
		t.Fatal("Twitterbot is not a bot")
	}
}

// TestParseHostile feeds input built to get markup, control characters or
// long junk into the fields.
func TestParseHostile(t *testing.T) {
	inputs := []string{
		"Mozilla/5.0 (Linux; Android 10; <script>alert(1)</script>) Chrome/1.0 Mobile Safari/1",
		"Mozilla/5.0 (Linux; Android 10; dev\x00ice) Chrome/1.0",
		"Evil\x1b[31mBrowser/1.0",
		"\xff\xfe\xfd/\xc3(",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 1_2_3_4_5_6_7_8_9_0_1_2_3_4_5_6_7_8_9_0 like Mac OS X) Safari/1",
		strings.Repeat("(", 5000),
		strings.Repeat("a/", 5000),
		"Mozilla/5.0 (Windows NT 10.0) " + strings.Repeat("é", 600) + "/1.0",
	}
	for _, in := range inputs {
		got := Parse(in)
		checkClean(t, got)
	}
	if d := Parse(inputs[0]).Device; d != "" {
		t.Errorf("markup accepted as device: %q", d)
	}
	if b := Parse(inputs[2]).Browser; b != "" {
		t.Errorf("escape sequence accepted as browser: %q", b)
	}
}

// TestParseRandomGarbage checks the invariants on 500-character strings from
// a seeded generator, so every run sees the same inputs.
func TestParseRandomGarbage(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("abcXYZ019 ;:/()[]+-._,#\x00\x7fé€\U0001F600")
	for range 200 {
		var b strings.Builder
		for range 500 {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		checkClean(t, Parse(b.String()))
	}
}

func TestKindText(t *testing.T) {
	for k := KindUnknown; k <= KindBot; k++ {
		b, err := k.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Kind
		if err := back.UnmarshalText(b); err != nil || back != k {
			t.Fatalf("round trip of %v: %v, %v", k, back, err)
		}
	}
	if _, err := Kind(99).MarshalText(); err == nil {
		t.Error("MarshalText of an invalid kind did not fail")
	}
	var k Kind
	if err := k.UnmarshalText([]byte("robot")); err == nil {
		t.Error("UnmarshalText(robot) did not fail")
	}
	j, err := json.Marshal(Parse(realAgents[1].ua))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"device":"K","os":"Android","os_version":"10","browser":"Chrome Mobile","browser_version":"118.0.0.0","kind":"mobile"}`
	if string(j) != want {
		t.Fatalf("JSON = %s, want %s", j, want)
	}
}

// checkClean asserts the promises Info's documentation makes.
func checkClean(t *testing.T, i Info) {
	t.Helper()
	fields := map[string]struct {
		v   string
		max int
	}{
		"Device": {i.Device, 48}, "OS": {i.OS, 32}, "OSVersion": {i.OSVersion, 32},
		"Browser": {i.Browser, 40}, "BrowserVersion": {i.BrowserVersion, 32},
	}
	for name, f := range fields {
		if len(f.v) > f.max {
			t.Errorf("%s is %d bytes: %q", name, len(f.v), f.v)
		}
		if !utf8.ValidString(f.v) {
			t.Errorf("%s is not UTF-8: %q", name, f.v)
		}
		if strings.TrimSpace(f.v) != f.v {
			t.Errorf("%s has surrounding space: %q", name, f.v)
		}
		for _, r := range f.v {
			if unicode.IsControl(r) || strings.ContainsRune("<>\"'&/;()", r) {
				t.Errorf("%s holds %q: %q", name, r, f.v)
			}
		}
	}
	if i.OS == "" && i.OSVersion != "" || i.Browser == "" && i.BrowserVersion != "" {
		t.Errorf("version without a name: %+v", i)
	}
	if i.Kind > KindBot {
		t.Errorf("Kind = %d", i.Kind)
	}
	if n := len(strings.Split(i.String(), " / ")); n != 3 {
		t.Errorf("String() %q has %d parts", i.String(), n)
	}
	if n := len(strings.Split(i.Short(), " / ")); n != 3 {
		t.Errorf("Short() %q has %d parts", i.Short(), n)
	}
	l := i.Label()
	if l == "" || strings.Contains(l, " / ") || strings.HasPrefix(l, " on") || strings.HasSuffix(l, "on ") {
		t.Errorf("Label() = %q for %+v", l, i)
	}
	// Label never shows the browser's version: it is the same without it.
	// (A suffix check is not enough: junk such as "Android(121.0(A 121.0"
	// parses to a device named "121.0" and a browser "A" of version
	// "121.0", labelled "A on 121.0".)
	noVersion := i
	noVersion.BrowserVersion = ""
	if nl := noVersion.Label(); nl != l {
		t.Errorf("Label() %q depends on the browser's version (%q without it)", l, nl)
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range realAgents {
		f.Add(tc.ua)
	}
	f.Add("\xff\xfe")
	f.Add("Mozilla/5.0 (Linux; Android 1; ;;) Chrome/ Mobile")
	f.Fuzz(func(t *testing.T, ua string) {
		got := Parse(ua)
		checkClean(t, got)
		if again := Parse(ua); again != got {
			t.Fatalf("Parse is not deterministic: %+v then %+v", got, again)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	ua := realAgents[1].ua
	b.ReportAllocs()
	for b.Loop() {
		Parse(ua)
	}
}

func TestVersionLabel(t *testing.T) {
	for ua, want := range map[string]string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36":                         "Chrome 120 on Windows",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1": "Safari 17 on iPhone",
		"Googlebot/2.1 (+http://www.google.com/bot.html)": "Googlebot",
		"": Unknown,
	} {
		if got := Parse(ua).VersionLabel(); got != want {
			t.Errorf("VersionLabel(%q) = %q, want %q", ua, got, want)
		}
	}
}
