package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	"qianlang.io/mq/vfs"
)

// cqEntrySize is the size of a ConsumeQueue entry: commit-log offset (8),
// record size (4), tags code (8).
const cqEntrySize = 20

// CQEntry is one ConsumeQueue entry.
type CQEntry struct {
	PhysicalOffset int64
	Size           int32
	TagsCode       int64
}

func putCQEntry(b []byte, e CQEntry) {
	binary.BigEndian.PutUint64(b, uint64(e.PhysicalOffset))
	binary.BigEndian.PutUint32(b[8:], uint32(e.Size))
	binary.BigEndian.PutUint64(b[12:], uint64(e.TagsCode))
}

func getCQEntry(b []byte) CQEntry {
	return CQEntry{
		PhysicalOffset: int64(binary.BigEndian.Uint64(b)),
		Size:           int32(binary.BigEndian.Uint32(b[8:])),
		TagsCode:       int64(binary.BigEndian.Uint64(b[12:])),
	}
}

// cqFile is one ConsumeQueue file holding entries [base, base+perFile).
type cqFile struct {
	base  int64 // queue offset of its first entry
	f     vfs.File
	path  string
	dirty atomic.Bool
}

// consumeQueue indexes one (topic, queue id) into the CommitLog. The
// dispatcher is its only writer; readers may run concurrently.
type consumeQueue struct {
	topic   string
	queueID int32
	dir     string
	fs      vfs.FS
	perFile int64

	mu    sync.RWMutex
	files []*cqFile // ascending base; guarded by mu

	minOffset atomic.Int64 // first readable queue offset
	maxOffset atomic.Int64 // next queue offset to be written

	// The newest entries wait here until cqWriteBuf bytes of them have
	// gathered or the periodic flush comes, so a busy queue costs one
	// write per few hundred entries rather than one per dispatch round.
	// Readers find them here. A crash loses nothing: the checkpoint's
	// dispatched offset moves only after sync has written them, and
	// recovery re-dispatches from it.
	pmu      sync.Mutex
	pending  []byte // entries from queue offset pendFrom on
	pendFrom int64
}

// cqWriteBuf is how many bytes of entries a queue gathers before it writes
// them (204 entries).
const cqWriteBuf = 4080

func newConsumeQueue(fs vfs.FS, root, topic string, queueID int32, perFile int64) *consumeQueue {
	return &consumeQueue{
		topic: topic, queueID: queueID, fs: fs, perFile: perFile,
		dir: filepath.Join(root, topic, strconv.Itoa(int(queueID))),
	}
}

// load opens the existing files and finds the last written entry.
func (q *consumeQueue) load() error {
	names, err := q.fs.List(q.dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("store: list consume queue %s: %w", q.dir, err)
	}
	fileBytes := q.perFile * cqEntrySize
	for _, name := range names {
		byteOff, err := strconv.ParseInt(name, 10, 64)
		if len(name) != 20 || err != nil || byteOff%fileBytes != 0 {
			return fmt.Errorf("store: unexpected file %q in %s", name, q.dir)
		}
		path := filepath.Join(q.dir, name)
		f, err := q.fs.OpenReadWrite(path)
		if err != nil {
			return fmt.Errorf("store: open consume queue file: %w", err)
		}
		q.files = append(q.files, &cqFile{base: byteOff / cqEntrySize, f: f, path: path})
		// A crash may leave a new file shorter than its full size.
		if size, err := f.Size(); err != nil || size < fileBytes {
			if err := f.Truncate(fileBytes); err != nil {
				return fmt.Errorf("store: extend consume queue file %s: %w", path, err)
			}
		}
	}
	if len(q.files) == 0 {
		return nil
	}
	q.minOffset.Store(q.files[0].base)
	max, err := q.scanMax()
	if err != nil {
		return err
	}
	q.maxOffset.Store(max)
	return nil
}

// scanMax finds the offset after the last non-empty entry, walking back
// from the newest file. An entry is empty when its size is 0.
func (q *consumeQueue) scanMax() (int64, error) {
	buf := make([]byte, q.perFile*cqEntrySize)
	for i := len(q.files) - 1; i >= 0; i-- {
		f := q.files[i]
		n, err := f.f.ReadAt(buf, 0)
		if err != nil && n == 0 && !isEOF(err) {
			return 0, fmt.Errorf("store: read consume queue %s: %w", f.path, err)
		}
		for j := n/cqEntrySize - 1; j >= 0; j-- {
			if binary.BigEndian.Uint32(buf[j*cqEntrySize+8:]) != 0 {
				return f.base + int64(j) + 1, nil
			}
		}
	}
	return q.files[0].base, nil
}

func (q *consumeQueue) fileFor(off int64) *cqFile {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if len(q.files) == 0 {
		return nil
	}
	i := (off - q.files[0].base) / q.perFile
	if off < q.files[0].base || i >= int64(len(q.files)) {
		return nil
	}
	return q.files[i]
}

