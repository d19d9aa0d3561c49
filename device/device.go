// Package device turns a User-Agent header into the device, operating system
// and browser a session was created on, for "your active sessions" pages.
//
// Parsing is done by github.com/mileusna/useragent; this package cleans its
// result (names of unknown parts become empty, garbage never reaches the
// page, a few names are aligned with what django-qsessions shows) and adds
// the display forms: [Info.String] and [Info.Short] in django-qsessions'
// "Device / OS / Browser" layout, and [Info.Label] ("Chrome on Windows")
// for people.
//
// Parse is a pure function of its input and is safe for concurrent use.
package device

import (
	"fmt"
	"github.com/qsessions/qsessions/internal/text"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mileusna/useragent"
)

// Other is what [Info.String] and [Info.Short] show for a part that is not
// known: a desktop has no device name, curl has no operating system, and an
// empty or garbage User-Agent has nothing at all.
const Other = "Other"

// Unknown is what [Info.Label] shows when nothing was recognised: an empty
// or meaningless User-Agent.
const Unknown = "Unknown device"

// MaxInputLen is the number of bytes of a User-Agent that Parse looks at;
// longer input is cut (on a UTF-8 boundary) first, which bounds the cost of a
// hostile header. Real browsers send well under 500 bytes.
const MaxInputLen = 1024

// Kind is the broad class of client: desktop, mobile phone, tablet or bot.
// The zero value is [KindUnknown].
type Kind uint8

// The kinds of client Parse tells apart.
const (
	// KindUnknown is a client Parse cannot place, e.g. curl, an HTTP library
	// or an empty header.
	KindUnknown Kind = iota
	// KindDesktop is a desktop or laptop browser (Windows, macOS, Linux,
	// ChromeOS).
	KindDesktop
	// KindMobile is a phone.
	KindMobile
	// KindTablet is a tablet (iPad, Android without the "Mobile" token).
	KindTablet
	// KindBot is a crawler, link previewer or headless browser.
	KindBot
)

var kindNames = [...]string{"unknown", "desktop", "mobile", "tablet", "bot"}

// String returns the kind's lower-case name: "unknown", "desktop", "mobile",
// "tablet" or "bot". It does not allocate.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// MarshalText encodes the kind as its name, so JSON shows "mobile" rather
// than a number.
func (k Kind) MarshalText() ([]byte, error) {
	if int(k) >= len(kindNames) {
		return nil, fmt.Errorf("device: invalid kind %d", uint8(k))
	}
	return []byte(kindNames[k]), nil
}

// UnmarshalText decodes a name written by MarshalText. An unknown name is an
// error, not a silent KindUnknown.
func (k *Kind) UnmarshalText(b []byte) error {
	for i, n := range kindNames {
		if string(b) == n {
			*k = Kind(i)
			return nil
		}
	}
	return fmt.Errorf("device: unknown kind %q", text.Cut(string(b), 32))
}

// Info is what Parse learns from one User-Agent. Every string field is empty
// when unknown, is valid UTF-8 without control characters, and is short
// (device names at most 48 bytes, versions at most 32), so it is safe to log
// and to show (HTML-escape it as any text).
type Info struct {
	// Device is the hardware model when the agent names one: "iPhone",
	// "iPad", an Android model such as "SM-G973F" or "Pixel 6". Desktop
	// browsers do not name their hardware, so it is empty for them.
	Device string `json:"device,omitempty"`
	// OS is the operating system family: "Windows", "macOS", "iOS",
	// "Android", "Linux", "ChromeOS", ...
	OS string `json:"os,omitempty"`
	// OSVersion is the operating system version as sent, e.g. "10.13.6" or,
	// for Windows, the marketing name ("10", "8.1", "7"). Browsers freeze
	// this value nowadays (every Windows 11 says "10", every Mac
	// "10.15.7"), so treat it as a hint.
	OSVersion string `json:"os_version,omitempty"`
	// Browser is the browser or client family: "Chrome", "Chrome Mobile",
	// "Mobile Safari", "Firefox", "Edge", "Googlebot", "curl", ...
	Browser string `json:"browser,omitempty"`
	// BrowserVersion is the browser version as sent, e.g. "70.0.3538.102".
	BrowserVersion string `json:"browser_version,omitempty"`
	// Kind is desktop, mobile, tablet, bot or unknown.
	Kind Kind `json:"kind"`
}

// IsBot reports whether the agent is a crawler or other automated client
// that identifies itself as one.
func (i Info) IsBot() bool { return i.Kind == KindBot }

// IsMobile reports whether the agent is a phone.
func (i Info) IsMobile() bool { return i.Kind == KindMobile }

// IsTablet reports whether the agent is a tablet.
func (i Info) IsTablet() bool { return i.Kind == KindTablet }

// IsDesktop reports whether the agent is a desktop browser.
func (i Info) IsDesktop() bool { return i.Kind == KindDesktop }

