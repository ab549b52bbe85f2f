package store

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/message"
	"qianlang.io/mq/vfs"
)

func replicatedOptions(fs vfs.FS) Options {
	o := testOptions(fs)
	o.Replicated = true
	return o
}

// recordsPayload encodes msgs as a leader proposes them: offsets unset.
func recordsPayload(msgs ...*message.Message) []byte {
	var b []byte
	for _, m := range msgs {
		b = message.AppendRecord(b, m)
	}
	return b
}

func msgEntry(term, index uint64, topic string, qid int32, bodies ...string) LogEntry {
	var msgs []*message.Message
	for _, b := range bodies {
		msgs = append(msgs, newMsg(topic, qid, b, nil))
	}
	return LogEntry{Term: term, Index: index, Type: EntryMessages, Payload: recordsPayload(msgs...)}
}

// logBytes returns the CommitLog of s from its first entry to the end of
// entry upTo, as raw bytes, for comparing replicas.
func logBytes(t *testing.T, s *Store, upTo uint64) []byte {
	t.Helper()
	p, err := s.lookup(upTo)
	require.NoError(t, err)
	start := s.clog.minOffset()
	b := make([]byte, p.off+p.size-start)
	require.NoError(t, s.clog.readAt(b, start))
	return b
}

func TestReplicatedAppendCommitRead(t *testing.T) {
	s := openStore(t, replicatedOptions(vfs.NewMem()))
	defer s.Close()

	require.ErrorIs(t, s.PutSync([]*message.Message{newMsg("T", 0, "x", nil)}), ErrReplicated)

	var got [][2]int64
	ents := []LogEntry{
		{Term: 1, Index: 1, Type: EntryNoop},
		msgEntry(1, 2, "T", 0, "a", "b"),
		msgEntry(1, 3, "T", 1, "c"),
		msgEntry(1, 4, "T", 0, "d"),
	}
	require.NoError(t, s.AppendEntries(ents, func(e int, phy, qo int64) { got = append(got, [2]int64{int64(e), qo}) }))
	require.Equal(t, [][2]int64{{1, 0}, {1, 1}, {2, 0}, {3, 2}}, got, "queue offsets per queue, in log order")
	require.EqualValues(t, 4, s.LastIndex())

	// Nothing is visible before commit.
	require.EqualValues(t, 0, s.MaxOffset("T", 0))
	require.NoError(t, s.Commit(3))
	s.waitDispatched(s.confirmed.Load())
	require.EqualValues(t, 2, s.MaxOffset("T", 0))
	require.EqualValues(t, 1, s.MaxOffset("T", 1))
	msgs := pullAll(t, s, "T", 0)
	require.Len(t, msgs, 2)
	require.Equal(t, "b", string(msgs[1].Body))
	raw, err := s.ReadMessage(msgs[1].PhysicalOffset)
	require.NoError(t, err)
	m, _, err := message.DecodeRecord(raw)
	require.NoError(t, err)
	require.Equal(t, msgs[1].PhysicalOffset, m.PhysicalOffset, "PHYSICALOFFSET points at the record itself")

	// Terms and entries read back as written.
	for i, e := range ents {
		term, err := s.Term(uint64(i + 1))
		require.NoError(t, err)
		require.Equal(t, e.Term, term)
	}
	var idx []uint64
	require.NoError(t, s.Entries(2, 5, 1<<20, func(e LogEntry) error {
		idx = append(idx, e.Index)
		return nil
	}))
	require.Equal(t, []uint64{2, 3, 4}, idx)
	idx = idx[:0]
	require.NoError(t, s.Entries(2, 5, 1, func(e LogEntry) error {
		idx = append(idx, e.Index)
		return nil
	}))
	require.Equal(t, []uint64{2}, idx, "at least one entry even over the byte limit")
	require.ErrorIs(t, s.Entries(2, 6, 1<<20, func(LogEntry) error { return nil }), ErrUnavailable)
}

