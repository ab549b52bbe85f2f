package schedule

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseLevels(t *testing.T) {
	lv, err := ParseLevels(DefaultLevels)
	require.NoError(t, err)
	require.Len(t, lv, 18)
	require.Equal(t, time.Second, lv[0])
	require.Equal(t, 10*time.Second, lv[2])
	require.Equal(t, 2*time.Hour, lv[17])

	lv, err = ParseLevels(" 2d  90s ")
	require.NoError(t, err)
	require.Equal(t, []time.Duration{48 * time.Hour, 90 * time.Second}, lv)

	for _, bad := range []string{"", "1x", "s", "-1s", "0s", "1.5s", "1s 2"} {
		_, err := ParseLevels(bad)
		require.ErrorIs(t, err, ErrBadLevels, bad)
	}
}

func TestRung(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want time.Duration
		ok   bool
	}{
		{0, 0, false},
		{999 * time.Microsecond, 0, false},
		{time.Millisecond, time.Millisecond, true},
		{4 * time.Millisecond, 2 * time.Millisecond, true},
		{1500 * time.Millisecond, time.Second, true},
		{29 * time.Minute, 20 * time.Minute, true},
		{72 * time.Hour, 24 * time.Hour, true},
	} {
		i, ok := Rung(tc.d)
		require.Equal(t, tc.ok, ok, tc.d)
		if ok {
			require.Equal(t, tc.want, Rungs[i], tc.d)
		}
	}
}

func TestHopsNeverOvershoot(t *testing.T) {
	for _, d := range []time.Duration{time.Millisecond, 999 * time.Millisecond, 15 * time.Minute, 30 * time.Minute, 3 * 24 * time.Hour, 4567891 * time.Millisecond} {
		left := d
		for {
			i, ok := Rung(left)
			if !ok {
				break
			}
			require.LessOrEqual(t, Rungs[i], left)
			left -= Rungs[i]
		}
		require.Less(t, left, time.Millisecond)
	}
	require.LessOrEqual(t, Hops(30*time.Minute), 2)
	require.LessOrEqual(t, Hops(3*24*time.Hour), 5)
	require.LessOrEqual(t, Hops(4567891*time.Millisecond), 20)
}

func TestRungsAscending(t *testing.T) {
	for i := 1; i < len(Rungs); i++ {
		require.Less(t, Rungs[i-1], Rungs[i])
	}
}
