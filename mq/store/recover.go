package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"

	"qianlang.io/mq/message"
)

// recover rebuilds the in-memory state from the files after a clean or
// unclean shutdown:
//
//  1. Scan the CommitLog from the checkpoint's flushed offset (data below it
//     was fsynced) to find the end of the valid entries; cut a torn tail.
//  2. Load every ConsumeQueue and drop entries pointing past that end.
//  3. Load the index; an unsealed file gets its slots replayed.
//  4. Re-dispatch the CommitLog from the checkpoint's dispatched offset (or
//     from the start when the ConsumeQueues or the index are missing) so
//     ConsumeQueues and the index catch up with the log.
//  5. Take the next queue offsets from the ConsumeQueues.
func (s *Store) recover(cp checkpoint) error {
	if err := s.clog.openSegments(); err != nil {
		return err
	}
	end, err := s.recoverCommitLog(cp)
	if err != nil {
		return err
	}
	if !s.opts.Replicated {
		s.term = max(s.term, 1)
	}
	s.clog.wrote.Store(end)
	s.clog.flushed.Store(end)
	s.flushPoint.Store(&LogPoint{Index: s.lastIndex, Term: s.term, Offset: end})
	next := end - end%s.opts.SegmentSize
	if last := s.clog.last(); last != nil {
		next = last.base + s.opts.SegmentSize
	}
	s.clog.prepareNext(next)
	start := max(min(cp.Dispatched, end), s.clog.minOffset())
	// Replicated: data past the dispatched offset may not be committed, so
	// it leaves the ConsumeQueues and the index until consensus commits it.
	visible := end
	if s.opts.Replicated {
		visible = start
	}
	if err := s.loadQueues(visible); err != nil {
		return err
	}
	s.indexResume = 0
	if s.index != nil {
		last, err := s.index.load(visible, s.storeTimeAt)
		if err != nil {
			return err
		}
		s.indexResume = last
		if last < 0 && end > s.clog.minOffset() {
			// The index is gone but the log is not: rebuild it all.
			start = s.clog.minOffset()
			s.indexResume = 0
		}
	}
	if len(s.queues) == 0 && end > s.clog.minOffset() {
		start = s.clog.minOffset()
	}
	s.dispatched.Store(start)
	s.confirmed.Store(visible)
	if s.opts.Replicated {
		s.dispatchedIdx = cp.DispatchedIdx
		if start == s.clog.minOffset() {
			s.dispatchedIdx = s.pos.start.Index
		}
	}
	if visible > start {
		s.log.Info("rebuilding consume queues from the commit log", "from", start, "to", end)
	}
	if err := s.dispatchAll(); err != nil {
		return err
	}
	if s.opts.Replicated {
		s.commitIndex.Store(s.dispatchedIdx)
	}
	for k, q := range s.queues {
		s.queueOffsets[k] = q.maxOffset.Load()
	}
	if s.opts.Replicated && end > start {
		s.appendMu.Lock()
		s.recountQueues()
		s.appendMu.Unlock()
	}
	return s.flushOnce()
}

// recoverCommitLog finds the end of valid data, cuts anything after it, and
// returns it. It also restores the index of the last entry.
func (s *Store) recoverCommitLog(cp checkpoint) (int64, error) {
	s.pos.start = cp.LogStart
	s.lastIndex, s.term = cp.LogStart.Index, cp.LogStart.Term
	last := s.clog.last()
	if last == nil {
		// An empty log starts at the offset the checkpoint says was
		// reached, so offsets are never reused after retention removed
		// every segment.
		base := cp.CommitLogFlush - cp.CommitLogFlush%s.opts.SegmentSize
		s.clog.wrote.Store(base)
		return base, nil
	}
	from := max(cp.CommitLogFlush, s.clog.minOffset())
	if from >= last.base+s.opts.SegmentSize {
		from = last.base // beyond the files: trust nothing past the last segment's start
	}
	if from == cp.CommitLogFlush && from > s.clog.minOffset() && cp.FlushIndex > 0 {
		s.lastIndex, s.term = cp.FlushIndex, cp.FlushTerm
	} else if s.opts.Replicated {
		from = s.clog.minOffset() // entry indexes must be known: read them all
	}
	end, err := s.scanValid(from)
	if base := s.clog.segmentFor(from).base; err != nil && from != base {
		// The checkpoint offset may not be an entry boundary (a damaged
		// checkpoint): start again at its segment.
		s.log.Warn("commit log scan from checkpoint failed; rescanning its segment", "offset", from, "err", err)
		end, err = s.scanValid(base)
	}
	if err != nil {
		s.log.Warn("commit log has a torn tail; cutting it", "valid_end", end, "err", err)
	}
	if terr := s.clog.truncate(end); terr != nil {
		return 0, terr
	}
	if terr := s.clog.syncLast(); terr != nil {
		return 0, terr
	}
	return end, nil
}

// scanValid scans from off to the end of the data and returns the end of
// the last valid entry, the error that stopped it if the tail is torn, and
// restores lastIndex/term from the last entry.
func (s *Store) scanValid(off int64) (int64, error) {
	var buf []byte
	limit := s.clog.last().base + s.opts.SegmentSize
	var pos []entryPos
	end, stop, err := s.clog.scan(off, limit, &buf, func(off int64, e []byte) error {
		h, _ := checkEntry(e)
		s.lastIndex, s.term = h.Index, max(h.Term, 1)
		if s.opts.Replicated {
			pos = append(pos, entryPos{index: h.Index, term: h.Term, off: off, size: int64(h.Size)})
		}
		return nil
	})
	s.pos.add(pos)
	if stop == stopTorn {
		if err == nil {
			err = errors.New("torn entry")
		}
		return end, err
	}
	return end, nil
}

// loadQueues opens every ConsumeQueue under consumequeue/<topic>/<id>.
func (s *Store) loadQueues(clEnd int64) error {
	root := s.cqRoot()
	topics, err := s.opts.FS.List(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: list consume queues: %w", err)
	}
	clMin := s.clog.minOffset()
	for _, topic := range topics {
		ids, err := s.opts.FS.List(root + "/" + topic)
		if err != nil {
			return fmt.Errorf("store: list consume queues of %s: %w", topic, err)
		}
		for _, id := range ids {
			qid, err := strconv.ParseInt(id, 10, 32)
			if err != nil {
				return fmt.Errorf("store: unexpected consume queue dir %s/%s", topic, id)
			}
			q := newConsumeQueue(s.opts.FS, root, topic, int32(qid), s.opts.QueueFileEntries)
			if err := q.load(); err != nil {
				return err
			}
			if err := q.truncateAbove(clEnd); err != nil {
				return err
			}
			if _, err := q.correctMin(clMin); err != nil {
				return err
			}
			s.queues[queueKey{topic, int32(qid)}] = q
		}
	}
	return nil
}

// storeTimeAt reads the store timestamp of the record at phy.
func (s *Store) storeTimeAt(phy int64) (int64, error) {
	var b [8]byte
	if err := s.clog.readRaw(b[:], phy+storeTimestampOffset(phy, s)); err != nil {
		return 0, err
	}
	return int64(be64(b[:])), nil
}

// storeTimestampOffset is where STORETIMESTAMP sits in the record at phy:
// after the born host, whose size depends on the IPv6 flag.
func storeTimestampOffset(phy int64, s *Store) int64 {
	var sys [4]byte
	if err := s.clog.readRaw(sys[:], phy+message.OffSysFlag); err == nil && be32(sys[:])&message.FlagBornHostV6 != 0 {
		return message.OffBornHost + 20
	}
	return message.OffBornHost + 8
}

func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
