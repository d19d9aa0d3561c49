// Package text holds the small string helpers that messages and bounded
// inputs across qsessions share: counted nouns and UTF-8-safe cuts.
package text

import (
	"strconv"
	"unicode/utf8"
)

// Count is n and noun, with an s unless n is 1: "1 session", "3 sessions".
// For nouns whose plural is noun+"s".
func Count[N ~int | ~int64](n N, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatInt(int64(n), 10) + " " + noun + "s"
}

// Cut returns s cut to at most n bytes without splitting a UTF-8 sequence
// (for inputs bounded in bytes). No allocation.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	for i := 0; i < utf8.UTFMax-1 && n > 0 && !utf8.RuneStart(s[n]); i++ {
		n--
	}
	return s[:n]
}

// Elide is Cut followed by "..." when s was longer than n bytes: for
// quoting untrusted input in an error message.
func Elide(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return Cut(s, n) + "..."
}