func TestReplicatedConflictTruncatesAndRecounts(t *testing.T) {
	s := openStore(t, replicatedOptions(vfs.NewMem()))
	defer s.Close()
	require.NoError(t, s.AppendEntries([]LogEntry{
		msgEntry(1, 1, "T", 0, "a"),
		msgEntry(1, 2, "T", 0, "b"),
		msgEntry(1, 3, "T", 0, "c"),
	}, nil))
	require.NoError(t, s.Commit(1))

	// A new leader overwrites entries 2 and 3.
	var qos []int64
	require.NoError(t, s.AppendEntries([]LogEntry{msgEntry(2, 2, "T", 0, "B")}, func(_ int, _, qo int64) { qos = append(qos, qo) }))
	require.Equal(t, []int64{1}, qos, "queue offset reused after the cut")
	require.EqualValues(t, 2, s.LastIndex())
	term, err := s.Term(2)
	require.NoError(t, err)
	require.EqualValues(t, 2, term)
	_, err = s.Term(3)
	require.ErrorIs(t, err, ErrUnavailable)

	// Committed entries are never cut.
	require.Error(t, s.AppendEntries([]LogEntry{msgEntry(3, 1, "T", 0, "z")}, nil))

	require.NoError(t, s.Commit(2))
	s.waitDispatched(s.confirmed.Load())
	msgs := pullAll(t, s, "T", 0)
	require.Len(t, msgs, 2)
	require.Equal(t, "B", string(msgs[1].Body))
}

func TestReplicatedReplicasAreByteIdentical(t *testing.T) {
	// Two stores fed the same entries in different batches (and one with a
	// conflicting tail first) end with the same bytes.
	a := openStore(t, replicatedOptions(vfs.NewMem()))
	defer a.Close()
	b := openStore(t, replicatedOptions(vfs.NewMem()))
	defer b.Close()
	var ents []LogEntry
	for i := 1; i <= 400; i++ {
		ents = append(ents, msgEntry(1, uint64(i), "T", int32(i%3), string(bytes.Repeat([]byte{byte(i)}, 300+i%700))))
	}
	require.NoError(t, a.AppendEntries(ents, nil))
	require.NoError(t, b.AppendEntries([]LogEntry{msgEntry(1, 1, "T", 0, "stale")}, nil))
	for i := 0; i < len(ents); i += 37 {
		require.NoError(t, b.AppendEntries(ents[i:min(i+37, len(ents))], nil))
	}
	require.Greater(t, a.clog.wrote.Load(), a.opts.SegmentSize, "spans segments")
	require.Equal(t, logBytes(t, a, 400), logBytes(t, b, 400))
}

func TestReplicatedRecoveryKeepsUncommittedOutOfQueues(t *testing.T) {
	fs := vfs.NewMem()
	o := replicatedOptions(fs)
	s := openStore(t, o)
	var ents []LogEntry
	for i := 1; i <= 50; i++ {
		ents = append(ents, msgEntry(1, uint64(i), "T", 0, fmt.Sprint(i)))
	}
	require.NoError(t, s.AppendEntries(ents, nil))
	require.NoError(t, s.SyncLog())
	require.NoError(t, s.Commit(30))
	require.NoError(t, s.SetHardState(HardState{Term: 1, Vote: 2, Commit: 30}))
	s.waitDispatched(s.confirmed.Load())
	require.NoError(t, s.Flush())

	// Crash: the files as they are, nothing more.
	crashed := fs.CrashClone()
	s2 := openStore(t, replicatedOptions(crashed))
	defer s2.Close()
	require.EqualValues(t, 50, s2.LastIndex())
	require.EqualValues(t, 30, s2.AppliedIndex())
	require.Equal(t, HardState{Term: 1, Vote: 2, Commit: 30}, s2.HardState())
	require.EqualValues(t, 30, s2.MaxOffset("T", 0))

	// The next append gets the next queue offset after all 50 in the log.
	var qos []int64
	require.NoError(t, s2.AppendEntries([]LogEntry{msgEntry(2, 51, "T", 0, "51")}, func(_ int, _, qo int64) { qos = append(qos, qo) }))
	require.Equal(t, []int64{50}, qos)
	require.NoError(t, s2.Commit(51))
	s2.waitDispatched(s2.confirmed.Load())
	msgs := pullAll(t, s2, "T", 0)
	require.Len(t, msgs, 51)
	for i, m := range msgs {
		require.Equal(t, fmt.Sprint(i+1), string(m.Body))
	}
	s.Close()
}

