package store

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"qianlang.io/mq/vfs"
)

// segment is one CommitLog file, covering global offsets
// [base, base+size).
type segment struct {
	base int64
	f    vfs.File
	path string
}

// commitLog is the append-only log of entries, split into segment files
// named by their 20-digit start offset.
//
// Only the appender goroutine calls reserve, write and roll; flush is called
// by one flusher at a time; reads may come from any goroutine.
type commitLog struct {
	fs       vfs.FS
	dir      string
	segSize  int64
	warm     bool
	warmRate int64 // bytes per second of a background zero-fill
	log      *slog.Logger
	cache    *tailCache

	mu   sync.RWMutex
	segs []*segment // ascending base; guarded by mu

	wrote   atomic.Int64 // end of written data (next append offset)
	flushed atomic.Int64 // end of fsynced data
	flushMu sync.Mutex   // one flush at a time
	hot     int64        // bytes behind the end kept in the page cache (0: all)

	prepMu  sync.Mutex
	prep    *prepared // next segment made ready in the background; guarded by prepMu
	closed  bool      // guarded by prepMu
	evicted int64     // data below was dropped from the page cache; guarded by flushMu
}

func segmentName(base int64) string { return fmt.Sprintf("%020d", base) }

func newCommitLog(o *Options) *commitLog {
	return &commitLog{
		fs: o.FS, dir: o.CommitLogDir, segSize: o.SegmentSize, warm: o.WarmSegments, warmRate: o.WarmRate, hot: o.HotBytes,
		log: o.Logger, cache: newTailCache(o.TailCacheBytes),
	}
}

// openSegments lists and opens the existing segments. A name that is not a
// 20-digit offset aligned to the segment size is an error: the operator must
// look at it.
func (l *commitLog) openSegments() error {
	if err := vfs.MkdirAllSync(l.fs, l.dir); err != nil {
		return fmt.Errorf("store: create commit log dir: %w", err)
	}
	names, err := l.fs.List(l.dir)
	if err != nil {
		return fmt.Errorf("store: list commit log: %w", err)
	}
	for _, name := range names {
		base, err := strconv.ParseInt(name, 10, 64)
		if len(name) != 20 || err != nil || base%l.segSize != 0 {
			return fmt.Errorf("store: unexpected file %q in %s (segment size %d)", name, l.dir, l.segSize)
		}
		path := filepath.Join(l.dir, name)
		f, err := l.fs.OpenReadWrite(path)
		if err != nil {
			return fmt.Errorf("store: open segment: %w", err)
		}
		if n := len(l.segs); n > 0 && l.segs[n-1].base+l.segSize != base {
			_ = f.Close()
			return fmt.Errorf("%w: commit log segments not contiguous before %s", ErrCorrupt, name)
		}
		l.segs = append(l.segs, &segment{base: base, f: f, path: path})
	}
	return nil
}

// minOffset is the first offset still stored.
func (l *commitLog) minOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.segs) == 0 {
		return l.wrote.Load()
	}
	return l.segs[0].base
}

func (l *commitLog) segmentFor(off int64) *segment {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.segs) == 0 {
		return nil
	}
	i := (off - l.segs[0].base) / l.segSize
	if off < l.segs[0].base || i >= int64(len(l.segs)) {
		return nil
	}
	return l.segs[i]
}

func (l *commitLog) last() *segment {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.segs) == 0 {
		return nil
	}
	return l.segs[len(l.segs)-1]
}

// reserve makes room for an entry of n bytes at the end of the log, rolling
// to a new segment (after writing a blank marker) when the current one
// cannot hold it and a marker. It returns where the entry will start.
func (l *commitLog) reserve(n int) (int64, error) {
	if int64(n)+blankSize > l.segSize {
		return 0, fmt.Errorf("store: entry of %d bytes exceeds segment size %d", n, l.segSize)
	}
	off := l.wrote.Load()
	seg := l.last()
	if seg != nil && off-seg.base+int64(n)+blankSize <= l.segSize {
		return off, nil
	}
	if seg != nil && off < seg.base+l.segSize {
		rest := int(seg.base + l.segSize - off)
		if err := l.write(off, blankMarker(rest)[:min(rest, blankSize)]); err != nil {
			return 0, err
		}
		l.wrote.Store(seg.base + l.segSize)
	}
	base := off - off%l.segSize
	if seg != nil {
		base = seg.base + l.segSize
	}
	next, err := l.takePrepared(base)
	if err != nil {
		return 0, err
	}
	l.mu.Lock()
	l.segs = append(l.segs, next)
	l.mu.Unlock()
	l.wrote.Store(base)
	l.prepareNext(base + l.segSize)
	return base, nil
}

