package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"qianlang.io/mq/message"
	"qianlang.io/mq/vfs"
)

// IndexFile layout (see doc.go): a 40-byte header, slotCount 4-byte hash
// slots, then entryCount 20-byte entries. Entry numbers start at 1; slot
// value 0 and prev 0 mean "none".
const (
	indexHeaderSize = 40
	indexEntrySize  = 20
	indexWriteBuf   = 256 << 10
)

// indexFile is one IndexFile. The newest one is "active": its slot table
// lives in memory and is written out only when the file is sealed (full or
// on a clean close); its entries are appended to the file as they come, so
// after a crash the slots are rebuilt by replaying the entries.
type indexFile struct {
	path      string
	f         vfs.File
	slotCount int
	maxCount  int

	mu       sync.RWMutex
	beginTS  int64 // ms, store time of the first entry
	endTS    int64
	beginPhy int64
	endPhy   int64 // physical offset of the last indexed record
	count    int   // entries written (numbered 1..count)
	slots    []uint32
	pending  []byte // entries not yet written to the file
	pendFrom int    // number of the first pending entry
	sealed   bool
}

func indexEntryOffset(slotCount, n int) int64 {
	return indexHeaderSize + int64(slotCount)*4 + int64(n-1)*indexEntrySize
}

// keyHash is Java's Math.abs(String.hashCode()) of the index key
// "topic#key", computed without building the key.
func keyHash(topic, key string) uint32 {
	return absHash(message.JavaHash(message.JavaHash(message.JavaHash(0, topic), "#"), key))
}

// keyHashBytes is keyHash for a key in a record's bytes.
func keyHashBytes(topic string, key []byte) uint32 {
	return absHash(message.JavaHash(message.JavaHash(message.JavaHash(0, topic), "#"), key))
}

func absHash(h int32) uint32 {
	if h < 0 {
		if h == -1<<31 {
			return 0
		}
		h = -h
	}
	return uint32(h)
}

// add indexes key for the record at phy stored at ts. It reports false when
// the file is full, and whether enough entries are buffered to write them.
func (x *indexFile) add(h uint32, phy, ts int64) (added, flush bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.count >= x.maxCount {
		return false, false
	}
	if x.count == 0 {
		x.beginTS, x.beginPhy = ts, phy
	}
	slot := int(h % uint32(x.slotCount))
	n := x.count + 1
	var e [indexEntrySize]byte
	binary.BigEndian.PutUint32(e[0:], h)
	binary.BigEndian.PutUint64(e[4:], uint64(phy))
	binary.BigEndian.PutUint32(e[12:], uint32(max(0, (ts-x.beginTS)/1000)))
	binary.BigEndian.PutUint32(e[16:], x.slots[slot])
	if len(x.pending) == 0 {
		x.pendFrom = n
	}
	x.pending = append(x.pending, e[:]...)
	x.slots[slot] = uint32(n)
	x.count = n
	x.endTS, x.endPhy = ts, phy
	return true, len(x.pending) >= indexWriteBuf
}

// writePending writes the buffered entries to the file.
func (x *indexFile) writePending() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.writePendingLocked()
}

func (x *indexFile) writePendingLocked() error {
	if len(x.pending) == 0 {
		return nil
	}
	if _, err := x.f.WriteAt(x.pending, indexEntryOffset(x.slotCount, x.pendFrom)); err != nil {
		return fmt.Errorf("store: write index %s: %w", x.path, err)
	}
	x.pending = x.pending[:0]
	return nil
}

// entry reads entry n (1-based).
func (x *indexFile) entryLocked(n int) ([indexEntrySize]byte, error) {
	var e [indexEntrySize]byte
	if n >= x.pendFrom && len(x.pending) > 0 && n < x.pendFrom+len(x.pending)/indexEntrySize {
		copy(e[:], x.pending[(n-x.pendFrom)*indexEntrySize:])
		return e, nil
	}
	if _, err := x.f.ReadAt(e[:], indexEntryOffset(x.slotCount, n)); err != nil {
		return e, fmt.Errorf("store: read index %s: %w", x.path, err)
	}
	return e, nil
}

