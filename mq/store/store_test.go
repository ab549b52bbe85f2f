package store

import (
	"bytes"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/message"
	"qianlang.io/mq/vfs"
)

var (
	testBorn  = netip.MustParseAddrPort("10.0.0.5:40000")
	testStore = netip.MustParseAddrPort("127.0.0.1:10911")
)

func testOptions(fs vfs.FS) Options {
	o := DefaultOptions("/data")
	o.FS = fs
	o.SegmentSize = 128 << 10
	o.MaxMessageSize = 16 << 10
	o.QueueFileEntries = 64
	o.IndexSlots = 64
	o.IndexEntries = 256
	o.TailCacheBytes = 0
	o.FlushInterval = 20 * time.Millisecond
	o.CleanInterval = time.Hour
	o.DeleteWhen = nil
	return o
}

func openStore(t *testing.T, o Options) *Store {
	t.Helper()
	s, err := Open(o)
	require.NoError(t, err)
	return s
}

func newMsg(topic string, qid int32, body string, props map[string]string) *message.Message {
	return &message.Message{
		Topic: topic, QueueID: qid, Body: []byte(body), BornTimestamp: 1,
		BornHost: testBorn, StoreHost: testStore, Properties: message.EncodeProperties(props),
	}
}

// pullAll reads every message of a queue from offset 0.
func pullAll(t *testing.T, s *Store, topic string, qid int32) []message.Message {
	t.Helper()
	var out []message.Message
	off := s.MinOffset(topic, qid)
	for {
		r, err := s.GetMessages(topic, qid, off, 32, nil)
		require.NoError(t, err)
		if r.Status != Found {
			require.Contains(t, []GetStatus{OffsetOverflowOne, NoMessageInQueue}, r.Status, "offset %d", off)
			return out
		}
		want := off
		for pos := 0; pos < len(r.Body); {
			m, n, err := message.DecodeRecord(r.Body[pos:])
			require.NoError(t, err)
			require.Equal(t, want, m.QueueOffset, "offsets are dense")
			want++
			out = append(out, m)
			pos += n
		}
		off = r.NextBeginOffset
	}
}

func TestStorePutGetRoundTrip(t *testing.T) {
	for _, mode := range []FlushMode{AsyncFlush, SyncFlush} {
		t.Run(mode.String(), func(t *testing.T) {
			o := testOptions(vfs.NewMem())
			o.Flush = mode
			s := openStore(t, o)
			defer s.Close()
			for i := range 300 {
				m := newMsg("T", int32(i%3), fmt.Sprintf("body-%d", i), map[string]string{"TAGS": "A", "UNIQ_KEY": fmt.Sprintf("U%d", i)})
				require.NoError(t, s.PutSync([]*message.Message{m}))
				require.Equal(t, int64(i/3), m.QueueOffset)
				require.Positive(t, m.PhysicalOffset)
			}
			require.Eventually(t, func() bool { return s.MaxOffset("T", 2) == 100 }, 2*time.Second, time.Millisecond)
			for q := range int32(3) {
				got := pullAll(t, s, "T", q)
				require.Len(t, got, 100)
				for i, m := range got {
					require.Equal(t, fmt.Sprintf("body-%d", i*3+int(q)), string(m.Body))
					require.Equal(t, testStore, m.StoreHost)
					raw, err := s.ReadMessage(m.PhysicalOffset)
					require.NoError(t, err)
					back, _, err := message.DecodeRecord(raw)
					require.NoError(t, err)
					require.Equal(t, m.Body, back.Body)
				}
			}
		})
	}
}

func TestStoreGetStatuses(t *testing.T) {
	s := openStore(t, testOptions(vfs.NewMem()))
	defer s.Close()
	tests := []struct {
		off        int64
		wantStatus GetStatus
		wantNext   int64
	}{
		{0, NoMessageInQueue, 0},
		{5, OffsetOverflowBadly, 0},
	}
	for _, tt := range tests {
		r, err := s.GetMessages("none", 0, tt.off, 32, nil)
		require.NoError(t, err)
		require.Equal(t, tt.wantStatus, r.Status)
		require.Equal(t, tt.wantNext, r.NextBeginOffset)
	}
	for i := range 10 {
		require.NoError(t, s.PutSync([]*message.Message{newMsg("T", 0, fmt.Sprint(i), nil)}))
	}
	require.Eventually(t, func() bool { return s.MaxOffset("T", 0) == 10 }, time.Second, time.Millisecond)
	for _, tt := range []struct {
		off        int64
		wantStatus GetStatus
		wantNext   int64
	}{
		{10, OffsetOverflowOne, 10},
		{12, OffsetOverflowBadly, 10},
		{3, Found, 10},
	} {
		r, err := s.GetMessages("T", 0, tt.off, 32, nil)
		require.NoError(t, err)
		require.Equal(t, tt.wantStatus, r.Status, "offset %d", tt.off)
		require.Equal(t, tt.wantNext, r.NextBeginOffset, "offset %d", tt.off)
	}
}