// takePrepared returns the segment at base: the one prepared in the
// background if it is that one (waiting for it to finish), else a new one.
func (l *commitLog) takePrepared(base int64) (*segment, error) {
	if seg := l.claimPrepared(); seg != nil {
		if seg.base == base {
			return seg, nil
		}
		l.discard(seg)
	}
	return l.makeSegment(base, nil)
}

// claimPrepared takes the background-prepared segment, waiting for its
// preparation to finish; nil when there is none or it failed.
func (l *commitLog) claimPrepared() *segment {
	l.prepMu.Lock()
	p := l.prep
	l.prep = nil
	l.prepMu.Unlock()
	if p == nil {
		return nil
	}
	close(p.hurry)
	<-p.done
	if p.err != nil {
		return nil
	}
	return p.seg
}

// prepared is a segment being made ready in the background.
type prepared struct {
	done  chan struct{}
	hurry chan struct{} // closed when the segment is claimed: stop zero-filling
	seg   *segment
	err   error
}

// prepareNext starts making the segment at base ready in the background:
// creating, sizing and (with WarmSegments) zero-filling a 1 GiB file takes
// long enough to stall puts if done at the roll.
func (l *commitLog) prepareNext(base int64) {
	p := &prepared{done: make(chan struct{}), hurry: make(chan struct{})}
	l.prepMu.Lock()
	if l.prep != nil || l.closed {
		l.prepMu.Unlock()
		return
	}
	l.prep = p
	l.prepMu.Unlock()
	go func() {
		defer close(p.done)
		p.seg, p.err = l.makeSegment(base, p.hurry)
		if p.err != nil {
			l.log.Warn("preparing the next commit log segment failed; will retry at the roll", "base", base, "err", p.err)
		}
	}()
}

// dropPrepared discards a background-prepared segment (truncate, close).
func (l *commitLog) dropPrepared() {
	if seg := l.claimPrepared(); seg != nil {
		l.discard(seg)
	}
}

func (l *commitLog) discard(s *segment) {
	_ = s.f.Close()
	_ = l.fs.Remove(s.path)
}

