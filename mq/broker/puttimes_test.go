package broker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPutBucket(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "<=0ms"},
		{999 * time.Microsecond, "<=0ms"},
		{time.Millisecond, "0~10ms"},
		{9999 * time.Microsecond, "0~10ms"},
		{10 * time.Millisecond, "10~50ms"},
		{99 * time.Millisecond, "50~100ms"},
		{100 * time.Millisecond, "100~200ms"},
		{499 * time.Millisecond, "200~500ms"},
		{500 * time.Millisecond, "500ms~1s"},
		{1999 * time.Millisecond, "1~2s"},
		{2 * time.Second, "2~3s"},
		{3500 * time.Millisecond, "3~4s"},
		{4 * time.Second, "4~5s"},
		{9 * time.Second, "5~10s"},
		{10 * time.Second, "10s~"},
		{time.Hour, "10s~"},
	} {
		require.Equal(t, tc.want, putBucketLabels[putBucket(tc.d)], "%v", tc.d)
	}
}

func TestPutTimesSnapshotAndWindow(t *testing.T) {
	var p putTimes
	t0 := time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)
	p.record(t0, t0.Add(300*time.Microsecond))
	p.record(t0, t0.Add(300*time.Microsecond))
	p.record(t0, t0.Add(12*time.Millisecond))
	p.record(t0, t0.Add(1500*time.Millisecond))

	dist, longest := p.snapshot(t0.Add(2 * time.Second))
	require.Equal(t, "[<=0ms]:2 [0~10ms]:0 [10~50ms]:1 [50~100ms]:0 [100~200ms]:0 [200~500ms]:0 "+
		"[500ms~1s]:0 [1~2s]:1 [2~3s]:0 [3~4s]:0 [4~5s]:0 [5~10s]:0 [10s~]:0 ", dist)
	require.EqualValues(t, 1500, longest)

	// A minute after the window began the counts start over; the longest
	// put is kept since start.
	later := t0.Add(putTimesWindow + time.Second)
	dist, longest = p.snapshot(later)
	require.Contains(t, dist, "[<=0ms]:0 [0~10ms]:0 [10~50ms]:0")
	require.EqualValues(t, 1500, longest)
	p.record(later, later.Add(2*time.Millisecond))
	dist, _ = p.snapshot(later)
	require.Contains(t, dist, "[<=0ms]:0 [0~10ms]:1 [10~50ms]:0")
	require.Contains(t, dist, "[1~2s]:0")
}