func (x *indexFile) slotLocked(slot int) (uint32, error) {
	if x.slots != nil {
		return x.slots[slot], nil
	}
	var b [4]byte
	if _, err := x.f.ReadAt(b[:], indexHeaderSize+int64(slot)*4); err != nil {
		return 0, fmt.Errorf("store: read index %s: %w", x.path, err)
	}
	return binary.BigEndian.Uint32(b[:]), nil
}

// lookup returns the physical offsets indexed under key hash h with a store
// time in [begin, end] ms, newest first, at most max.
func (x *indexFile) lookup(h uint32, begin, end int64, max int) ([]int64, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.count == 0 || x.endTS < begin || x.beginTS > end {
		return nil, nil
	}
	n, err := x.slotLocked(int(h % uint32(x.slotCount)))
	if err != nil {
		return nil, err
	}
	var out []int64
	for steps := 0; n > 0 && int(n) <= x.count && len(out) < max && steps < x.count; steps++ {
		e, err := x.entryLocked(int(n))
		if err != nil {
			return out, err
		}
		ts := x.beginTS + int64(binary.BigEndian.Uint32(e[12:]))*1000
		if binary.BigEndian.Uint32(e[0:]) == h && ts >= begin-999 && ts <= end {
			out = append(out, int64(binary.BigEndian.Uint64(e[4:])))
		}
		prev := binary.BigEndian.Uint32(e[16:])
		if prev >= n {
			break // chains only point backwards
		}
		n = prev
	}
	return out, nil
}

// seal writes the pending entries, the slot table and the header, fsyncs,
// and frees the in-memory slots.
func (x *indexFile) seal() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.writeAllLocked(); err != nil {
		return err
	}
	x.slots = nil
	x.sealed = true
	return nil
}

// writeAllLocked writes everything and the header, then fsyncs.
func (x *indexFile) writeAllLocked() error {
	if err := x.writePendingLocked(); err != nil {
		return err
	}
	if x.slots != nil {
		buf := make([]byte, 4*len(x.slots))
		for i, s := range x.slots {
			binary.BigEndian.PutUint32(buf[4*i:], s)
		}
		if _, err := x.f.WriteAt(buf, indexHeaderSize); err != nil {
			return fmt.Errorf("store: write index slots %s: %w", x.path, err)
		}
	}
	if err := x.f.Sync(); err != nil {
		return fmt.Errorf("store: fsync index %s: %w", x.path, err)
	}
	if _, err := x.f.WriteAt(x.headerLocked(), 0); err != nil {
		return fmt.Errorf("store: write index header %s: %w", x.path, err)
	}
	if err := x.f.Sync(); err != nil {
		return fmt.Errorf("store: fsync index %s: %w", x.path, err)
	}
	return nil
}

func (x *indexFile) headerLocked() []byte {
	h := make([]byte, indexHeaderSize)
	binary.BigEndian.PutUint64(h[0:], uint64(x.beginTS))
	binary.BigEndian.PutUint64(h[8:], uint64(x.endTS))
	binary.BigEndian.PutUint64(h[16:], uint64(x.beginPhy))
	binary.BigEndian.PutUint64(h[24:], uint64(x.endPhy))
	binary.BigEndian.PutUint32(h[32:], uint32(x.slotCount))
	binary.BigEndian.PutUint32(h[36:], uint32(x.count))
	return h
}

// indexService owns the IndexFiles of a store.
type indexService struct {
	fs        vfs.FS
	dir       string
	slotCount int
	maxCount  int

	mu    sync.RWMutex
	files []*indexFile // oldest first; the last one is active
}

func newIndexService(o *Options) *indexService {
	return &indexService{fs: o.FS, dir: filepath.Join(o.Dir, "index"), slotCount: o.IndexSlots, maxCount: o.IndexEntries}
}

