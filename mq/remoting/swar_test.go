package remoting

import (
	"strings"
	"testing"
	"testing/quick"
)

func naivePlain(s string, nonASCII bool) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || (nonASCII && c >= 0x80) {
			return i
		}
	}
	return len(s)
}

func TestPlainPrefixMatchesNaive(t *testing.T) {
	cases := []string{"", "abc", "abcdefgh", "abcdefgh\"", strings.Repeat("x", 17) + "\\", "a\x01", "é", "12345678\x1f", "~~~~~~~~\x7f!"}
	for _, c := range cases {
		for _, na := range []bool{false, true} {
			if got, want := plainPrefix(c, na), naivePlain(c, na); got != want {
				t.Fatalf("plainPrefix(%q, %v) = %d, want %d", c, na, got, want)
			}
		}
	}
	f := func(b []byte, na bool) bool { return plainPrefix(string(b), na) == naivePlain(string(b), na) }
	if err := quick.Check(f, &quick.Config{MaxCount: 20000}); err != nil {
		t.Fatal(err)
	}
}