// makeSegment creates the file of the segment at base, sized and synced.
// A segment prepared in the background (hurry not nil) is zero-filled at
// the pace of the writes into the segment before it, until hurry is
// closed.
func (l *commitLog) makeSegment(base int64, hurry <-chan struct{}) (*segment, error) {
	path := filepath.Join(l.dir, segmentName(base))
	f, err := l.fs.Create(path)
	if err != nil {
		return nil, fmt.Errorf("store: create segment: %w", err)
	}
	fail := func(err error) (*segment, error) {
		_ = f.Close()
		_ = l.fs.Remove(path)
		return nil, err
	}
	// Without WarmSegments the file is sparse: ext4's delayed allocation
	// reserves blocks at write time (so a full disk fails the write, not
	// the fsync). fallocate's unwritten extents are not used: converting
	// them as data lands costs several times the CPU of the copy itself.
	// WarmSegments writes real zeros, so fsyncs into the filled part
	// allocate nothing (a fill cut short by the roll leaves the rest sparse).
	if err := f.Truncate(l.segSize); err != nil {
		return fail(fmt.Errorf("store: size segment: %w", err))
	}
	if l.warm {
		if err := l.warmSegment(f, base, hurry); err != nil {
			return fail(fmt.Errorf("store: warm segment: %w", err))
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fail(fmt.Errorf("store: sync commit log dir: %w", err))
	}
	return &segment{base: base, f: f, path: path}, nil
}

// warmChunk is the zero-fill's largest unit of work (one write and one
// fsync); a segment is filled in at least eight.
const warmChunk = 16 << 20

// warmPoll is how often a background zero-fill that is ahead of the log
// looks again.
const warmPoll = 10 * time.Millisecond

// warmSegment zero-fills f, the segment at base, from its start. A
// segment needed now (hurry nil) is filled at full speed. A background one
// keeps its fill a quarter ahead of how full the segment before it is (plus
// two chunks), and under warmRate: the zeros go to the same disk as the
// log and should never crowd out its fsyncs. When hurry closes (the roll
// claims the segment, or the log closes) the fill stops and the rest stays
// sparse: the writer then pays for block allocation there, but neither
// waits for the zeros nor races them, since the fill stops before the
// segment is handed over.
func (l *commitLog) warmSegment(f vfs.File, base int64, hurry <-chan struct{}) error {
	chunk := min(warmChunk, max(l.segSize/8, 4096)) &^ 4095
	pace := warmPacer{l: l, prev: base - l.segSize, chunk: chunk, start: time.Now(), hurry: hurry}
	defer pace.stop()
	for off := int64(0); off < l.segSize; off += chunk {
		if hurry != nil && !pace.wait(off) {
			return nil
		}
		if err := f.Preallocate(off, min(chunk, l.segSize-off)); err != nil {
			return err
		}
	}
	return nil
}

// warmPacer holds a background zero-fill back.
type warmPacer struct {
	l     *commitLog
	prev  int64 // base of the segment being written meanwhile
	chunk int64
	start time.Time
	hurry <-chan struct{}
	timer *time.Timer
}

// wait returns when the fill may write at off, or false once hurry closes.
func (p *warmPacer) wait(off int64) bool {
	for {
		d := time.Until(p.start.Add(time.Duration(float64(off) / float64(p.l.warmRate) * float64(time.Second))))
		used := p.l.wrote.Load() - p.prev
		if off > used+used/4+2*p.chunk {
			d = max(d, warmPoll)
		}
		if d <= 0 {
			select {
			case <-p.hurry:
				return false
			default:
				return true
			}
		}
		if p.timer == nil {
			p.timer = time.NewTimer(d)
		} else {
			p.timer.Reset(d)
		}
		select {
		case <-p.hurry:
			return false
		case <-p.timer.C:
		}
	}
}

func (p *warmPacer) stop() {
	if p.timer != nil {
		p.timer.Stop()
	}
}

// write stores p at global offset off, which must lie inside the last
// segment together with all of p. It does not move the end of the log.
func (l *commitLog) write(off int64, p []byte) error {
	seg := l.segmentFor(off)
	if seg == nil || off+int64(len(p)) > seg.base+l.segSize {
		return fmt.Errorf("store: write of %d bytes at %d outside the segments", len(p), off)
	}
	if _, err := seg.f.WriteAt(p, off-seg.base); err != nil {
		return fmt.Errorf("store: write commit log at %d: %w", off, err)
	}
	l.cache.write(off, p)
	return nil
}

// append writes p at the end of the log and moves the end past it; p must
// have been laid out for the offset reserve returned.
func (l *commitLog) append(off int64, p []byte) error {
	if err := l.write(off, p); err != nil {
		return err
	}
	l.wrote.Store(off + int64(len(p)))
	return nil
}

// readAt fills p from global offset off, which must be below the end.
func (l *commitLog) readAt(p []byte, off int64) error {
	if end := l.wrote.Load(); off+int64(len(p)) > end {
		return fmt.Errorf("store: read [%d,%d) beyond end %d: %w", off, off+int64(len(p)), end, io.ErrUnexpectedEOF)
	}
	if l.cache.read(off, p) {
		return nil
	}
	return l.readRaw(p, off)
}

// syncLast fsyncs the newest segment.
func (l *commitLog) syncLast() error {
	if seg := l.last(); seg != nil {
		if err := seg.f.Sync(); err != nil {
			return fmt.Errorf("store: fsync %s: %w", seg.path, err)
		}
	}
	return nil
}

// readRaw fills p from global offset off straight from the segment files,
// without checking the end of the log (recovery).
func (l *commitLog) readRaw(p []byte, off int64) error {
	for len(p) > 0 {
		seg := l.segmentFor(off)
		if seg == nil {
			return fmt.Errorf("store: offset %d: %w", off, ErrDeleted)
		}
		n := min(int64(len(p)), seg.base+l.segSize-off)
		if _, err := seg.f.ReadAt(p[:n], off-seg.base); err != nil {
			return fmt.Errorf("store: read commit log at %d: %w", off, err)
		}
		off += n
		p = p[n:]
	}
	return nil
}

// flush fsyncs everything written so far and returns the new flushed end.
func (l *commitLog) flush() (int64, error) {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	target := l.wrote.Load()
	from := l.flushed.Load()
	if target <= from {
		return from, nil
	}
	for _, s := range l.segmentsIn(from, target) {
		if err := s.f.Sync(); err != nil {
			return from, fmt.Errorf("store: fsync %s: %w", s.path, err)
		}
	}
	l.flushed.Store(target)
	l.evictCold(target)
	return target, nil
}

// writeBack writes the whole pages between the flushed offset and the end
// of the log back to the device, ahead of the fsync of a periodic flush:
// that fsync then writes little, and the page the log is appending to is
// under write-back only as long as that small write takes (appends into
// it wait for it). Files that cannot do this are left to the fsync.
func (l *commitLog) writeBack() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	from := l.flushed.Load()
	end := l.wrote.Load() &^ (pageSize - 1)
	if end <= from {
		return nil
	}
	for _, s := range l.segmentsIn(from, end) {
		w, ok := s.f.(vfs.WriteBacker)
		if !ok {
			continue
		}
		lo, hi := max(from, s.base), min(end, s.base+l.segSize)
		if err := w.WriteBack(lo-s.base, hi-lo); err != nil {
			return fmt.Errorf("store: write back %s: %w", s.path, err)
		}
	}
	return nil
}

