package replica

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/raft/v3/raftpb"
)

func ringEnts(term, from, to uint64, size int) []pb.Entry {
	var out []pb.Entry
	for i := from; i <= to; i++ {
		out = append(out, pb.Entry{Term: term, Index: i, Data: make([]byte, size)})
	}
	return out
}

func indexes(ents []pb.Entry) []uint64 {
	var out []uint64
	for _, e := range ents {
		out = append(out, e.Index)
	}
	return out
}

func TestEntryRing(t *testing.T) {
	r := entryRing{max: 1000}
	r.append(ringEnts(1, 1, 5, 100))
	got, ok := r.get(2, 5, 1<<20)
	require.True(t, ok)
	require.Equal(t, []uint64{2, 3, 4}, indexes(got))

	got, ok = r.get(2, 5, 150)
	require.True(t, ok)
	require.Equal(t, []uint64{2}, indexes(got), "limited by size, at least one")

	_, ok = r.get(4, 7, 1<<20)
	require.False(t, ok, "past the end")

	// A new leader overwrites 4 and 5.
	r.append(ringEnts(2, 4, 6, 100))
	got, _ = r.get(1, 7, 1<<20)
	require.Equal(t, []uint64{1, 2, 3, 4, 5, 6}, indexes(got))
	require.EqualValues(t, 2, got[3].Term)
	require.Equal(t, 600, r.bytes)

	// The budget drops the oldest.
	r.append(ringEnts(2, 7, 12, 100))
	require.LessOrEqual(t, r.bytes, 1000)
	require.EqualValues(t, 12, r.last())
	_, ok = r.get(1, 3, 1<<20)
	require.False(t, ok, "trimmed")

	// A gap resets.
	r.append(ringEnts(3, 20, 21, 10))
	require.EqualValues(t, 20, r.first())
	require.Equal(t, 20, r.bytes)
}

// BenchmarkEntryRingFull appends one entry at a time to a ring at its
// 32 MiB budget, as a leader does on every Ready once it has written that
// much: entries of 4 KiB (a batch of sends) and of 256 B (a single small
// send, as under light load).
func BenchmarkEntryRingFull(b *testing.B) {
	for _, size := range []int{4096, 256} {
		b.Run(fmt.Sprintf("entry=%dB", size), func(b *testing.B) {
			r := entryRing{max: 32 << 20}
			data := make([]byte, size)
			next := uint64(1)
			one := func() []pb.Entry {
				e := []pb.Entry{{Term: 1, Index: next, Data: data}}
				next++
				return e
			}
			for r.bytes < r.max {
				r.append(one())
			}
			b.ReportAllocs()
			for b.Loop() {
				r.append(one())
			}
		})
	}
}
