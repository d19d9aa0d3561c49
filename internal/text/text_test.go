package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCount(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{{0, "0 sessions"}, {1, "1 session"}, {2, "2 sessions"}, {-1, "-1 sessions"}} {
		if got := Count(c.n, "session"); got != c.want {
			t.Errorf("Count(%d) = %q, want %q", c.n, got, c.want)
		}
	}
	if got := Count(1, "migration"); got != "1 migration" {
		t.Errorf("Count(int 1) = %q", got)
	}
}

func TestCut(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 5, "abc"}, {"abc", 3, "abc"}, {"abc", 2, "ab"}, {"abc", 0, ""}, {"abc", -1, ""},
		{"ééé", 5, "éé"}, {"ééé", 3, "é"}, {"a😀", 4, "a"}, {"a😀", 5, "a😀"},
	} {
		got := Cut(c.s, c.n)
		if got != c.want || !utf8.ValidString(got) {
			t.Errorf("Cut(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
	if got := Elide("abcdef", 3); got != "abc..." {
		t.Errorf("Elide = %q", got)
	}
	if got := Elide("abc", 3); got != "abc" {
		t.Errorf("Elide of a short string = %q", got)
	}
}

func FuzzCut(f *testing.F) {
	f.Add("ééé", 3)
	f.Fuzz(func(t *testing.T, s string, n int) {
		got := Cut(s, n)
		if len(got) > max(n, 0) || !strings.HasPrefix(s, got) {
			t.Fatalf("Cut(%q, %d) = %q", s, n, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("Cut(%q, %d) = %q splits a character", s, n, got)
		}
		if n > 0 && len(s) > n && len(got) < n-utf8.UTFMax+1 {
			t.Fatalf("Cut(%q, %d) = %q cut more than a character", s, n, got)
		}
	})
}
