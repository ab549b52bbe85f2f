package store

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// scanStop says why a scan ended.
type scanStop int

const (
	stopLimit scanStop = iota // reached the limit
	stopEnd                   // reached the end of the data (zeros or no segment)
	stopTorn                  // found a damaged or incomplete entry
)

const scanChunk = 1 << 20

// scanBufs holds scan buffers for the frequent short scans of the
// replicated log (raft reading entries back, lookups), so each does not
// allocate and clear a fresh megabyte.
var scanBufs = sync.Pool{New: func() any { b := make([]byte, scanChunk); return &b }}

func getScanBuf() *[]byte { return scanBufs.Get().(*[]byte) }

func putScanBuf(b *[]byte) {
	if cap(*b) <= 4*scanChunk {
		scanBufs.Put(b)
	}
}

// scan walks the entries from off (an entry boundary) up to limit, calling
// fn with each valid entry's offset and bytes (valid until fn returns). It
// reads the segment files directly, so it also works during recovery before
// the end of the log is known. It returns the offset after the last entry
// it accepted and why it stopped; for stopTorn the error says what is wrong.
func (l *commitLog) scan(off, limit int64, buf *[]byte, fn func(off int64, entry []byte) error) (int64, scanStop, error) {
	for off < limit {
		seg := l.segmentFor(off)
		if seg == nil {
			return off, stopEnd, nil
		}
		segEnd := seg.base + l.segSize
		chunk, cached, err := l.readChunk(seg, off, min(limit, segEnd), buf)
		if err != nil {
			return off, stopTorn, err
		}
		next, stop, err := l.scanChunk(chunk, off, segEnd, cached, fn)
		if stop != stopLimit || err != nil {
			return next, stop, err
		}
		if next == off {
			if len(chunk) < blankSize {
				return off, stopEnd, nil // the file ends here
			}
			// The next entry is bigger than the chunk: read it whole.
			size, st, perr := peekEntry(chunk, int(segEnd-off))
			if st != entryValid || int64(size) > limit-off {
				return off, stopTorn, perr
			}
			if cap(*buf) >= size {
				return off, stopTorn, fmt.Errorf("%w: entry of %d bytes at %d cut short by the end of the file", ErrCorrupt, size, off)
			}
			*buf = make([]byte, size)
			continue
		}
		off = next
	}
	return off, stopLimit, nil
}

// readChunk reads up to scanChunk bytes (or the buffer's capacity) of seg
// from off, but not past end. cached says the bytes came from the tail
// cache, which holds only entries this process sealed.
func (l *commitLog) readChunk(seg *segment, off, end int64, buf *[]byte) (p []byte, cached bool, err error) {
	if cap(*buf) < scanChunk {
		*buf = make([]byte, scanChunk)
	}
	n := min(int64(cap(*buf)), end-off)
	p = (*buf)[:n]
	if l.cache.read(off, p) {
		return p, true, nil
	}
	k, err := seg.f.ReadAt(p, off-seg.base)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false, fmt.Errorf("store: read %s at %d: %w", seg.path, off-seg.base, err)
	}
	return p[:k], false, nil
}

// scanChunk parses the entries in chunk, which starts at global offset off
// in a segment ending at segEnd. It returns the offset after the last whole
// entry; stopLimit means "read more". Entries of a trusted chunk (from the
// tail cache: sealed by this process, never on disk in between) are taken
// as peekEntry frames them, without checking their checksum again.
func (l *commitLog) scanChunk(chunk []byte, off, segEnd int64, trusted bool, fn func(int64, []byte) error) (int64, scanStop, error) {
	pos := 0
	for pos < len(chunk) {
		rest := chunk[pos:]
		remaining := int(segEnd - off - int64(pos))
		if len(rest) < blankSize && len(rest) < remaining {
			break // header cut by the chunk end
		}
		size, st, err := peekEntry(rest, remaining)
		switch st {
		case entryEnd:
			return off + int64(pos), stopEnd, nil
		case entryTorn:
			return off + int64(pos), stopTorn, err
		case entryBlank:
			return segEnd, stopLimit, nil
		}
		if size > len(rest) {
			break // entry cut by the chunk end
		}
		if !trusted {
			if _, err := checkEntry(rest[:size]); err != nil {
				return off + int64(pos), stopTorn, err
			}
		}
		if err := fn(off+int64(pos), rest[:size]); err != nil {
			return off + int64(pos), stopTorn, err
		}
		pos += size
	}
	if len(chunk) == 0 {
		return off, stopEnd, nil
	}
	return off + int64(pos), stopLimit, nil
}