// IsZero reports whether nothing at all was recognised (an empty or
// meaningless User-Agent).
func (i Info) IsZero() bool { return i == Info{} }

// String returns "Device / OS version / Browser version", with [Other] for
// an unknown part, the form django-qsessions shows:
//
//	Other / macOS 10.13.6 / Chrome 70.0.3538.102
//	K / Android 10 / Chrome Mobile 118.0.0.0
//	Other / Other / curl 8.4.0
//
// It allocates the result string only.
func (i Info) String() string {
	return part(i.Device, "") + " / " + part(i.OS, i.OSVersion) + " / " + part(i.Browser, i.BrowserVersion)
}

// Short returns "Device / OS / Browser" without versions, e.g.
// "Other / macOS / Chrome" or "iPhone / iOS / Mobile Safari". Browsers now
// freeze or round the versions they send, so this form is often the more
// honest one to show. It allocates the result string only.
func (i Info) Short() string {
	return part(i.Device, "") + " / " + part(i.OS, "") + " / " + part(i.Browser, "")
}

// Label returns the name people recognise for the client, in English and
// without versions: "Browser on Place", where Place is the phone or tablet
// model when the agent names one and the platform otherwise:
//
//	Chrome on Windows        Safari on Mac           Firefox on Linux
//	Safari on iPhone         Safari on iPad          Chrome on Pixel 7
//	Chrome on Android        Samsung Internet on SM-S918B
//	Chrome on Chromebook     Android WebView on SM-G973F
//
// Browser names drop the platform variants ("Chrome Mobile iOS" and
// "Chrome Mobile" are "Chrome", "Mobile Safari" is "Safari", "Samsung
// Browser" is "Samsung Internet"). Android phones that send Chrome's reduced
// User-Agent name no model (they all say "K"), so they show as "Android"
// ("Android tablet" for a tablet); Samsung models show as sent (SM-S918B,
// the "model number" in the phone's settings). A bot shows its name
// ("Googlebot"), a client that names no platform shows alone ("curl"), a
// platform without a known browser shows alone ("iPhone"), and an Info
// with nothing known is [Unknown]. iPads that ask for desktop sites send a
// Mac's User-Agent and show as "Safari on Mac".
//
// Use it where a person picks out their own session; [Info.String] keeps
// the django-qsessions form. It allocates at most the result string.
func (i Info) Label() string { return i.label(false) }

// VersionLabel is Label with the browser's major version, "Chrome 120 on
// Windows", "Safari 17 on iPhone", for admin lists where the version
// matters. A browser of unknown version shows as in Label. It allocates at
// most the result string.
func (i Info) VersionLabel() string { return i.label(true) }

func (i Info) label(version bool) string {
	browser := labelBrowser(i.Browser)
	if i.Kind == KindBot {
		if browser == "" {
			return "Bot"
		}
		return browser
	}
	place := i.place()
	switch {
	case browser == "" && place == "":
		return Unknown
	case place == "":
		return browser
	case browser == "" || browser == place || browser == i.Device:
		// An in-app browser on iOS names no browser, and useragent then
		// reports the device as the browser.
		return place
	}
	if major, _, _ := strings.Cut(i.BrowserVersion, "."); version && major != "" {
		return browser + " " + major + " on " + place
	}
	return browser + " on " + place
}

// labelBrowser returns the browser's family name without its platform
// variant.
func labelBrowser(b string) string {
	switch b {
	case "Chrome Mobile", "Chrome Mobile iOS":
		return useragent.Chrome
	case "Chrome Mobile WebView":
		return "Android WebView"
	case useragent.MobileSafari:
		return useragent.Safari
	case "Firefox Mobile", "Firefox iOS":
		return useragent.Firefox
	case "Edge Mobile":
		return useragent.Edge
	case "Samsung Browser":
		return "Samsung Internet"
	}
	return b
}

// place returns what the client runs on, as people call it: the model of
// a phone or tablet when the agent names one, else the platform.
func (i Info) place() string {
	switch i.OS {
	case useragent.IOS:
		if i.Device != "" {
			return i.Device // iPhone, iPad, iPod
		}
		return "iOS"
	case useragent.Android:
		// Chrome's reduced User-Agent says "K" for every model.
		if len(i.Device) > 1 {
			return i.Device
		}
		if i.Kind == KindTablet {
			return "Android tablet"
		}
		return useragent.Android
	case useragent.MacOS:
		return "Mac"
	case useragent.ChromeOS, "CrOS":
		return "Chromebook"
	case "":
		return i.Device
	}
	return i.OS
}

func part(name, version string) string {
	switch {
	case name == "":
		return Other
	case version == "":
		return name
	default:
		return name + " " + version
	}
}