// load opens the IndexFiles. Sealed files are used as they are; the newest
// unsealed one gets its slots rebuilt from its entries, keeping only those
// that point below clEnd in ascending order. It returns the physical offset
// of the newest indexed record (-1 when none), from which indexing resumes.
func (s *indexService) load(clEnd int64, storeTime func(int64) (int64, error)) (int64, error) {
	if err := vfs.MkdirAllSync(s.fs, s.dir); err != nil {
		return -1, fmt.Errorf("store: create index dir: %w", err)
	}
	names, err := s.fs.List(s.dir)
	if err != nil {
		return -1, fmt.Errorf("store: list index dir: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.Trim(name, "0123456789") != "" {
			return -1, fmt.Errorf("store: unexpected file %q in %s", name, s.dir)
		}
		x, err := s.openFile(filepath.Join(s.dir, name), clEnd, storeTime)
		if err != nil {
			return -1, err
		}
		if x == nil {
			continue
		}
		s.files = append(s.files, x)
	}
	// Only the newest file may stay open for appends.
	for i, x := range s.files {
		if !x.sealed && i < len(s.files)-1 {
			if err := x.seal(); err != nil {
				return -1, err
			}
		}
	}
	if n := len(s.files); n > 0 {
		x := s.files[n-1]
		return x.endPhy, nil
	}
	return -1, nil
}

// openFile opens one IndexFile; it returns nil for an empty file, which it
// removes.
func (s *indexService) openFile(path string, clEnd int64, storeTime func(int64) (int64, error)) (*indexFile, error) {
	f, err := s.fs.OpenReadWrite(path)
	if err != nil {
		return nil, fmt.Errorf("store: open index: %w", err)
	}
	h := make([]byte, indexHeaderSize)
	if _, err := f.ReadAt(h, 0); err != nil && !isEOF(err) {
		_ = f.Close()
		return nil, fmt.Errorf("store: read index header %s: %w", path, err)
	}
	x := &indexFile{path: path, f: f, slotCount: s.slotCount, maxCount: s.maxCount}
	slots := int(binary.BigEndian.Uint32(h[32:]))
	count := int(binary.BigEndian.Uint32(h[36:]))
	if slots == s.slotCount && count == s.maxCount {
		x.beginTS = int64(binary.BigEndian.Uint64(h[0:]))
		x.endTS = int64(binary.BigEndian.Uint64(h[8:]))
		x.beginPhy = int64(binary.BigEndian.Uint64(h[16:]))
		x.endPhy = int64(binary.BigEndian.Uint64(h[24:]))
		x.count, x.sealed = count, true
		return x, nil
	}
	if err := x.replay(clEnd, storeTime); err != nil {
		_ = f.Close()
		return nil, err
	}
	if x.count == 0 {
		_ = f.Close()
		return nil, s.fs.Remove(path)
	}
	return x, nil
}

// replay rebuilds the slots of an unsealed file from its entries, keeping
// the prefix of entries that point below clEnd in ascending order, and
// reads the store times of its first and last records back from the
// CommitLog.
func (x *indexFile) replay(clEnd int64, storeTime func(phy int64) (int64, error)) error {
	x.slots = make([]uint32, x.slotCount)
	buf := make([]byte, 64<<10)
	lastPhy := int64(-1)
	n := 1
scan:
	for n <= x.maxCount {
		k, err := x.f.ReadAt(buf, indexEntryOffset(x.slotCount, n))
		if k < indexEntrySize {
			if err != nil && !isEOF(err) {
				return fmt.Errorf("store: read index %s: %w", x.path, err)
			}
			break
		}
		for i := 0; i+indexEntrySize <= k && n <= x.maxCount; i, n = i+indexEntrySize, n+1 {
			e := buf[i : i+indexEntrySize]
			h := binary.BigEndian.Uint32(e[0:])
			phy := int64(binary.BigEndian.Uint64(e[4:]))
			prev := binary.BigEndian.Uint32(e[16:])
			if phy <= 0 || phy < lastPhy || phy >= clEnd || int(prev) >= n {
				break scan
			}
			x.slots[h%uint32(x.slotCount)] = uint32(n)
			x.count, x.endPhy, lastPhy = n, phy, phy
			if n == 1 {
				x.beginPhy = phy
			}
		}
	}
	if x.count == 0 {
		return nil
	}
	var err error
	if x.beginTS, err = storeTime(x.beginPhy); err != nil {
		return fmt.Errorf("store: index %s: first record: %w", x.path, err)
	}
	if x.endTS, err = storeTime(x.endPhy); err != nil {
		return fmt.Errorf("store: index %s: last record: %w", x.path, err)
	}
	// Entries past the valid prefix (a torn write) are overwritten by the
	// next appends; lookups never read past count.
	return nil
}

