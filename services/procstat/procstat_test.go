package procstat

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSelfAndGroups(t *testing.T) {
	a := Take(map[string]int{"me": os.Getpid(), "gone": 1 << 30})
	require.Contains(t, a, "me")
	require.NotContains(t, a, "gone")
	x := 0
	for i := range 50_000_000 {
		x += i
	}
	_ = x
	b := Take(map[string]int{"me": os.Getpid()})
	d := b.Since(a, func(string) string { return "all" })
	require.Greater(t, d["all"], 0.0)
	// A counter that went down (a restarted process) counts from zero.
	d = Sample{"p": 2}.Since(Sample{"p": 5}, func(n string) string { return n })
	require.Equal(t, 2.0, d["p"])
}
