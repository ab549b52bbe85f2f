package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"qianlang.io/mq/message"
)

// In replicated mode (Options.Replicated) the CommitLog is a Raft log: the
// consensus layer hands entries to AppendEntries with their term and index,
// says which are committed with Commit, and reads entries back with
// Entries and Term. Put is refused; only committed entries reach the
// ConsumeQueues. Every replica writes an entry at the same CommitLog offset
// and assigns the same queue offsets, so the replicas' logs are
// byte-identical.

// Errors of the replicated mode.
var (
	// ErrReplicated: Put on a store whose writes come from consensus.
	ErrReplicated = errors.New("store: writes go through the replication log")
	// ErrNotReplicated: a log call on a standalone store.
	ErrNotReplicated = errors.New("store: not in replicated mode")
	// ErrCompacted: the entry asked for was removed by retention.
	ErrCompacted = errors.New("store: log entry compacted")
	// ErrUnavailable: the entry asked for is past the end of the log.
	ErrUnavailable = errors.New("store: log entry unavailable")
)

// LogEntry is one CommitLog entry as the consensus layer sees it.
type LogEntry struct {
	Term    uint64
	Index   uint64
	Type    EntryType
	Payload []byte
}

// LogPoint names an entry and where the data after it starts.
type LogPoint struct {
	Index uint64
	Term  uint64
	// Offset is the CommitLog offset just after the entry.
	Offset int64
}

// RecordFunc is told, for each record of each appended messages entry, the
// physical and queue offsets it was given. entry indexes the slice passed
// to AppendEntries.
type RecordFunc func(entry int, phy, queueOffset int64)

// AppendEntries writes ents (consecutive indexes) at the end of the log,
// first cutting off any entries at or after ents[0].Index: a new leader
// overwrites an uncommitted tail. In messages entries each record's
// PHYSICALOFFSET and QUEUEOFFSET are set as it is written (the caller's
// payloads are not modified). The entries are in the page cache when it
// returns; SyncLog makes them durable. A write error makes the store refuse
// further appends: the replica must stop, since it cannot vouch for what it
// holds.
func (s *Store) AppendEntries(ents []LogEntry, onRecord RecordFunc) error {
	if !s.opts.Replicated {
		return ErrNotReplicated
	}
	if len(ents) == 0 {
		return nil
	}
	if e := s.fatal.Load(); e != nil {
		return *e
	}
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	first := ents[0].Index
	if first <= s.lastIndex {
		if err := s.truncateLog(first); err != nil {
			return s.failLog(err)
		}
	}
	if first != s.lastIndex+1 {
		return fmt.Errorf("%w: entry %d appended after %d", ErrCorrupt, first, s.lastIndex)
	}
	buf := s.wbuf[:0]
	start := int64(-1)
	var pos []entryPos
	flush := func() error {
		if len(buf) > 0 {
			if err := s.clog.append(start, buf); err != nil {
				return err
			}
			s.pos.add(pos)
		}
		buf, start, pos = buf[:0], -1, pos[:0]
		return nil
	}
	for i, e := range ents {
		size := entryHeaderSize + len(e.Payload)
		if start >= 0 && (len(buf)+size > maxWrite || !s.fits(start+int64(len(buf)), size)) {
			if err := flush(); err != nil {
				return s.failLog(err)
			}
		}
		if start < 0 {
			off, err := s.clog.reserve(size)
			if err != nil {
				return s.failLog(err)
			}
			start = off
		}
		at := len(buf)
		buf = appendEntryHeader(buf, e.Type, e.Term, e.Index)
		buf = append(buf, e.Payload...)
		if e.Type == EntryMessages {
			if err := s.assignOffsets(buf[at+entryHeaderSize:], start+int64(at+entryHeaderSize), i, onRecord); err != nil {
				s.recountQueues()
				return err
			}
		}
		sealEntry(buf[at:])
		pos = append(pos, entryPos{index: e.Index, term: e.Term, off: start + int64(at), size: int64(size)})
		s.lastIndex, s.term = e.Index, e.Term
	}
	if err := flush(); err != nil {
		return s.failLog(err)
	}
	if cap(buf) <= 2*maxWrite {
		s.wbuf = buf
	}
	return nil
}

