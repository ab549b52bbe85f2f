package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/vfs"
)

// cqEntries encodes entries for queue offsets [from, from+n): entry k
// points at physical offset 1000·k with size k+1.
func cqEntries(from, n int64) []byte {
	b := make([]byte, n*cqEntrySize)
	for i := range n {
		k := from + i
		putCQEntry(b[i*cqEntrySize:], CQEntry{PhysicalOffset: 1000 * k, Size: int32(k + 1), TagsCode: k})
	}
	return b
}

func requireCQRange(t *testing.T, q *consumeQueue, from, to int64) {
	t.Helper()
	es, err := q.read(from, int(to-from))
	require.NoError(t, err)
	require.Len(t, es, int(to-from))
	for i, e := range es {
		k := from + int64(i)
		require.Equal(t, CQEntry{PhysicalOffset: 1000 * k, Size: int32(k + 1), TagsCode: k}, e, "queue offset %d", k)
	}
}

// onDisk is the max offset a fresh load of the queue's files finds.
func onDisk(t *testing.T, fs vfs.FS, perFile int64) int64 {
	t.Helper()
	q := newConsumeQueue(fs, "/cq", "T", 0, perFile)
	require.NoError(t, q.load())
	defer q.close()
	return q.maxOffset.Load()
}

func TestConsumeQueueGathersWritesAndReadsThrough(t *testing.T) {
	perRun := int64(cqWriteBuf / cqEntrySize)
	for _, tc := range []struct {
		name    string
		perFile int64
		writes  [][2]int64 // {from, n}
		// what the files hold before sync, and what every read must see
		wantDisk, wantMax int64
		readFrom          int64
	}{
		{name: "a few entries stay in memory until sync",
			perFile: 1000, writes: [][2]int64{{0, 3}, {3, 4}}, wantDisk: 0, wantMax: 7},
		{name: "a full buffer is written at once",
			perFile: 1000, writes: [][2]int64{{0, perRun - 1}, {perRun - 1, 2}}, wantDisk: perRun + 1, wantMax: perRun + 1},
		{name: "a buffer spanning files is written to each",
			perFile: 16, writes: [][2]int64{{0, perRun}, {perRun, 5}}, wantDisk: perRun, wantMax: perRun + 5, readFrom: 3},
		{name: "reads span the files and the buffer",
			perFile: 64, writes: [][2]int64{{0, perRun}, {perRun, 30}}, wantDisk: perRun, wantMax: perRun + 30, readFrom: perRun - 10},
		{name: "a queue that starts past zero keeps its offsets",
			perFile: 64, writes: [][2]int64{{500, 10}}, wantDisk: 0, wantMax: 510, readFrom: 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			q := newConsumeQueue(fs, "/cq", "T", 0, tc.perFile)
			for _, w := range tc.writes {
				require.NoError(t, q.write(w[0], cqEntries(w[0], w[1])))
			}
			require.Equal(t, tc.wantMax, q.maxOffset.Load())
			require.Equal(t, tc.writes[0][0], q.minOffset.Load())
			requireCQRange(t, q, tc.readFrom, tc.wantMax)
			if tc.wantDisk > 0 {
				require.Equal(t, tc.wantDisk, onDisk(t, fs, tc.perFile))
			} else {
				_, err := fs.List("/cq/T/0")
				require.Error(t, err, "nothing written before sync")
			}
			require.NoError(t, q.sync())
			require.Equal(t, tc.wantMax, onDisk(t, fs, tc.perFile))
			requireCQRange(t, q, tc.readFrom, tc.wantMax)
			require.NoError(t, q.close())
		})
	}
}

func TestConsumeQueueWritesTheRunBeforeAGap(t *testing.T) {
	fs := vfs.NewMem()
	q := newConsumeQueue(fs, "/cq", "T", 0, 1000)
	require.NoError(t, q.write(0, cqEntries(0, 5)))
	// Re-dispatch after recovery can go back below the max: the gathered
	// run goes to the file first, then the new one gathers.
	require.NoError(t, q.write(2, cqEntries(2, 2)))
	require.Equal(t, int64(5), onDisk(t, fs, 1000))
	require.Equal(t, int64(5), q.maxOffset.Load())
	requireCQRange(t, q, 0, 5)
	require.NoError(t, q.write(4, cqEntries(4, 3)))
	requireCQRange(t, q, 0, 7)
	require.NoError(t, q.sync())
	require.Equal(t, int64(7), onDisk(t, fs, 1000))
}

func TestConsumeQueueFailedWriteKeepsEntriesAndRetries(t *testing.T) {
	efs := vfs.NewErrorFS(vfs.NewMem())
	q := newConsumeQueue(efs, "/cq", "T", 0, 1000)
	boom := errors.New("injected")
	efs.Inject(vfs.OpWrite, func(p string) bool { return strings.HasPrefix(p, "/cq/") }, boom)
	perRun := int64(cqWriteBuf / cqEntrySize)
	require.ErrorIs(t, q.write(0, cqEntries(0, perRun)), boom)
	requireCQRange(t, q, 0, perRun)
	require.ErrorIs(t, q.sync(), boom)
	requireCQRange(t, q, 0, perRun)
	efs.Clear()
	require.NoError(t, q.write(perRun, cqEntries(perRun, 1)))
	require.Equal(t, perRun+1, onDisk(t, efs, 1000), "the retry wrote the run that failed")
	requireCQRange(t, q, 0, perRun+1)
}