// segmentsIn returns the segments holding any of [from, to).
func (l *commitLog) segmentsIn(from, to int64) []*segment {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var segs []*segment
	for _, s := range l.segs {
		if s.base+l.segSize > from && s.base < to {
			segs = append(segs, s)
		}
	}
	return segs
}

// evictCold drops synced data more than hot bytes behind end from the
// page cache, segment by segment. flushMu must be held.
func (l *commitLog) evictCold(end int64) {
	if l.hot <= 0 || end-l.hot <= l.evicted {
		return
	}
	limit := end - l.hot
	for l.evicted < limit {
		seg := l.segmentFor(l.evicted)
		if seg == nil {
			l.evicted = limit
			return
		}
		upto := min(limit, seg.base+l.segSize)
		if e, ok := seg.f.(vfs.Evicter); ok {
			if err := e.Evict(l.evicted-seg.base, upto-l.evicted); err != nil {
				l.log.Warn("dropping cold commit log pages failed", "segment", seg.path, "err", err)
			}
		}
		l.evicted = upto
	}
}

// truncate drops everything at or after off (an entry boundary). Later
// segments are removed; the one holding off is cut and re-extended with
// zeros. The cut is durable after the next flush of that segment (or
// syncLast).
func (l *commitLog) truncate(off int64) error {
	l.dropPrepared()
	l.mu.Lock()
	var drop []*segment
	keep := l.segs[:0]
	for i, s := range l.segs {
		if s.base < off || (i == 0 && s.base == off) {
			keep = append(keep, s)
			continue
		}
		drop = append(drop, s)
	}
	l.segs = keep
	l.mu.Unlock()
	for _, s := range drop {
		_ = s.f.Close()
		if err := l.fs.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("store: remove segment: %w", err)
		}
	}
	if seg := l.segmentFor(off); seg != nil {
		rel := off - seg.base
		if err := seg.f.Truncate(rel); err != nil {
			return fmt.Errorf("store: truncate segment: %w", err)
		}
		if err := seg.f.Truncate(l.segSize); err != nil {
			return fmt.Errorf("store: re-extend segment: %w", err)
		}
	}
	if len(drop) > 0 {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("store: sync commit log dir: %w", err)
		}
	}
	l.cache.truncate(off)
	l.wrote.Store(off)
	if l.flushed.Load() > off {
		l.flushed.Store(off)
	}
	return nil
}

// deleteSegmentsBefore removes whole segments that end at or before limit
// and whose file is older than cutoff, never the last segment, and at most
// max of them; before each removal it calls before (when set) with the base
// of the segment that will then be the first. It returns how many it
// removed.
func (l *commitLog) deleteSegmentsBefore(limit int64, cutoff time.Time, max int, before func(next int64) error) (int, error) {
	removed := 0
	for removed < max {
		l.mu.RLock()
		if len(l.segs) < 2 {
			l.mu.RUnlock()
			return removed, nil
		}
		s := l.segs[0]
		l.mu.RUnlock()
		if s.base+l.segSize > limit {
			return removed, nil
		}
		fi, err := l.fs.Stat(s.path)
		if err != nil {
			return removed, fmt.Errorf("store: stat segment: %w", err)
		}
		if fi.ModTime().After(cutoff) {
			return removed, nil
		}
		if before != nil {
			if err := before(s.base + l.segSize); err != nil {
				return removed, err
			}
		}
		l.flushMu.Lock() // a running flush may hold this segment's file
		l.mu.Lock()
		l.segs = l.segs[1:]
		l.mu.Unlock()
		l.flushMu.Unlock()
		_ = s.f.Close()
		if err := l.fs.Remove(s.path); err != nil {
			return removed, fmt.Errorf("store: remove segment: %w", err)
		}
		l.log.Info("deleted expired commit log segment", "segment", s.path)
		removed++
	}
	return removed, nil
}

func (l *commitLog) close() error {
	l.prepMu.Lock()
	l.closed = true
	l.prepMu.Unlock()
	l.dropPrepared()
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, s := range l.segs {
		errs = append(errs, s.f.Close())
	}
	l.segs = nil
	return errors.Join(errs...)
}