// failLog makes a log write failure permanent for this process.
func (s *Store) failLog(err error) error {
	err = fmt.Errorf("%w: replicated log unusable, restart needed: %w", ErrWriteFailed, classify(err))
	s.fatal.Store(&err)
	s.log.Error("replicated log write failed; refusing further appends", "err", err)
	return err
}

// assignOffsets sets the physical and queue offsets of the records in
// payload, which will sit at CommitLog offset phy. appendMu must be held.
func (s *Store) assignOffsets(payload []byte, phy int64, entry int, onRecord RecordFunc) error {
	for pos := 0; pos < len(payload); {
		m, err := message.ParseRecord(payload[pos:])
		if err != nil {
			return fmt.Errorf("%w: record %d bytes into a log entry: %w", ErrCorrupt, pos, err)
		}
		k := queueKey{s.topicNames.intern(m.Topic), m.QueueID}
		qo := s.queueOffsets[k]
		s.queueOffsets[k] = qo + 1
		rec := payload[pos:]
		binary.BigEndian.PutUint64(rec[message.OffQueueOffset:], uint64(qo))
		binary.BigEndian.PutUint64(rec[message.OffPhysicalOffset:], uint64(phy+int64(pos)))
		if onRecord != nil {
			onRecord(entry, phy+int64(pos), qo)
		}
		pos += int(m.Size)
	}
	return nil
}

// truncateLog cuts the log before entry index, which must not be
// committed. appendMu must be held.
func (s *Store) truncateLog(index uint64) error {
	if c := s.commitIndex.Load(); index <= c {
		return fmt.Errorf("%w: asked to cut committed entry %d (commit %d)", ErrCorrupt, index, c)
	}
	p, err := s.lookup(index)
	if err != nil {
		return err
	}
	s.log.Info("cutting uncommitted log tail", "from_index", index, "offset", p.off, "last_index", s.lastIndex)
	if err := s.clog.truncate(p.off); err != nil {
		return err
	}
	s.pos.truncate(index)
	s.lastIndex = index - 1
	s.term = 0
	if index > 1 {
		if t, err := s.termLocked(index - 1); err == nil {
			s.term = t
		}
	}
	s.recountQueues()
	return nil
}

// recountQueues sets the next queue offsets from what the log holds: the
// ConsumeQueues up to the dispatched offset, then the records after it.
// appendMu must be held.
func (s *Store) recountQueues() {
	from := s.confirmed.Load()
	s.waitDispatched(from)
	clear(s.queueOffsets)
	for _, q := range s.allQueues() {
		s.queueOffsets[queueKey{q.topic, q.queueID}] = q.maxOffset.Load()
	}
	buf := getScanBuf()
	defer putScanBuf(buf)
	_, _, err := s.clog.scan(from, s.clog.wrote.Load(), buf, func(_ int64, e []byte) error {
		if entryTypeOf(e) != EntryMessages {
			return nil
		}
		payload := e[entryHeaderSize:]
		for pos := 0; pos < len(payload); {
			m, err := message.ParseRecord(payload[pos:])
			if err != nil {
				return err
			}
			k := queueKey{string(m.Topic), m.QueueID}
			s.queueOffsets[k] = max(s.queueOffsets[k], m.QueueOffset+1)
			pos += int(m.Size)
		}
		return nil
	})
	if err != nil {
		s.log.Error("recounting queue offsets failed", "err", err)
	}
}

// Commit makes the entries up to index visible to readers: they are
// dispatched to the ConsumeQueues and the index.
func (s *Store) Commit(index uint64) error {
	if !s.opts.Replicated {
		return ErrNotReplicated
	}
	if index <= s.commitIndex.Load() {
		return nil
	}
	p, err := s.lookup(index)
	if err != nil {
		return fmt.Errorf("store: commit %d: %w", index, err)
	}
	s.commitIndex.Store(index)
	s.confirm(p.off + p.size)
	s.pos.trim(index)
	return nil
}

// SyncLog fsyncs the CommitLog: everything appended so far is durable.
func (s *Store) SyncLog() error {
	if _, err := s.syncCommitLog(); err != nil {
		return s.failLog(err)
	}
	return nil
}

// LastIndex is the index of the last entry in the log.
func (s *Store) LastIndex() uint64 {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	return s.lastIndex
}

