package loadgen

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func run(system, tier, client string, size, rate int, msgsPerS float64) Labeled {
	return Labeled{System: system, Tier: tier, Report: Report{
		Command: "produce", Client: client, Size: size, Window: 512, Rate: rate,
		Result: Result{MsgsPerS: msgsPerS},
	}}
}

func TestRatiosPairTheInterleavedRuns(t *testing.T) {
	tests := []struct {
		name string
		runs []Labeled
		want []string // lines the ratio table must hold
		not  []string // and must not
	}{
		{
			name: "interleaved pairs",
			runs: []Labeled{
				run("qianlang-raft3", "T1", "native", 128, 0, 200),
				run("nats-jetstream-r3 v2", "T1", "nats", 128, 0, 100),
				run("qianlang-raft3", "T1", "native", 128, 0, 150),
				run("nats-jetstream-r3 v2", "T1", "nats", 128, 0, 100),
				run("qianlang-raft3", "T1", "native", 128, 0, 300),
				run("nats-jetstream-r3 v2", "T1", "nats", 128, 0, 120),
			},
			// medians 200 / 100; pairs 2.00, 1.50, 2.50
			want: []string{"| T1 | 128 B | qianlang-raft3 | nats-jetstream-r3 v2 | 2.00× | 1.50×–2.50× |"},
		},
		{
			name: "tiers and sizes kept apart, open loop and the official client left out",
			runs: []Labeled{
				run("qianlang-raft3", "T1", "native", 1024, 0, 300),
				run("qianlang-raft3", "T2", "native", 1024, 0, 240),
				run("qianlang", "T0", "official", 1024, 0, 50),
				run("qianlang", "T0", "native", 1024, 0, 330),
				run("qianlang", "T0", "native", 1024, 165, 165),
				run("nats-jetstream-r3 v2", "T1", "nats", 1024, 0, 150),
				run("nats-jetstream-r3 v2", "T2", "nats", 1024, 0, 60),
				run("nats-jetstream v2", "T0", "nats", 1024, 0, 110),
				run("nats-jetstream v2", "T0", "nats", 1024, 165, 165),
			},
			want: []string{
				"| T1 | 1 KiB | qianlang-raft3 | nats-jetstream-r3 v2 | 2.00× | 2.00×–2.00× |",
				"| T2 | 1 KiB | qianlang-raft3 | nats-jetstream-r3 v2 | 4.00× | 4.00×–4.00× |",
				"| T0 | 1 KiB | qianlang | nats-jetstream v2 | 3.00× | 3.00×–3.00× |",
			},
			not: []string{"| T0 | 1 KiB | qianlang | nats-jetstream v2 | 1.00×"},
		},
		{
			name: "unequal run counts give no pairs",
			runs: []Labeled{
				run("qianlang-raft3", "T1", "native", 4096, 0, 80),
				run("qianlang-raft3", "T1", "native", 4096, 0, 60),
				run("nats-jetstream-r3 v2", "T1", "nats", 4096, 0, 35),
			},
			want: []string{"| T1 | 4 KiB | qianlang-raft3 | nats-jetstream-r3 v2 | 2.00× | - |"},
		},
		{
			name: "no peer, no table",
			runs: []Labeled{run("qianlang", "T0", "native", 128, 0, 380)},
			not:  []string{"Ratio of medians"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			require.NoError(t, WriteMarkdown(&b, tt.runs, "make bench", "test machine"))
			out := b.String()
			for _, w := range tt.want {
				require.Contains(t, out, w)
			}
			for _, n := range tt.not {
				require.NotContains(t, out, n)
			}
		})
	}
}

// The timeline puts each acknowledgement in the slice of its time and
// keeps the slice's worst latency; acknowledgements outside the measured
// time are left out.
func TestTimelineSlicesByAcknowledgementTime(t *testing.T) {
	from := time.Unix(100, 0)
	tl := newTimeline(from, time.Second, 250*time.Millisecond)
	tests := []struct {
		at      time.Duration
		latency time.Duration
		n       int
	}{
		{10 * time.Millisecond, 3 * time.Millisecond, 1},
		{200 * time.Millisecond, 9 * time.Millisecond, 4},
		{260 * time.Millisecond, 2 * time.Millisecond, 1},
		{999 * time.Millisecond, 40 * time.Millisecond, 2},
		{-time.Millisecond, time.Second, 1}, // warm-up
		{time.Second, time.Second, 1},       // after the end
	}
	for _, tc := range tests {
		tl.record(from.Add(tc.at), tc.latency, tc.n)
	}
	require.Equal(t, []Slice{
		{At: 0, Acks: 5, Worst: 9 * time.Millisecond},
		{At: 250 * time.Millisecond, Acks: 1, Worst: 2 * time.Millisecond},
		{At: 500 * time.Millisecond},
		{At: 750 * time.Millisecond, Acks: 2, Worst: 40 * time.Millisecond},
	}, tl.slices())
}
