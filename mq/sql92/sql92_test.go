package sql92

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMatch(t *testing.T) {
	props := map[string]string{
		"region": "hz", "amount": "150", "price": "9.5", "vip": "true", "level": "2",
		"TAGS": "pay", "name": "O'Brien", "a.b": "x", "word": "not-a-number",
	}
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{"region = 'hz'", true},
		{"region = 'sh'", false},
		{"region <> 'sh'", true},
		{"region != 'hz'", false},
		{"amount > 100", true},
		{"amount > 100.5", true},
		{"amount >= 150", true},
		{"amount < 150", false},
		{"amount <= 150.0", true},
		{"price < 10", true},
		{"price = 9.5", true},
		{"amount BETWEEN 100 AND 200", true},
		{"amount NOT BETWEEN 100 AND 200", false},
		{"amount between 151 and 200", false},
		{"level IN (1, 2, 3)", true},
		{"level NOT IN (1, 3)", true},
		{"region IN ('sh', 'bj')", false},
		{"region IN ('sh', 'hz')", true},
		{"vip = TRUE", true},
		{"vip = false", false},
		{"missing IS NULL", true},
		{"missing IS NOT NULL", false},
		{"region IS NOT NULL", true},
		{"TAGS = 'pay' AND (amount > 100 OR vip = TRUE)", true},
		{"TAGS = 'refund' OR region = 'hz'", true},
		{"NOT region = 'sh'", true},
		{"NOT (region = 'hz')", false},
		{"name = 'O''Brien'", true},
		{"a.b = 'x'", true},
		{"region CONTAINS 'z'", true},
		{"region STARTSWITH 'h'", true},
		{"region ENDSWITH 'h'", false},
		{"region NOT CONTAINS 'q'", true},
		{"TRUE", true},
		{"FALSE OR amount = 150", true},
		{"-5 < amount", true},
		{"amount > 1e2", true},
		{"amount = 150L", true},
		// Three-valued logic: a missing property or an unparsable number
		// is unknown, and unknown never matches, even negated.
		{"missing = 'x'", false},
		{"NOT missing = 'x'", false},
		{"missing > 1 OR region = 'hz'", true},
		{"missing > 1 AND region = 'hz'", false},
		{"NOT (missing > 1 AND region = 'sh')", true}, // unknown AND false = false
		{"word > 5", false},
		{"NOT word > 5", false},
		{"missing IN (1, 2)", false},
		{"missing NOT BETWEEN 1 AND 2", false},
	} {
		e, err := Compile(tc.expr)
		require.NoError(t, err, tc.expr)
		require.Equal(t, tc.want, e.MatchMap(props), tc.expr)
		require.Equal(t, tc.expr, e.String())
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct{ expr, msg string }{
		{"", "empty"},
		{"   ", "empty"},
		{"region =", "expected a property name or a literal, found end of expression"},
		{"region = 'hz", "unterminated string"},
		{"(region = 'hz'", "expected ')'"},
		{"region = 'hz')", "unexpected ')' after a complete expression"},
		{"region 'hz'", "expected a comparison"},
		{"amount BETWEEN 1 2", "expected AND in BETWEEN"},
		{"level IN 1, 2", "expected '(' after IN"},
		{"level IN (1 2)", "expected ',' or ')'"},
		{"level IN (a, 2)", "IN lists literals only"},
		{"x IS 5", "expected NULL after IS"},
		{"x = NULL", "NULL is only allowed in IS [NOT] NULL"},
		{"region ! 'a'", "unexpected '!'"},
		{"region = 'a' AND", "found end of expression"},
		{"region # 1", "unexpected character '#'"},
		{"region CONTAINS 5", "CONTAINS needs a string literal"},
		{"5 IS NULL", "IS NULL needs a property name"},
		{"amount > 1.2.3", "bad number"},
	} {
		_, err := Compile(tc.expr)
		require.ErrorIs(t, err, ErrSyntax, tc.expr)
		require.ErrorContains(t, err, tc.msg, tc.expr)
	}
}

func TestHostileExpressions(t *testing.T) {
	deep := ""
	for range 200 {
		deep += "("
	}
	_, err := Compile(deep + "a = 1")
	require.ErrorContains(t, err, "nests deeper")
	nots := ""
	for range 200 {
		nots += "NOT "
	}
	_, err = Compile(nots + "a = 1")
	require.ErrorContains(t, err, "nests deeper")
	long := make([]byte, MaxLen+1)
	for i := range long {
		long[i] = 'a'
	}
	_, err = Compile(string(long))
	require.ErrorContains(t, err, "at most")
	_, err = Compile("a = '\xff'")
	require.ErrorContains(t, err, "UTF-8")
}

func BenchmarkMatch(b *testing.B) {
	e, err := Compile("TAGS = 'pay' AND (amount > 100 OR vip = TRUE) AND region IN ('hz', 'sh')")
	require.NoError(b, err)
	props := map[string]string{"TAGS": "pay", "amount": "150", "region": "sh"}
	get := func(k string) (string, bool) { v, ok := props[k]; return v, ok }
	b.ReportAllocs()
	for b.Loop() {
		if !e.Match(get) {
			b.Fatal("no match")
		}
	}
}