// LogStart is the entry just before the first one stored (zero for a log
// that has never been compacted).
func (s *Store) LogStart() LogPoint {
	s.pos.mu.Lock()
	defer s.pos.mu.Unlock()
	return s.pos.start
}

// FirstIndex is the index of the first entry stored.
func (s *Store) FirstIndex() uint64 { return s.LogStart().Index + 1 }

// AppliedIndex is the index of the last entry whose records are in the
// ConsumeQueues, visible to readers. After a restart consensus resumes
// applying after it.
func (s *Store) AppliedIndex() uint64 {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	return s.dispatchedIdx
}

// CommitIndex is the index of the last entry known committed here.
func (s *Store) CommitIndex() uint64 { return s.commitIndex.Load() }

// Term returns the term of entry index, which must be in
// [FirstIndex()-1, LastIndex()].
func (s *Store) Term(index uint64) (uint64, error) {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	return s.termLocked(index)
}

func (s *Store) termLocked(index uint64) (uint64, error) {
	if st := s.LogStart(); index <= st.Index {
		if index == st.Index {
			return st.Term, nil
		}
		return 0, ErrCompacted
	}
	if index > s.lastIndex {
		return 0, ErrUnavailable
	}
	p, err := s.lookup(index)
	if err != nil {
		return 0, err
	}
	return p.term, nil
}

// Entries calls fn with the entries in [lo, hi), in order, stopping after
// maxBytes of entries (at least one is always passed). The payload is only
// valid during the call.
func (s *Store) Entries(lo, hi uint64, maxBytes uint64, fn func(LogEntry) error) error {
	if lo >= hi {
		return nil
	}
	s.appendMu.Lock()
	last := s.lastIndex
	s.appendMu.Unlock()
	if hi > last+1 {
		return ErrUnavailable
	}
	if lo <= s.LogStart().Index {
		return ErrCompacted
	}
	p, err := s.lookup(lo)
	if err != nil {
		return err
	}
	buf := getScanBuf()
	defer putScanBuf(buf)
	next, total := lo, uint64(0)
	errDone := errors.New("done")
	_, _, err = s.clog.scan(p.off, s.clog.wrote.Load(), buf, func(_ int64, e []byte) error {
		h, _ := checkEntry(e)
		if h.Index != next {
			return fmt.Errorf("%w: entry %d where %d was expected", ErrCorrupt, h.Index, next)
		}
		total += uint64(h.Size)
		if next > lo && total > maxBytes {
			return errDone
		}
		if err := fn(LogEntry{Term: h.Term, Index: h.Index, Type: h.Type, Payload: e[entryHeaderSize:]}); err != nil {
			return err
		}
		next++
		if next >= hi {
			return errDone
		}
		return nil
	})
	if errors.Is(err, errDone) {
		return nil
	}
	if err != nil {
		return err
	}
	if next < hi && total <= maxBytes {
		return fmt.Errorf("%w: log ends at entry %d, wanted up to %d", ErrCorrupt, next, hi-1)
	}
	return nil
}

// HardState returns the consensus state recorded last.
func (s *Store) HardState() HardState {
	s.cp.mu.Lock()
	defer s.cp.mu.Unlock()
	return s.cp.hard
}

// SetHardState records hs. A new term or vote is written and fsynced before
// it returns (a vote must never be forgotten); a commit index alone goes out
// with the next checkpoint, since consensus can learn it again.
func (s *Store) SetHardState(hs HardState) error {
	s.cp.mu.Lock()
	same := hs.Term == s.cp.hard.Term && hs.Vote == s.cp.hard.Vote
	s.cp.hard = hs
	s.cp.mu.Unlock()
	if same {
		return nil
	}
	return s.cp.update(func(*checkpoint) {})
}

// LogEnd is the CommitLog offset just after entry index.
func (s *Store) LogEnd(index uint64) (int64, error) {
	p, err := s.lookup(index)
	if err != nil {
		return 0, err
	}
	return p.off + p.size, nil
}

// LogMin is the CommitLog offset of the first byte stored.
func (s *Store) LogMin() int64 { return s.clog.minOffset() }

// ReadLog reads raw CommitLog bytes at off, for consistency checks.
func (s *Store) ReadLog(p []byte, off int64) error { return s.clog.readAt(p, off) }