func TestReplicatedLookupAfterRestartScansSegments(t *testing.T) {
	fs := vfs.NewMem()
	s := openStore(t, replicatedOptions(fs))
	var ents []LogEntry
	for i := 1; i <= 600; i++ {
		ents = append(ents, msgEntry(uint64(1+i/200), uint64(i), "T", 0, string(bytes.Repeat([]byte("x"), 500))))
	}
	require.NoError(t, s.AppendEntries(ents, nil))
	require.NoError(t, s.Commit(600))
	require.NoError(t, s.Close())

	s = openStore(t, replicatedOptions(fs))
	defer s.Close()
	s.pos.mu.Lock()
	s.pos.recent = nil
	s.pos.mu.Unlock()
	for _, i := range []uint64{1, 199, 200, 201, 450, 600, 3} {
		term, err := s.Term(i)
		require.NoError(t, err, "entry %d", i)
		require.Equal(t, uint64(1+i/200), term, "entry %d", i)
	}
	n := 0
	require.NoError(t, s.Entries(100, 601, 1<<30, func(e LogEntry) error {
		require.EqualValues(t, 100+n, e.Index)
		n++
		return nil
	}))
	require.Equal(t, 501, n)
}

func TestReplicatedSnapshotInstallContinuesByteIdentical(t *testing.T) {
	lo := replicatedOptions(vfs.NewMem())
	lo.FileReservedTime = time.Millisecond
	leader := openStore(t, lo)
	defer leader.Close()
	var ents []LogEntry
	for i := 1; i <= 600; i++ {
		ents = append(ents, msgEntry(1, uint64(i), "T", int32(i%3), string(bytes.Repeat([]byte{byte(i)}, 900))))
	}
	require.NoError(t, leader.AppendEntries(ents[:500], nil))
	require.NoError(t, leader.Commit(500))
	leader.waitDispatched(leader.confirmed.Load())
	require.NoError(t, leader.Flush())
	time.Sleep(5 * time.Millisecond)
	n, err := leader.Clean(true)
	require.NoError(t, err)
	require.Positive(t, n, "retention removed segments")
	start := leader.LogStart()
	require.Positive(t, start.Index)
	require.Equal(t, leader.LogMin(), start.Offset)
	_, err = leader.Term(start.Index - 1)
	require.ErrorIs(t, err, ErrCompacted)
	term, err := leader.Term(start.Index)
	require.NoError(t, err)
	require.EqualValues(t, 1, term, "the log start's term is kept")

	snap, err := leader.Snapshot()
	require.NoError(t, err)
	require.Len(t, snap.Queues, 3)

	// A follower that was far behind installs it and takes the rest.
	ffs := vfs.NewMem()
	follower := openStore(t, replicatedOptions(ffs))
	require.NoError(t, follower.AppendEntries(ents[:3], nil))
	require.NoError(t, follower.Commit(2))
	require.NoError(t, follower.InstallSnapshot(snap))
	require.Equal(t, start.Index, follower.LastIndex())
	require.NoError(t, leader.AppendEntries(ents[500:], nil))
	var rest []LogEntry
	require.NoError(t, leader.Entries(start.Index+1, 601, 1<<30, func(e LogEntry) error {
		rest = append(rest, LogEntry{Term: e.Term, Index: e.Index, Type: e.Type, Payload: append([]byte(nil), e.Payload...)})
		return nil
	}))
	require.NoError(t, follower.AppendEntries(rest, nil))
	require.NoError(t, leader.Commit(600))
	require.NoError(t, follower.Commit(600))
	upTo := func(s *Store) []byte {
		end, err := s.LogEnd(600)
		require.NoError(t, err)
		b := make([]byte, end-start.Offset)
		require.NoError(t, s.ReadLog(b, start.Offset))
		return b
	}
	require.Equal(t, upTo(leader), upTo(follower))

	// Queues continue where the leader's were; nothing before is there.
	follower.waitDispatched(follower.confirmed.Load())
	leader.waitDispatched(leader.confirmed.Load())
	for q := int32(0); q < 3; q++ {
		require.Equal(t, leader.MaxOffset("T", q), follower.MaxOffset("T", q))
		require.Equal(t, snap.Queues[q].Next, follower.MinOffset("T", q))
		require.Len(t, pullAll(t, follower, "T", q), int(follower.MaxOffset("T", q)-follower.MinOffset("T", q)))
	}

	// And it all survives a restart.
	require.NoError(t, follower.Close())
	follower = openStore(t, replicatedOptions(ffs))
	defer follower.Close()
	require.EqualValues(t, 600, follower.LastIndex())
	require.Equal(t, start, follower.LogStart())
	require.Equal(t, upTo(leader), upTo(follower))
}

