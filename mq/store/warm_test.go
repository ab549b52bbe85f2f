package store

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/message"
	"qianlang.io/mq/vfs"
)

// A segment prepared in the background is zero-filled at a pace, and the
// fill stops when the log rolls into it: no zero lands in a file after its
// first data write, at least one segment is handed over part-filled (the
// roll did not wait for the rest), and everything written reads back.
func TestWarmFillStopsWhenTheLogRollsIn(t *testing.T) {
	rec := &fillFS{FS: vfs.NewMem(), files: map[string]*fillLog{}}
	o := testOptions(rec)
	o.Flush = SyncFlush
	o.WarmSegments = true
	o.WarmRate = 16 << 10 // a whole 128 KiB segment would take 8 s
	s := openStore(t, o)
	var want []string
	for i := range 300 {
		body := fmt.Sprintf("warm-%03d-%0900d", i, i)
		require.NoError(t, s.PutSync([]*message.Message{newMsg("W", 0, body, nil)}))
		want = append(want, body)
	}
	require.GreaterOrEqual(t, len(s.clog.segs), 3, "the log rolled at least twice")
	s.waitDispatched(s.confirmed.Load())
	var got []string
	for _, m := range pullAll(t, s, "W", 0) {
		got = append(got, string(m.Body))
	}
	require.Equal(t, want, got)
	require.NoError(t, s.Close())

	rec.mu.Lock()
	defer rec.mu.Unlock()
	partial := 0
	for path, fl := range rec.files {
		require.Falsef(t, fl.zeroAfterData, "%s: zeros written after data", path)
		if strings.Contains(path, "commitlog") && fl.written && fl.zeroed < o.SegmentSize {
			partial++
		}
	}
	require.NotZero(t, partial, "a segment claimed by the roll was still filled to its end")
}

// fillFS records, per file, how much was zero-filled and whether a fill
// came after a data write.
type fillFS struct {
	vfs.FS
	mu    sync.Mutex
	files map[string]*fillLog
}

type fillLog struct {
	zeroed        int64
	written       bool
	zeroAfterData bool
}

func (f *fillFS) Create(name string) (vfs.File, error) {
	file, err := f.FS.Create(name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.files[name] = &fillLog{}
	f.mu.Unlock()
	return &fillFile{File: file, fs: f, name: name}, nil
}

type fillFile struct {
	vfs.File
	fs   *fillFS
	name string
}

func (f *fillFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	f.fs.files[f.name].written = true
	f.fs.mu.Unlock()
	return f.File.WriteAt(p, off)
}

func (f *fillFile) Preallocate(off, n int64) error {
	f.fs.mu.Lock()
	fl := f.fs.files[f.name]
	fl.zeroed += n
	fl.zeroAfterData = fl.zeroAfterData || fl.written
	f.fs.mu.Unlock()
	return f.File.Preallocate(off, n)
}