type tagFilter struct{ tag string }

func (f tagFilter) MatchTagsCode(c int64) bool { return c == message.TagsCode(f.tag) }
func (f tagFilter) NeedsMessage() bool         { return true }
func (f tagFilter) MatchMessage(p string) bool {
	v, _ := message.Property(p, message.PropTags)
	return v == f.tag
}

func TestStoreFilterAdvancesPastSkipped(t *testing.T) {
	s := openStore(t, testOptions(vfs.NewMem()))
	defer s.Close()
	for i := range 20 {
		tag := "A"
		if i%4 == 0 {
			tag = "B"
		}
		require.NoError(t, s.PutSync([]*message.Message{newMsg("T", 0, fmt.Sprint(i), map[string]string{"TAGS": tag})}))
	}
	require.Eventually(t, func() bool { return s.MaxOffset("T", 0) == 20 }, time.Second, time.Millisecond)
	r, err := s.GetMessages("T", 0, 0, 32, tagFilter{"B"})
	require.NoError(t, err)
	require.Equal(t, Found, r.Status)
	require.Equal(t, 5, r.Count)
	require.Equal(t, int64(20), r.NextBeginOffset)

	r, err = s.GetMessages("T", 0, 1, 2, tagFilter{"C"})
	require.NoError(t, err)
	require.Equal(t, NoMatchedMessage, r.Status)
	require.Equal(t, int64(20), r.NextBeginOffset)
}

func TestStoreBatchAndSegmentRoll(t *testing.T) {
	o := testOptions(vfs.NewMem())
	s := openStore(t, o)
	body := bytes.Repeat([]byte("x"), 3000)
	const batches = 100
	for i := range batches {
		var msgs []*message.Message
		for j := range 4 {
			m := newMsg("B", 1, "", map[string]string{"KEYS": fmt.Sprintf("k%d-%d", i, j)})
			m.Body = append(append([]byte{}, body...), byte(i), byte(j))
			msgs = append(msgs, m)
		}
		require.NoError(t, s.PutSync(msgs))
		for j, m := range msgs {
			require.Equal(t, int64(i*4+j), m.QueueOffset)
		}
	}
	require.Eventually(t, func() bool { return s.MaxOffset("B", 1) == batches*4 }, 2*time.Second, time.Millisecond)
	require.Greater(t, len(s.clog.segs), 5, "the log must span several segments")
	check := func(s *Store) {
		got := pullAll(t, s, "B", 1)
		require.Len(t, got, batches*4)
		for i, m := range got {
			require.Equal(t, byte(i/4), m.Body[len(m.Body)-2])
			require.Equal(t, byte(i%4), m.Body[len(m.Body)-1])
		}
		recs, err := s.QueryByKey("B", "k42-3", 10, 0, time.Now().Add(time.Hour).UnixMilli())
		require.NoError(t, err)
		require.Len(t, recs, 1)
	}
	check(s)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	s = openStore(t, o)
	defer s.Close()
	check(s)
}

func TestStoreConcurrentPutsKeepQueuesDense(t *testing.T) {
	o := testOptions(vfs.NewMem())
	o.Flush = SyncFlush
	o.SegmentSize = 1 << 20
	s := openStore(t, o)
	defer s.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				require.NoError(t, s.PutSync([]*message.Message{newMsg("C", int32(g%2), fmt.Sprintf("%d-%d", g, i), nil)}))
			}
		})
	}
	wg.Wait()
	require.Eventually(t, func() bool { return s.MaxOffset("C", 0)+s.MaxOffset("C", 1) == 800 }, 2*time.Second, time.Millisecond)
	require.Len(t, pullAll(t, s, "C", 0), 400)
	require.Len(t, pullAll(t, s, "C", 1), 400)
}

func TestStoreRebuildsDeletedConsumeQueues(t *testing.T) {
	fs := vfs.NewMem()
	o := testOptions(fs)
	s := openStore(t, o)
	for i := range 200 {
		require.NoError(t, s.PutSync([]*message.Message{newMsg("R", int32(i%2), fmt.Sprint(i), map[string]string{"KEYS": fmt.Sprint("key", i)})}))
	}
	require.NoError(t, s.Close())
	require.NoError(t, fs.RemoveAll("/data/consumequeue"))
	require.NoError(t, fs.RemoveAll("/data/index"))
	s = openStore(t, o)
	defer s.Close()
	require.Len(t, pullAll(t, s, "R", 0), 100)
	require.Len(t, pullAll(t, s, "R", 1), 100)
	recs, err := s.QueryByKey("R", "key77", 4, 0, time.Now().Add(time.Hour).UnixMilli())
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.NoError(t, s.PutSync([]*message.Message{newMsg("R", 0, "next", nil)}))
	m := newMsg("R", 1, "next", nil)
	require.NoError(t, s.PutSync([]*message.Message{m}))
	require.Equal(t, int64(100), m.QueueOffset, "queue offsets continue after a rebuild")
}