// The periodic flush of a replicated log writes its whole pages back
// before the fsync, never the partial page being appended to; a failure
// there fails the flush like an fsync failure, and the data stays whole.
func TestReplicatedPeriodicFlushWritesBackWholePages(t *testing.T) {
	rec := &writeBackFS{FS: vfs.NewMem()}
	efs := vfs.NewErrorFS(rec)
	o := replicatedOptions(efs)
	o.FlushInterval = time.Hour // only the test's flushes run
	s := openStore(t, o)
	defer s.Close()
	var ents []LogEntry
	for i := range 40 {
		ents = append(ents, msgEntry(1, uint64(i+1), "W", 0, string(bytes.Repeat([]byte{'x'}, 300))))
	}
	require.NoError(t, s.AppendEntries(ents, nil))
	end := s.clog.wrote.Load()
	require.Greater(t, end, int64(2*pageSize))
	require.NotZero(t, end%pageSize, "the log ends inside a page")

	boom := errors.New("write back refused")
	efs.Inject(vfs.OpSync, func(p string) bool { return strings.Contains(p, "commitlog") }, boom)
	require.ErrorIs(t, s.flushCommitLog(), boom)
	efs.Clear()
	require.NoError(t, s.flushCommitLog())
	require.Equal(t, end, s.clog.flushed.Load())
	require.Equal(t, [][2]int64{{0, end &^ (pageSize - 1)}}, rec.ranges, "whole pages only, once")

	require.NoError(t, s.Commit(40))
	s.waitDispatched(s.confirmed.Load())
	require.Len(t, pullAll(t, s, "W", 0), 40)
}

// writeBackFS records the ranges its files are asked to write back.
type writeBackFS struct {
	vfs.FS
	ranges [][2]int64
}

func (w *writeBackFS) Create(name string) (vfs.File, error) {
	f, err := w.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &writeBackFile{File: f, fs: w}, nil
}

func (w *writeBackFS) OpenReadWrite(name string) (vfs.File, error) {
	f, err := w.FS.OpenReadWrite(name)
	if err != nil {
		return nil, err
	}
	return &writeBackFile{File: f, fs: w}, nil
}

type writeBackFile struct {
	vfs.File
	fs *writeBackFS
}

func (f *writeBackFile) WriteBack(off, n int64) error {
	f.fs.ranges = append(f.fs.ranges, [2]int64{off, off + n})
	return nil
}