func (q *consumeQueue) createFile(base int64) (*cqFile, error) {
	if err := vfs.MkdirAllSync(q.fs, q.dir); err != nil {
		return nil, fmt.Errorf("store: create consume queue dir: %w", err)
	}
	path := filepath.Join(q.dir, fmt.Sprintf("%020d", base*cqEntrySize))
	f, err := q.fs.Create(path)
	if err != nil {
		return nil, fmt.Errorf("store: create consume queue file: %w", err)
	}
	if err := f.Truncate(q.perFile * cqEntrySize); err != nil {
		_ = f.Close()
		_ = q.fs.Remove(path)
		return nil, fmt.Errorf("store: size consume queue file: %w", err)
	}
	if err := q.fs.SyncDir(q.dir); err != nil {
		_ = f.Close()
		_ = q.fs.Remove(path)
		return nil, fmt.Errorf("store: sync consume queue dir: %w", err)
	}
	cf := &cqFile{base: base, f: f, path: path}
	q.mu.Lock()
	q.files = append(q.files, cf)
	q.mu.Unlock()
	return cf, nil
}

// write stores encoded entries (a multiple of 20 bytes) starting at queue
// offset from and publishes the new max offset. The entries are readable
// at once; they reach the files when enough have gathered, when the next
// entries are not contiguous with them, or at sync. Writing below the max
// overwrites (re-dispatch after recovery writes the same bytes again).
func (q *consumeQueue) write(from int64, entries []byte) error {
	q.pmu.Lock()
	defer q.pmu.Unlock()
	if len(q.pending) > 0 && from != q.pendEndLocked() {
		if err := q.writePendingLocked(); err != nil {
			return err
		}
	}
	if len(q.pending) == 0 {
		q.mu.RLock()
		empty := len(q.files) == 0
		q.mu.RUnlock()
		if empty && q.maxOffset.Load() <= from {
			// The first file is the one holding from, so a queue rebuilt
			// after its old files were deleted keeps its offsets; nothing
			// before from is readable.
			q.minOffset.Store(from)
		}
		q.pendFrom = from
	}
	q.pending = append(q.pending, entries...)
	if end := q.pendEndLocked(); end > q.maxOffset.Load() {
		q.maxOffset.Store(end)
	}
	if len(q.pending) >= cqWriteBuf {
		return q.writePendingLocked()
	}
	return nil
}

func (q *consumeQueue) pendEndLocked() int64 {
	return q.pendFrom + int64(len(q.pending)/cqEntrySize)
}

// writePendingLocked writes the gathered entries to the files. On failure
// they stay gathered, readable, and are written again next time.
func (q *consumeQueue) writePendingLocked() error {
	if len(q.pending) == 0 {
		return nil
	}
	if err := q.writeFiles(q.pendFrom, q.pending); err != nil {
		return err
	}
	q.pending = q.pending[:0]
	return nil
}

// writeFiles writes encoded entries from queue offset from, creating files
// as needed.
func (q *consumeQueue) writeFiles(from int64, entries []byte) error {
	off := from
	for len(entries) > 0 {
		f := q.fileFor(off)
		if f == nil {
			var err error
			base := off - off%q.perFile
			if f, err = q.createFile(base); err != nil {
				return err
			}
		}
		n := min(int64(len(entries)), (f.base+q.perFile-off)*cqEntrySize)
		if _, err := f.f.WriteAt(entries[:n], (off-f.base)*cqEntrySize); err != nil {
			return fmt.Errorf("store: write consume queue %s: %w", f.path, err)
		}
		f.dirty.Store(true)
		off += n / cqEntrySize
		entries = entries[n:]
	}
	return nil
}

// read returns up to n entries from queue offset from, stopping at the max.
func (q *consumeQueue) read(from int64, n int) ([]CQEntry, error) {
	max := q.maxOffset.Load()
	if from >= max || n <= 0 {
		return nil, nil
	}
	n = int(min(int64(n), max-from))
	out := make([]CQEntry, 0, n)
	var buf []byte
	off := from
	for len(out) < n {
		want := int64(n - len(out))
		got, fileEnd := q.readPending(off, want, &out)
		if got > 0 {
			off += got
			continue
		}
		f := q.fileFor(off)
		if f == nil {
			return out, fmt.Errorf("store: consume queue %s offset %d: %w", q.dir, off, ErrDeleted)
		}
		k := min(want, f.base+q.perFile-off, fileEnd-off)
		if buf == nil {
			buf = make([]byte, want*cqEntrySize)
		}
		b := buf[:k*cqEntrySize]
		if _, err := f.f.ReadAt(b, (off-f.base)*cqEntrySize); err != nil {
			return out, fmt.Errorf("store: read consume queue %s: %w", f.path, err)
		}
		for i := int64(0); i < k; i++ {
			out = append(out, getCQEntry(b[i*cqEntrySize:]))
		}
		off += k
	}
	return out, nil
}

