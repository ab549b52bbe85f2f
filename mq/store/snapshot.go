package store

import (
	"errors"
	"fmt"
	"os"
	"sort"
)

// A follower that needs entries retention has removed (it was down, or is
// new) gets a snapshot instead: where the leader's log starts and each
// queue's next offset there. It drops everything it holds and continues
// from that point, so its CommitLog is byte-identical to the leader's from
// the log start on; messages before it are not on that follower.

// QueueStart is a queue's next offset at a log start.
type QueueStart struct {
	Topic   string `json:"topic"`
	QueueID int32  `json:"queueId"`
	Next    int64  `json:"next"`
}

// LogSnapshot is the compacted prefix of a replicated log.
type LogSnapshot struct {
	Start  LogPoint     `json:"start"`
	Queues []QueueStart `json:"queues"`
}

// Snapshot describes the log start for a follower that needs it.
func (s *Store) Snapshot() (LogSnapshot, error) {
	if !s.opts.Replicated {
		return LogSnapshot{}, ErrNotReplicated
	}
	start := s.LogStart()
	snap := LogSnapshot{Start: start}
	for _, q := range s.allQueues() {
		next, err := q.firstAtOrAfter(start.Offset)
		if err != nil {
			return snap, err
		}
		if next > 0 {
			snap.Queues = append(snap.Queues, QueueStart{Topic: q.topic, QueueID: q.queueID, Next: next})
		}
	}
	sort.Slice(snap.Queues, func(i, j int) bool {
		a, b := snap.Queues[i], snap.Queues[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.QueueID < b.QueueID
	})
	return snap, nil
}

// firstAtOrAfter is the queue offset of the first entry pointing at or after
// CommitLog offset off (the max offset when none does).
func (q *consumeQueue) firstAtOrAfter(off int64) (int64, error) {
	lo, hi := q.minOffset.Load(), q.maxOffset.Load()
	for lo < hi {
		mid := lo + (hi-lo)/2
		es, err := q.read(mid, 1)
		if err != nil {
			return 0, err
		}
		if len(es) == 0 || es[0].PhysicalOffset >= off {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// InstallSnapshot replaces everything the store holds with an empty log that
// starts at snap: the CommitLog continues at snap.Start.Offset with entry
// snap.Start.Index+1, and each queue at its next offset.
func (s *Store) InstallSnapshot(snap LogSnapshot) error {
	if !s.opts.Replicated {
		return ErrNotReplicated
	}
	if snap.Start.Offset%s.opts.SegmentSize != 0 {
		return fmt.Errorf("store: snapshot log start %d is not on a segment boundary (segment size %d; members must share mappedFileSizeCommitLog)", snap.Start.Offset, s.opts.SegmentSize)
	}
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	if snap.Start.Index <= s.commitIndex.Load() {
		return fmt.Errorf("%w: snapshot at %d is not past the commit index %d", ErrCorrupt, snap.Start.Index, s.commitIndex.Load())
	}
	s.waitDispatched(s.confirmed.Load())
	s.log.Warn("installing a snapshot: this member's log restarts at the leader's log start",
		"index", snap.Start.Index, "term", snap.Start.Term, "offset", snap.Start.Offset, "queues", len(snap.Queues))
	if err := s.clog.reset(snap.Start.Offset); err != nil {
		return s.failLog(err)
	}
	if err := s.resetQueues(snap.Queues); err != nil {
		return s.failLog(err)
	}
	if s.index != nil {
		if err := s.index.deleteBefore(snap.Start.Offset); err != nil {
			return s.failLog(err)
		}
	}
	s.pos.mu.Lock()
	s.pos.start = snap.Start
	s.pos.recent = s.pos.recent[:0]
	s.pos.cursor = entryPos{}
	clear(s.pos.segFirst)
	s.pos.mu.Unlock()
	s.lastIndex, s.term = snap.Start.Index, snap.Start.Term
	s.commitIndex.Store(snap.Start.Index)
	s.dmu.Lock()
	s.dispatchedIdx = snap.Start.Index
	s.dispatched.Store(snap.Start.Offset)
	s.dmu.Unlock()
	s.confirmed.Store(snap.Start.Offset)
	s.flushPoint.Store(&LogPoint{Index: snap.Start.Index, Term: snap.Start.Term, Offset: snap.Start.Offset})
	err := s.cp.update(func(c *checkpoint) {
		c.LogStart = snap.Start
		c.CommitLogFlush, c.FlushIndex, c.FlushTerm = snap.Start.Offset, snap.Start.Index, snap.Start.Term
		c.Dispatched, c.DispatchedIdx = snap.Start.Offset, snap.Start.Index
	})
	if err != nil {
		return s.failLog(err)
	}
	return nil
}

// resetQueues drops every ConsumeQueue and starts the given ones empty at
// their next offsets. appendMu must be held.
func (s *Store) resetQueues(starts []QueueStart) error {
	s.qmu.Lock()
	old := s.queues
	s.queues = make(map[queueKey]*consumeQueue)
	s.qmu.Unlock()
	var errs []error
	for _, q := range old {
		errs = append(errs, q.close())
	}
	if err := s.opts.FS.RemoveAll(s.cqRoot()); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: drop consume queues: %w", err)
	}
	clear(s.queueOffsets)
	for _, qs := range starts {
		q := s.queueOrCreate(qs.Topic, qs.QueueID)
		q.minOffset.Store(qs.Next)
		q.maxOffset.Store(qs.Next)
		s.queueOffsets[queueKey{qs.Topic, qs.QueueID}] = qs.Next
	}
	return nil
}

// reset drops every segment and makes the log continue, empty, at off (a
// segment boundary).
func (l *commitLog) reset(off int64) error {
	l.dropPrepared()
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	segs := l.segs
	l.segs = nil
	l.mu.Unlock()
	for _, s := range segs {
		_ = s.f.Close()
		if err := l.fs.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("store: remove segment: %w", err)
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("store: sync commit log dir: %w", err)
	}
	l.cache.truncate(0)
	l.wrote.Store(off)
	l.flushed.Store(off)
	l.evicted = off
	l.prepareNext(off)
	return nil
}