// Parse extracts device, operating system, browser and kind from a
// User-Agent header value. It never fails: any input, including an empty or
// binary one, gives an Info whose unknown parts are empty. Only the first
// [MaxInputLen] bytes are looked at.
//
// Cost: about 2 µs and 16 small allocations (under 1 KiB) for a typical
// browser header (BenchmarkParse); parse once per session, or cache, rather
// than on every request.
func Parse(ua string) Info {
	ua = text.Cut(ua, MaxInputLen)
	if !utf8.ValidString(ua) {
		ua = strings.ToValidUTF8(ua, "\uFFFD")
	}
	p := useragent.Parse(ua)

	info := Info{
		Device:         cleanName(p.Device, 48),
		OS:             cleanName(p.OS, 32),
		OSVersion:      cleanVersion(p.OSVersion),
		Browser:        p.Name,
		BrowserVersion: cleanVersion(p.Version),
	}
	// useragent falls back to the whole header as the name when it finds no
	// usable token ("Mozilla/5.0", "(;;)"); that is not a browser name. A
	// bare word such as "MyApp" is one, and is kept.
	if info.Browser == ua && strings.ContainsAny(ua, "/;()") {
		info.Browser = ""
	}
	// "Slackbot-LinkExpanding 1.0": the version came with a space.
	if info.BrowserVersion == "" {
		if i := strings.LastIndexByte(info.Browser, ' '); i > 0 {
			if v := cleanVersion(info.Browser[i+1:]); v != "" {
				info.Browser, info.BrowserVersion = info.Browser[:i], v
			}
		}
	}
	info.Browser = cleanName(info.Browser, 40)
	if info.Browser == "" {
		info.BrowserVersion = ""
	}
	if info.OS == "" {
		info.OSVersion = ""
	}

	mobileToken := strings.Contains(ua, "Mobile")
	// For Linux and ChromeOS useragent reports the architecture ("x86_64")
	// as the version; cleanVersion has dropped it.
	if info.OS == useragent.Windows {
		info.OSVersion = windowsVersion(info.OSVersion)
	}

	switch info.Browser {
	case "Trident": // Internet Explorer 11 no longer says MSIE.
		info.Browser = useragent.InternetExplorer
		info.BrowserVersion = cleanVersion(findRV(ua))
	case useragent.Chrome:
		switch {
		case info.OS == useragent.IOS:
			info.Browser = "Chrome Mobile iOS"
		case info.OS == useragent.Android && strings.Contains(ua, "; wv)"):
			info.Browser = "Chrome Mobile WebView"
		case info.OS == useragent.Android && mobileToken:
			info.Browser = "Chrome Mobile"
		}
	case useragent.Safari:
		if info.OS == useragent.IOS {
			info.Browser = useragent.MobileSafari
		}
	case useragent.Firefox:
		switch info.OS {
		case useragent.Android:
			info.Browser = "Firefox Mobile"
		case useragent.IOS:
			info.Browser = "Firefox iOS"
		}
	case useragent.Edge:
		if info.OS == useragent.Android || info.OS == useragent.IOS {
			info.Browser = "Edge Mobile"
		}
	}

	switch {
	case p.Bot || looksLikeBot(info.Browser):
		info.Kind = KindBot
	case p.Tablet:
		info.Kind = KindTablet
	case info.OS == useragent.Android && !mobileToken:
		// Google's guidance: Android phones send "Mobile", tablets do not.
		info.Kind = KindTablet
	case p.Mobile:
		info.Kind = KindMobile
	case p.Desktop:
		info.Kind = KindDesktop
	}
	return info
}

// windowsVersion maps the "Windows NT x.y" kernel version to the name users
// know. Windows 11 sends "10.0" too.
func windowsVersion(nt string) string {
	switch nt {
	case "10.0":
		return "10"
	case "6.3":
		return "8.1"
	case "6.2":
		return "8"
	case "6.1":
		return "7"
	case "6.0":
		return "Vista"
	case "5.1", "5.2":
		return "XP"
	}
	return nt
}

var rvRE = regexp.MustCompile(`rv:([0-9][0-9.]{0,15})`)

func findRV(ua string) string {
	if m := rvRE.FindStringSubmatch(ua); m != nil {
		return m[1]
	}
	return ""
}

func looksLikeBot(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "bot") || strings.Contains(n, "crawler") || strings.Contains(n, "spider")
}

// cleanName returns s trimmed, or "" when it is longer than max bytes or
// holds anything but letters, digits, spaces and - _ . + ,: the
// signature of a mis-parse or of garbage rather than a name.
func cleanName(s string, max int) string {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > max {
		return ""
	}
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			return ""
		case unicode.IsLetter(r), unicode.IsDigit(r):
		case strings.ContainsRune(" -_.+,", r):
		default:
			return ""
		}
	}
	return s
}

// cleanVersion returns v when it looks like a version (starts with a digit,
// then digits, letters, dots, dashes or underscores, at most 32 bytes), else
// "".
func cleanVersion(v string) string {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 32 || v[0] < '0' || v[0] > '9' {
		return ""
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '-' || c == '_') {
			return ""
		}
	}
	return v
}
