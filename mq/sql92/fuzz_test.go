package sql92

import (
	"errors"
	"testing"
)

// FuzzCompile feeds arbitrary expressions to the compiler: it must return
// an expression or a syntax error, never panic, and a compiled expression
// must evaluate without panicking on any properties.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"a = 1", "region = 'hz' AND (amount > 100 OR vip IS NOT NULL)", "x BETWEEN 1 AND 2",
		"x NOT IN ('a', 'b')", "NOT NOT a <> 'b'", "a CONTAINS 'x'", "TRUE", "(", "'", "a = -1.5e3",
	} {
		f.Add(s, "1")
	}
	f.Fuzz(func(t *testing.T, expr, val string) {
		e, err := Compile(expr)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("%q: error %v is not a syntax error", expr, err)
			}
			return
		}
		get := func(string) (string, bool) { return val, val != "" }
		_ = e.Match(get)
	})
}