func TestStoreOffsetByTime(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	o := testOptions(vfs.NewMem())
	o.Now = func() time.Time { return now }
	s := openStore(t, o)
	defer s.Close()
	for i := range 10 {
		now = now.Add(time.Second)
		require.NoError(t, s.PutSync([]*message.Message{newMsg("T", 0, fmt.Sprint(i), nil)}))
	}
	require.Eventually(t, func() bool { return s.MaxOffset("T", 0) == 10 }, time.Second, time.Millisecond)
	base := int64(1_700_000_000_000)
	for _, tt := range []struct{ ts, want int64 }{
		{base, 0}, {base + 1000, 0}, {base + 1500, 1}, {base + 5000, 4}, {base + 10_000, 9}, {base + 99_000, 10},
	} {
		got, err := s.OffsetByTime("T", 0, tt.ts)
		require.NoError(t, err)
		require.Equal(t, tt.want, got, "ts %d", tt.ts)
	}
}

func TestStoreRetentionDeletesExpiredSegments(t *testing.T) {
	fs := vfs.NewMem()
	o := testOptions(fs)
	o.FileReservedTime = time.Millisecond
	s := openStore(t, o)
	defer s.Close()
	body := string(bytes.Repeat([]byte("r"), 4000))
	for i := range 200 {
		require.NoError(t, s.PutSync([]*message.Message{newMsg("T", 0, body, nil)}))
		_ = i
	}
	require.Eventually(t, func() bool { return s.MaxOffset("T", 0) == 200 }, time.Second, time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	segsBefore := len(s.clog.segs)
	n, err := s.Clean(true)
	require.NoError(t, err)
	require.Positive(t, n)
	require.Len(t, s.clog.segs, segsBefore-n)
	min := s.MinOffset("T", 0)
	require.Positive(t, min)
	r, err := s.GetMessages("T", 0, 0, 32, nil)
	require.NoError(t, err)
	require.Equal(t, OffsetTooSmall, r.Status)
	require.Equal(t, min, r.NextBeginOffset)
	require.Len(t, pullAll(t, s, "T", 0), int(200-min))
}

func TestStoreRejectsOversizedAndInvalid(t *testing.T) {
	s := openStore(t, testOptions(vfs.NewMem()))
	defer s.Close()
	m := newMsg("T", 0, "", nil)
	m.Body = make([]byte, 17<<10)
	require.ErrorIs(t, s.PutSync([]*message.Message{m}), ErrMessageTooLarge)
	require.Error(t, s.PutSync([]*message.Message{newMsg("", 0, "x", nil)}))
	require.Error(t, s.PutSync(nil))
}

func TestStoreOptionsValidateNamesTheOption(t *testing.T) {
	o := testOptions(vfs.NewMem())
	o.SegmentSize = 10
	o.DiskWarningRatio = 1.5
	err := o.Validate()
	require.ErrorContains(t, err, "SegmentSize 10")
	require.ErrorContains(t, err, "DiskWarningRatio 1.5")
}

func TestStoreRefusesSecondOpenAndNewerFormat(t *testing.T) {
	fs := vfs.NewMem()
	o := testOptions(fs)
	s := openStore(t, o)
	_, err := Open(o)
	require.Error(t, err, "the directory is locked")
	require.NoError(t, s.Close())

	f, err := fs.Create("/data/FORMAT")
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("qianlang-store 99\n"), 0)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, err = Open(o)
	require.ErrorContains(t, err, "format version 99")
}

func TestStoreRetentionRunsAtOnceAboveDiskRatio(t *testing.T) {
	mem := vfs.NewMem()
	o := testOptions(mem)
	o.FileReservedTime = time.Millisecond
	o.DeleteWhen = nil // never the hour: only the disk ratio can trigger
	o.DiskWarningRatio = 1
	s := openStore(t, o)
	defer s.Close()
	body := string(bytes.Repeat([]byte("r"), 4000))
	for range 200 {
		require.NoError(t, s.PutSync([]*message.Message{newMsg("T", 0, body, nil)}))
	}
	require.Eventually(t, func() bool { return s.MaxOffset("T", 0) == 200 }, time.Second, time.Millisecond)
	time.Sleep(5 * time.Millisecond)

	s.checkDisk()
	n, err := s.Clean(false)
	require.NoError(t, err)
	require.Zero(t, n, "below diskMaxUsedSpaceRatio and outside deleteWhen nothing is deleted")

	u, _ := mem.Usage("/")
	mem.SetCapacity(uint64(float64(u.Total-u.Free) / 0.8)) // 80% used
	s.checkDisk()
	n, err = s.Clean(false)
	require.NoError(t, err)
	require.Positive(t, n, "above diskMaxUsedSpaceRatio expired segments go at once")
}