// truncateAbove removes the tail entries that point past commit-log offset
// end or are empty (recovery after a crash); re-dispatch then rewrites
// whatever the CommitLog still holds.
func (q *consumeQueue) truncateAbove(end int64) error {
	max := q.maxOffset.Load()
	min := q.minOffset.Load()
	cut := max
	for cut > min {
		es, err := q.read(cut-1, 1)
		if err != nil || len(es) == 0 {
			return err
		}
		// Empty entries count as damage too: a crash can persist a later
		// file's entries and lose an earlier file's tail.
		if es[0].Size > 0 && es[0].PhysicalOffset+int64(es[0].Size) <= end {
			break
		}
		cut--
	}
	if cut == max {
		return nil
	}
	zeros := make([]byte, (max-cut)*cqEntrySize)
	if err := q.writeRaw(cut, zeros); err != nil {
		return err
	}
	q.maxOffset.Store(cut)
	return nil
}

// readPending appends up to n gathered entries from queue offset off to
// out and returns how many it took. When off is not gathered, it returns
// how far the files hold entries from off (the gathered run's start, or
// no bound).
func (q *consumeQueue) readPending(off, n int64, out *[]CQEntry) (int64, int64) {
	q.pmu.Lock()
	defer q.pmu.Unlock()
	if len(q.pending) == 0 {
		return 0, math.MaxInt64
	}
	if off < q.pendFrom {
		return 0, q.pendFrom
	}
	k := min(n, q.pendEndLocked()-off)
	if k <= 0 {
		return 0, math.MaxInt64
	}
	b := q.pending[(off-q.pendFrom)*cqEntrySize:]
	for i := range k {
		*out = append(*out, getCQEntry(b[i*cqEntrySize:]))
	}
	return k, 0
}

// writeRaw overwrites entries in the files from queue offset from (after
// writing what is gathered, so that nothing older lands on top).
func (q *consumeQueue) writeRaw(from int64, b []byte) error {
	q.pmu.Lock()
	defer q.pmu.Unlock()
	if err := q.writePendingLocked(); err != nil {
		return err
	}
	for len(b) > 0 {
		f := q.fileFor(from)
		if f == nil {
			return nil
		}
		n := min(int64(len(b)), (f.base+q.perFile-from)*cqEntrySize)
		if _, err := f.f.WriteAt(b[:n], (from-f.base)*cqEntrySize); err != nil {
			return fmt.Errorf("store: write consume queue %s: %w", f.path, err)
		}
		f.dirty.Store(true)
		from += n / cqEntrySize
		b = b[n:]
	}
	return nil
}

// sync writes the gathered entries and fsyncs the files written since the
// last sync. It lets go of the gathering buffer: a queue that is busy gets
// a new one, an idle one holds none.
func (q *consumeQueue) sync() error {
	q.pmu.Lock()
	err := q.writePendingLocked()
	if err == nil {
		q.pending = nil
	}
	q.pmu.Unlock()
	if err != nil {
		return err
	}
	q.mu.RLock()
	files := append([]*cqFile(nil), q.files...)
	q.mu.RUnlock()
	for _, f := range files {
		if f.dirty.Swap(false) {
			if err := f.f.Sync(); err != nil {
				f.dirty.Store(true)
				return fmt.Errorf("store: fsync %s: %w", f.path, err)
			}
		}
	}
	return nil
}

// correctMin moves the min offset to the first entry whose data is still in
// the CommitLog (at or after clMin) and deletes files wholly below it,
// always keeping the newest file. It returns how many files it removed.
func (q *consumeQueue) correctMin(clMin int64) (int, error) {
	removed := 0
	for {
		q.mu.RLock()
		if len(q.files) < 2 {
			q.mu.RUnlock()
			break
		}
		first, next := q.files[0], q.files[1]
		q.mu.RUnlock()
		es, err := q.read(next.base-1, 1)
		if err != nil || len(es) == 0 || es[0].PhysicalOffset >= clMin {
			break
		}
		q.mu.Lock()
		q.files = q.files[1:]
		q.mu.Unlock()
		_ = first.f.Close()
		if err := q.fs.Remove(first.path); err != nil {
			return removed, fmt.Errorf("store: remove consume queue file: %w", err)
		}
		removed++
		q.minOffset.Store(next.base)
	}
	// Within the first file, skip entries whose data is gone.
	lo, hi := q.minOffset.Load(), q.maxOffset.Load()
	for lo < hi {
		mid := lo + (hi-lo)/2
		es, err := q.read(mid, 1)
		if err != nil || len(es) == 0 {
			return removed, err
		}
		if es[0].PhysicalOffset >= clMin {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo > q.minOffset.Load() {
		q.minOffset.Store(lo)
	}
	return removed, nil
}

// close closes the files. Entries still gathered are dropped: they are
// past the checkpoint's dispatched offset, so recovery writes them again
// (Store.Close flushes first, which writes them).
func (q *consumeQueue) close() error {
	q.pmu.Lock()
	q.pending = nil
	q.pmu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	var errs []error
	for _, f := range q.files {
		errs = append(errs, f.f.Close())
	}
	q.files = nil
	return errors.Join(errs...)
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }
