package store

import (
	"fmt"
	"slices"
	"time"
)

// maxDeletePerRound bounds how many segments one retention round removes,
// so deletion does not stall the disk.
const maxDeletePerRound = 10

// cleanLoop runs the disk check and retention every CleanInterval.
func (s *Store) cleanLoop() {
	defer s.wg.Done()
	s.checkDisk()
	t := time.NewTicker(s.opts.CleanInterval)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			s.checkDisk()
			if _, err := s.Clean(false); err != nil {
				s.log.Error("retention failed", "err", err)
			}
		}
	}
}

// checkDisk refreshes the disk usage and refuses or re-admits puts around
// DiskWarningRatio.
func (s *Store) checkDisk() {
	dirs := []string{s.opts.Dir}
	if s.opts.CommitLogDir != s.opts.Dir {
		dirs = append(dirs, s.opts.CommitLogDir)
	}
	var worst *struct{ ratio float64 }
	for _, d := range dirs {
		u, err := s.opts.FS.Usage(d)
		if err != nil {
			s.log.Warn("cannot read disk usage", "dir", d, "err", err)
			continue
		}
		if worst == nil || u.UsedRatio() > worst.ratio {
			worst = &struct{ ratio float64 }{u.UsedRatio()}
			s.usage.Store(&u)
		}
	}
	if worst == nil {
		return
	}
	full := worst.ratio > s.opts.DiskWarningRatio
	if was := s.diskFull.Swap(full); was != full {
		if full {
			s.log.Error("disk above the warning ratio; refusing puts", "used", worst.ratio, "limit", s.opts.DiskWarningRatio)
		} else {
			s.log.Info("disk below the warning ratio again; accepting puts", "used", worst.ratio)
		}
	}
}

// Clean runs one retention round: CommitLog segments older than
// FileReservedTime are removed at the configured hours, or at once when the
// disk is above DiskMaxUsedSpaceRatio or force is set; then ConsumeQueue and
// index files that only point at removed data follow. Data not yet
// dispatched is never removed. It returns the number of segments removed.
func (s *Store) Clean(force bool) (int, error) {
	now := s.opts.Now()
	due := force || slices.Contains(s.opts.DeleteWhen, now.Hour())
	if u := s.usage.Load(); u != nil && u.UsedRatio() > s.opts.DiskMaxUsedSpaceRatio {
		due = true
	}
	if !due {
		return 0, nil
	}
	var before func(int64) error
	if s.opts.Replicated {
		before = s.compactTo
	}
	n, err := s.clog.deleteSegmentsBefore(s.dispatched.Load(), now.Add(-s.opts.FileReservedTime), maxDeletePerRound, before)
	if err != nil || n == 0 {
		return n, err
	}
	clMin := s.clog.minOffset()
	for _, q := range s.allQueues() {
		if _, err := q.correctMin(clMin); err != nil {
			return n, err
		}
	}
	if s.index != nil {
		if err := s.index.deleteBefore(clMin); err != nil {
			return n, err
		}
	}
	return n, nil
}

// compactTo records, durably, that the replicated log will start at the
// segment at base: the entry before its first one becomes the log start
// that consensus matches against (and snapshots from).
func (s *Store) compactTo(base int64) error {
	first, ok, err := s.segmentFirstIndex(base)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("store: segment %d holds no entry; keeping the one before it", base)
	}
	s.appendMu.Lock()
	prev, err := s.termLocked(first - 1)
	s.appendMu.Unlock()
	if err != nil {
		return err
	}
	p := LogPoint{Index: first - 1, Term: prev, Offset: base}
	if err := s.cp.update(func(c *checkpoint) { c.LogStart = p }); err != nil {
		return err
	}
	s.pos.mu.Lock()
	s.pos.start = p
	s.pos.mu.Unlock()
	return nil
}
