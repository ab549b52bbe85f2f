package store

import (
	"errors"
	"fmt"
	"sync"
)

// entryPos is where a CommitLog entry is.
type entryPos struct {
	index, term uint64
	off, size   int64
}

// maxRecent bounds the exact positions kept for the newest entries.
const maxRecent = 1 << 16

// positions finds entries by index in the replicated log. The newest
// entries (those not yet committed and the last few thousand committed)
// are kept exactly; older ones are found by reading entry headers forward
// from the start of their segment, or from the last entry found that way,
// so a follower catching up sequentially costs one pass over the log.
type positions struct {
	mu       sync.Mutex
	start    LogPoint         // the entry before the first one stored
	recent   []entryPos       // consecutive indexes, oldest first
	cursor   entryPos         // the last entry found by scanning (index 0: none)
	segFirst map[int64]uint64 // segment base → index of its first entry
}

func (p *positions) find(index uint64) (entryPos, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.recent); n > 0 && index >= p.recent[0].index && index <= p.recent[n-1].index {
		return p.recent[index-p.recent[0].index], true
	}
	if p.cursor.index == index && index != 0 {
		return p.cursor, true
	}
	return entryPos{}, false
}

func (p *positions) add(ps []entryPos) {
	if len(ps) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.recent); n > 0 && p.recent[n-1].index+1 != ps[0].index {
		p.recent = p.recent[:0]
	}
	p.recent = append(p.recent, ps...)
}

// truncate forgets the entries at or after index.
func (p *positions) truncate(index uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.recent); n > 0 && index <= p.recent[n-1].index {
		if index <= p.recent[0].index {
			p.recent = p.recent[:0]
		} else {
			p.recent = p.recent[:index-p.recent[0].index]
		}
	}
	if p.cursor.index >= index {
		p.cursor = entryPos{}
	}
	clear(p.segFirst)
}

// trim drops exact positions of committed entries beyond maxRecent.
func (p *positions) trim(commit uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.recent) <= maxRecent {
		return
	}
	drop := len(p.recent) - maxRecent/2
	if last := p.recent[drop-1].index; last >= commit {
		return
	}
	p.recent = append(p.recent[:0], p.recent[drop:]...)
}

var errFound = errors.New("found")

// lookup finds entry index in the log.
func (s *Store) lookup(index uint64) (entryPos, error) {
	if p, ok := s.pos.find(index); ok {
		return p, nil
	}
	if index <= s.LogStart().Index {
		return entryPos{}, ErrCompacted
	}
	from, err := s.scanStart(index)
	if err != nil {
		return entryPos{}, err
	}
	var found entryPos
	buf := getScanBuf()
	defer putScanBuf(buf)
	_, _, err = s.clog.scan(from, s.clog.wrote.Load(), buf, func(off int64, e []byte) error {
		h, _ := checkEntry(e)
		if h.Index == index {
			found = entryPos{index: h.Index, term: h.Term, off: off, size: int64(h.Size)}
			return errFound
		}
		if h.Index > index {
			return fmt.Errorf("%w: entry %d not found (passed %d)", ErrCorrupt, index, h.Index)
		}
		return nil
	})
	if !errors.Is(err, errFound) {
		if err == nil {
			err = fmt.Errorf("%w: entry %d", ErrUnavailable, index)
		}
		return entryPos{}, err
	}
	s.pos.mu.Lock()
	s.pos.cursor = found
	s.pos.mu.Unlock()
	return found, nil
}

// scanStart returns an entry boundary at or before entry index: the last
// entry found by scanning when it is not past index, else the start of the
// newest segment whose first entry is not past index.
func (s *Store) scanStart(index uint64) (int64, error) {
	s.pos.mu.Lock()
	c := s.pos.cursor
	s.pos.mu.Unlock()
	if c.index != 0 && c.index < index {
		return c.off, nil
	}
	s.clog.mu.RLock()
	bases := make([]int64, len(s.clog.segs))
	for i, seg := range s.clog.segs {
		bases[i] = seg.base
	}
	s.clog.mu.RUnlock()
	for i := len(bases) - 1; i >= 0; i-- {
		first, ok, err := s.segmentFirstIndex(bases[i])
		if err != nil {
			return 0, err
		}
		if ok && first <= index {
			return bases[i], nil
		}
	}
	return 0, fmt.Errorf("%w: entry %d is in no segment", ErrCompacted, index)
}

// segmentFirstIndex reads the index of the first entry of the segment at
// base; ok is false for a segment without entries.
func (s *Store) segmentFirstIndex(base int64) (uint64, bool, error) {
	s.pos.mu.Lock()
	if s.pos.segFirst == nil {
		s.pos.segFirst = make(map[int64]uint64)
	}
	first, ok := s.pos.segFirst[base]
	s.pos.mu.Unlock()
	if ok {
		return first, true, nil
	}
	var h [entryHeaderSize]byte
	if err := s.clog.readRaw(h[:], base); err != nil {
		return 0, false, nil
	}
	if _, st, _ := peekEntry(h[:], int(s.opts.SegmentSize)); st != entryValid {
		return 0, false, nil
	}
	first = entryIndexOf(h[:])
	s.pos.mu.Lock()
	s.pos.segFirst[base] = first
	s.pos.mu.Unlock()
	return first, true, nil
}