// ErrIndexDisabled is returned by key queries when the index is off.
var ErrIndexDisabled = errors.New("store: message index disabled")

// active returns the newest file, creating one when there is none or the
// newest is sealed.
func (s *indexService) active(ts int64) (*indexFile, error) {
	s.mu.RLock()
	n := len(s.files)
	var x *indexFile
	if n > 0 && !s.files[n-1].sealed {
		x = s.files[n-1]
	}
	s.mu.RUnlock()
	if x != nil {
		return x, nil
	}
	return s.create(ts)
}

func (s *indexService) create(ts int64) (*indexFile, error) {
	name := time.UnixMilli(ts).UTC().Format("20060102150405000")
	path := filepath.Join(s.dir, name)
	for i := 1; ; i++ {
		if _, err := s.fs.Stat(path); errors.Is(err, os.ErrNotExist) {
			break
		}
		path = filepath.Join(s.dir, fmt.Sprintf("%s%03d", name, i))
	}
	f, err := s.fs.Create(path)
	if err != nil {
		return nil, fmt.Errorf("store: create index: %w", err)
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("store: sync index dir: %w", err)
	}
	x := &indexFile{path: path, f: f, slotCount: s.slotCount, maxCount: s.maxCount, slots: make([]uint32, s.slotCount)}
	s.mu.Lock()
	s.files = append(s.files, x)
	s.mu.Unlock()
	return x, nil
}

// put indexes a key hash (keyHash) for a record.
func (s *indexService) put(h uint32, phy, ts int64) error {
	for range 2 {
		x, err := s.active(ts)
		if err != nil {
			return err
		}
		if added, flush := x.add(h, phy, ts); added {
			if flush {
				return x.writePending()
			}
			return nil
		}
		if err := x.seal(); err != nil {
			return err
		}
	}
	return fmt.Errorf("store: index full after roll")
}

// sync writes the active file's pending entries and fsyncs it.
func (s *indexService) sync() error {
	s.mu.RLock()
	var x *indexFile
	if n := len(s.files); n > 0 && !s.files[n-1].sealed {
		x = s.files[n-1]
	}
	s.mu.RUnlock()
	if x == nil {
		return nil
	}
	if err := x.writePending(); err != nil {
		return err
	}
	if err := x.f.Sync(); err != nil {
		return fmt.Errorf("store: fsync index %s: %w", x.path, err)
	}
	return nil
}

// lookup searches every file overlapping [begin, end], newest first.
func (s *indexService) lookup(h uint32, begin, end int64, max int) ([]int64, error) {
	s.mu.RLock()
	files := append([]*indexFile(nil), s.files...)
	s.mu.RUnlock()
	var out []int64
	for i := len(files) - 1; i >= 0 && len(out) < max; i-- {
		got, err := files[i].lookup(h, begin, end, max-len(out))
		if err != nil {
			return out, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// deleteBefore removes sealed files whose newest record is below clMin.
func (s *indexService) deleteBefore(clMin int64) error {
	for {
		s.mu.Lock()
		if len(s.files) < 2 || !s.files[0].sealed || s.files[0].endPhy >= clMin {
			s.mu.Unlock()
			return nil
		}
		x := s.files[0]
		s.files = s.files[1:]
		s.mu.Unlock()
		_ = x.f.Close()
		if err := s.fs.Remove(x.path); err != nil {
			return fmt.Errorf("store: remove index: %w", err)
		}
	}
}

// close writes the active file out whole (a clean close) and closes all.
func (s *indexService) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, x := range s.files {
		if !x.sealed {
			x.mu.Lock()
			errs = append(errs, x.writeAllLocked())
			x.mu.Unlock()
		}
		errs = append(errs, x.f.Close())
	}
	s.files = nil
	return errors.Join(errs...)
}
