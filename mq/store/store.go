package store

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"qianlang.io/mq/message"
	"qianlang.io/mq/vfs"
)

// Errors a put can fail with.
var (
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("store: closed")
	// ErrDiskFull: the disk is above the warning ratio or a write found no
	// space. Nothing was stored; retry once space returns.
	ErrDiskFull = errors.New("store: disk full")
	// ErrWriteFailed: the disk refused a write or an fsync. Nothing of the
	// failed put was stored.
	ErrWriteFailed = errors.New("store: write failed")
	// ErrMessageTooLarge: a body exceeds MaxMessageSize.
	ErrMessageTooLarge = errors.New("store: message too large")
	// ErrDeleted: the data asked for was removed by retention.
	ErrDeleted = errors.New("store: data deleted")
)

// queueKey names a ConsumeQueue.
type queueKey struct {
	topic   string
	queueID int32
}

// putReq is one Put waiting in the pipeline.
type putReq struct {
	msgs  []*message.Message
	done  func(error)
	end   int64  // CommitLog offset after its entry, once written
	index uint64 // entry index, once written
}

// Store is the message store: one CommitLog for all topics, a ConsumeQueue
// per (topic, queue id) built from it by the dispatcher, and an index by
// message key.
//
// The put pipeline, and its invariants:
//
//  1. Put queues a request; one appender goroutine takes every queued
//     request, assigns queue offsets, physical offsets and store times in
//     queue order, encodes one entry per request and writes the batch with
//     one system call. Offsets are therefore dense per queue and ascending
//     in CommitLog order.
//  2. With AsyncFlush a request completes once written; with SyncFlush it
//     waits for the flusher, whose single fsync covers everything written
//     before it started (group commit).
//  3. The dispatcher makes data visible to readers only up to the confirmed
//     offset: the written end (AsyncFlush) or the flushed end (SyncFlush),
//     so a reader never sees a message that a crash can take back.
//  4. A failed write or fsync completes its requests with an error and
//     rolls the log and the queue offsets back to what is durable, so a
//     failed put leaves nothing behind.
type Store struct {
	opts  Options
	log   *slog.Logger
	clog  *commitLog
	index *indexService
	cp    *checkpointFile
	lock  io.Closer

	qmu    sync.RWMutex
	queues map[queueKey]*consumeQueue // guarded by qmu

	pmu      sync.Mutex
	pending  []*putReq // guarded by pmu
	pendWake chan struct{}

	appendMu     sync.Mutex         // held while appending and while rolling back
	queueOffsets map[queueKey]int64 // next queue offset; guarded by appendMu
	topicNames   topicNames         // queueOffsets' topic strings; guarded by appendMu
	lastIndex    uint64             // index of the last entry; guarded by appendMu
	term         uint64             // term for new entries; guarded by appendMu
	wbuf         []byte

	fmu       sync.Mutex
	flushWait []*putReq // SyncFlush requests written but not yet fsynced
	flushWake chan struct{}

	pos         positions                // where entries are (replicated mode)
	commitIndex atomic.Uint64            // entries up to this may be dispatched (replicated mode)
	flushPoint  atomic.Pointer[LogPoint] // the last entry known fsynced

	indexResume   int64        // records before this are already indexed (set by recovery)
	confirmed     atomic.Int64 // data below may be dispatched
	dispatched    atomic.Int64 // data below is in the ConsumeQueues
	dispatchWake  chan struct{}
	dmu           sync.Mutex
	dcond         *sync.Cond // broadcast when dispatched moves
	dispatchedIdx uint64     // index of the entry ending at dispatched; guarded by dmu

	fatal      atomic.Pointer[error] // set when the store needs a restart
	flushFence atomic.Pointer[error] // set while an AsyncFlush fsync keeps failing
	diskFull   atomic.Bool
	usage      atomic.Pointer[vfs.Usage]

	arrival atomic.Pointer[func(topic string, queueID int32, maxOffset int64)]

	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// Open opens or creates the store in opts.Dir, recovering from a crash if
// needed, and starts its goroutines.
func Open(opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.fill()
	s := &Store{
		opts:         opts,
		log:          opts.Logger.With("component", "store"),
		queues:       make(map[queueKey]*consumeQueue),
		queueOffsets: make(map[queueKey]int64),
		topicNames:   make(topicNames),
		pendWake:     make(chan struct{}, 1),
		flushWake:    make(chan struct{}, 1),
		dispatchWake: make(chan struct{}, 1),
		closing:      make(chan struct{}),
		term:         1,
	}
	s.dcond = sync.NewCond(&s.dmu)
	s.flushPoint.Store(&LogPoint{})
	if err := s.open(); err != nil {
		s.closeFiles()
		return nil, err
	}
	s.start()
	return s, nil
}

func (s *Store) open() error {
	fs := s.opts.FS
	if err := vfs.MkdirAllSync(fs, s.opts.Dir); err != nil {
		return fmt.Errorf("store: create %s: %w", s.opts.Dir, err)
	}
	lock, err := fs.Lock(filepath.Join(s.opts.Dir, "lock"))
	if err != nil {
		return fmt.Errorf("store: lock %s (is another broker using it?): %w", s.opts.Dir, err)
	}
	s.lock = lock
	if err := checkFormat(fs, s.opts.Dir); err != nil {
		return err
	}
	cp, last, err := openCheckpoint(fs, s.opts.Dir)
	if err != nil {
		return err
	}
	s.cp = cp
	s.clog = newCommitLog(&s.opts)
	if s.opts.MessageIndexEnable {
		s.index = newIndexService(&s.opts)
	}
	return s.recover(last)
}

func (s *Store) start() {
	s.wg.Add(4)
	go s.appendLoop()
	go s.dispatchLoop()
	go s.flushLoop()
	go s.cleanLoop()
	if s.opts.Flush == SyncFlush {
		s.wg.Add(1)
		go s.syncFlushLoop()
	}
}

// SetArrivalListener registers fn, called by the dispatcher after new
// entries of a queue became visible, with the queue's new max offset. It is
// how long-polling pulls are woken. fn must not block.
func (s *Store) SetArrivalListener(fn func(topic string, queueID int32, maxOffset int64)) {
	s.arrival.Store(&fn)
}

// Put stores msgs as one CommitLog entry and calls done once with the
// outcome. On success each message has its QueueOffset, PhysicalOffset and
// StoreTimestamp filled in. The caller fills every other field (topic,
// queue id, hosts, properties…) and must not touch msgs until done runs.
func (s *Store) Put(msgs []*message.Message, done func(error)) {
	if err := s.checkPut(msgs); err != nil {
		done(err)
		return
	}
	r := &putReq{msgs: msgs, done: done}
	s.pmu.Lock()
	select {
	case <-s.closing:
		s.pmu.Unlock()
		done(ErrClosed)
		return
	default:
	}
	s.pending = append(s.pending, r)
	s.pmu.Unlock()
	wake(s.pendWake)
}

// PutSync is Put that waits for the outcome.
func (s *Store) PutSync(msgs []*message.Message) error {
	ch := make(chan error, 1)
	s.Put(msgs, func(err error) { ch <- err })
	return <-ch
}

func (s *Store) checkPut(msgs []*message.Message) error {
	if s.opts.Replicated {
		return ErrReplicated
	}
	if len(msgs) == 0 {
		return fmt.Errorf("store: empty put")
	}
	if err := s.Writable(); err != nil {
		return err
	}
	for _, m := range msgs {
		if len(m.Body) > s.opts.MaxMessageSize {
			return fmt.Errorf("%w: body of %d bytes, limit %d", ErrMessageTooLarge, len(m.Body), s.opts.MaxMessageSize)
		}
		if err := m.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Writable reports why puts are refused (disk full, a failed fsync, a
// failed log), or nil.
func (s *Store) Writable() error {
	if e := s.fatal.Load(); e != nil {
		return *e
	}
	if e := s.flushFence.Load(); e != nil {
		return *e
	}
	if s.diskFull.Load() {
		u := s.usage.Load()
		return fmt.Errorf("%w: %.0f%% used, limit %.0f%%", ErrDiskFull, 100*u.UsedRatio(), 100*s.opts.DiskWarningRatio)
	}
	return nil
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (s *Store) appendLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.pendWake:
		case <-s.closing:
			s.failPending(ErrClosed)
			return
		}
		for {
			// Let the goroutines about to queue puts do so: bigger batches
			// mean fewer, larger writes.
			runtime.Gosched()
			s.pmu.Lock()
			reqs := s.pending
			s.pending = nil
			s.pmu.Unlock()
			if len(reqs) == 0 {
				break
			}
			s.appendBatch(reqs)
		}
	}
}

func (s *Store) failPending(err error) {
	s.pmu.Lock()
	reqs := s.pending
	s.pending = nil
	s.pmu.Unlock()
	for _, r := range reqs {
		r.done(err)
	}
}

// maxWrite bounds the bytes the appender writes with one system call.
const maxWrite = 4 << 20

// appendBatch writes reqs, one entry each, in as few writes as the segment
// boundaries and maxWrite allow.
func (s *Store) appendBatch(reqs []*putReq) {
	if err := s.Writable(); err != nil {
		for _, r := range reqs {
			r.done(err)
		}
		return
	}
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	buf := s.wbuf[:0]
	start := int64(-1) // CommitLog offset of buf[0]
	var inBuf []*putReq
	flush := func() {
		if len(inBuf) > 0 {
			s.writeEntries(start, buf, inBuf)
		}
		buf, start, inBuf = buf[:0], -1, inBuf[:0]
	}
	now := s.opts.Now().UnixMilli()
	for _, r := range reqs {
		size := entryHeaderSize
		for _, m := range r.msgs {
			size += m.EncodedSize()
		}
		if start >= 0 && (len(buf)+size > maxWrite || !s.fits(start+int64(len(buf)), size)) {
			flush()
		}
		if start < 0 {
			off, err := s.clog.reserve(size)
			if err != nil {
				r.done(classify(err))
				continue
			}
			start = off
		}
		buf = s.encodeEntry(buf, start, r, now)
		inBuf = append(inBuf, r)
	}
	flush()
	if cap(buf) <= 2*maxWrite {
		s.wbuf = buf
	}
}

// fits reports whether an entry of size bytes at off leaves room for a
// blank marker in its segment.
func (s *Store) fits(off int64, size int) bool {
	return off%s.opts.SegmentSize+int64(size)+blankSize <= s.opts.SegmentSize
}

// encodeEntry appends r's entry to buf, which starts at CommitLog offset
// start, assigning offsets. appendMu must be held.
func (s *Store) encodeEntry(buf []byte, start int64, r *putReq, now int64) []byte {
	first := len(buf)
	s.lastIndex++
	r.index = s.lastIndex
	buf = appendEntryHeader(buf, EntryMessages, s.term, r.index)
	for _, m := range r.msgs {
		k := queueKey{m.Topic, m.QueueID}
		m.QueueOffset = s.queueOffsets[k]
		s.queueOffsets[k] = m.QueueOffset + 1
		m.PhysicalOffset = start + int64(len(buf))
		m.StoreTimestamp = now
		buf = message.AppendRecord(buf, m)
	}
	sealEntry(buf[first:])
	r.end = start + int64(len(buf))
	return buf
}

// writeEntries writes buf at start and completes or hands on its requests.
// appendMu must be held.
func (s *Store) writeEntries(start int64, buf []byte, reqs []*putReq) {
	if err := s.clog.append(start, buf); err != nil {
		s.undoOffsets(reqs)
		err = classify(err)
		s.log.Error("commit log write failed; puts rejected", "offset", start, "bytes", len(buf), "err", err)
		for _, r := range reqs {
			r.done(err)
		}
		s.completed()
		return
	}
	if s.opts.Flush == SyncFlush {
		s.fmu.Lock()
		s.flushWait = append(s.flushWait, reqs...)
		s.fmu.Unlock()
		wake(s.flushWake)
		return
	}
	s.confirm(s.clog.wrote.Load())
	for _, r := range reqs {
		r.done(nil)
	}
	s.completed()
}

func (s *Store) completed() {
	if s.opts.OnCompletions != nil {
		s.opts.OnCompletions()
	}
}

// undoOffsets returns the queue offsets and entry indexes assigned to reqs,
// newest first. appendMu must be held.
func (s *Store) undoOffsets(reqs []*putReq) {
	for i := len(reqs) - 1; i >= 0; i-- {
		r := reqs[i]
		for j := len(r.msgs) - 1; j >= 0; j-- {
			m := r.msgs[j]
			s.queueOffsets[queueKey{m.Topic, m.QueueID}] = m.QueueOffset
		}
		s.lastIndex = r.index - 1
	}
}

// classify wraps a write error with the sentinel a caller can act on.
func classify(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, vfs.ErrNoSpace) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	if errors.Is(err, ErrClosed) || errors.Is(err, ErrDiskFull) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrWriteFailed, err)
}

// confirm lets the dispatcher publish data up to off.
func (s *Store) confirm(off int64) {
	for {
		cur := s.confirmed.Load()
		if off <= cur || s.confirmed.CompareAndSwap(cur, off) {
			break
		}
	}
	wake(s.dispatchWake)
}

func (s *Store) syncFlushLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.flushWake:
		case <-s.closing:
			s.syncFlushOnce()
			return
		}
		s.syncFlushOnce()
	}
}

// syncFlushOnce fsyncs what is written and completes the waiting puts.
func (s *Store) syncFlushOnce() {
	s.fmu.Lock()
	waiters := s.flushWait
	s.flushWait = nil
	s.fmu.Unlock()
	if len(waiters) == 0 {
		return
	}
	flushed, err := s.syncCommitLog()
	if err != nil {
		s.rollbackAfterFlushError(waiters, err)
		return
	}
	s.confirm(flushed)
	for _, r := range waiters {
		r.done(nil)
	}
	s.completed()
}

// rollbackAfterFlushError handles a failed fsync in SyncFlush mode: after
// it the page cache cannot be trusted, and nothing past the last good fsync
// was acknowledged, so the log is cut back there and every put past it
// fails.
func (s *Store) rollbackAfterFlushError(waiters []*putReq, ferr error) {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	s.fmu.Lock()
	waiters = append(waiters, s.flushWait...)
	s.flushWait = nil
	s.fmu.Unlock()
	keep := s.clog.flushed.Load()
	s.log.Error("fsync failed; cutting the commit log back to the last fsync", "offset", keep, "failed_puts", len(waiters), "err", ferr)
	s.waitDispatched(s.confirmed.Load())
	err := s.clog.truncate(keep)
	if err != nil {
		fatal := fmt.Errorf("%w: commit log unusable after fsync failure, restart needed: %w", ErrWriteFailed, err)
		s.fatal.Store(&fatal)
		s.log.Error("cannot cut back the commit log; refusing writes", "err", err)
	}
	for k := range s.queueOffsets {
		if q := s.queue(k.topic, k.queueID); q != nil {
			s.queueOffsets[k] = q.maxOffset.Load()
		} else {
			delete(s.queueOffsets, k)
		}
	}
	for _, r := range waiters {
		if r.index <= s.lastIndex {
			s.lastIndex = r.index - 1
		}
	}
	ferr = fmt.Errorf("%w: fsync: %w", ErrWriteFailed, ferr)
	for _, r := range waiters {
		r.done(ferr)
	}
	s.completed()
}

// waitDispatched blocks until the dispatcher has reached off.
func (s *Store) waitDispatched(off int64) {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	for s.dispatched.Load() < off {
		select {
		case <-s.closing:
			return
		default:
		}
		s.dcond.Wait()
	}
}

// flushLoop runs the periodic flush: the CommitLog (AsyncFlush), then the
// ConsumeQueues and the index, then the checkpoint.
// metaFlushInterval is how often ConsumeQueues, the index and the
// checkpoint are fsynced: recovery re-dispatches at most this much.
const metaFlushInterval = time.Second

func (s *Store) flushLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.FlushInterval)
	defer t.Stop()
	lastMeta := time.Now()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
		err := s.flushCommitLog()
		if err == nil && time.Since(lastMeta) >= metaFlushInterval {
			err = s.flushMeta()
			lastMeta = time.Now()
		}
		if err != nil {
			s.log.Error("periodic flush failed", "err", err)
		}
	}
}

// syncCommitLog fsyncs the CommitLog and records which entry the durable
// data ends with. It returns the flushed offset.
func (s *Store) syncCommitLog() (int64, error) {
	s.appendMu.Lock()
	p := LogPoint{Index: s.lastIndex, Term: s.term, Offset: s.clog.wrote.Load()}
	s.appendMu.Unlock()
	flushed, err := s.clog.flush()
	if err == nil && p.Offset > s.flushPoint.Load().Offset {
		s.flushPoint.Store(&p)
	}
	return flushed, err
}

// flushOnce makes the current state durable and records it.
func (s *Store) flushOnce() error {
	if err := s.flushCommitLog(); err != nil {
		return err
	}
	return s.flushMeta()
}

// flushCommitLog is the periodic CommitLog fsync of ASYNC_FLUSH.
func (s *Store) flushCommitLog() error {
	if s.opts.Flush != AsyncFlush {
		return nil
	}
	s.padTail()
	err := s.writeBackReplicated()
	if err == nil {
		_, err = s.syncCommitLog()
	}
	if err != nil {
		fenced := fmt.Errorf("%w: fsync failed, puts refused until it succeeds: %w", ErrWriteFailed, err)
		s.flushFence.Store(&fenced)
		return err
	}
	if s.flushFence.Swap(nil) != nil {
		s.log.Info("fsync succeeded again; accepting puts")
	}
	return nil
}

const pageSize = 4096

// writeBackReplicated writes a replicated log's whole pages back before the
// periodic fsync. A replicated log cannot be padded to a page boundary
// (padTail): only consensus writes it. Without this the fsync would put
// the tail page under write-back for as long as the whole interval's data
// takes to write, and every append in that time would wait (at 1 KiB and
// half the maximum rate, three paired runs: p99.9 publish latency 15.3 /
// 10.0 / 9.8 ms without the write-back, 10.6 / 7.5 / 8.0 ms with it).
func (s *Store) writeBackReplicated() error {
	if !s.opts.Replicated {
		return nil
	}
	return s.clog.writeBack()
}

// padTail fills the rest of the CommitLog's last page with a no-op entry
// before a periodic fsync, so the writes that follow start on a page the
// fsync is not writing back: a write into a page under writeback waits for
// that I/O, which showed as millisecond stalls of every put.
func (s *Store) padTail() {
	if s.opts.Replicated {
		return // the log holds only what consensus put there
	}
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	off := s.clog.wrote.Load()
	gap := int(pageSize - off%pageSize)
	if gap == pageSize || off == s.clog.flushed.Load() {
		return
	}
	if gap < entryHeaderSize {
		gap += pageSize
	}
	if !s.fits(off, gap) {
		return // the segment is about to roll anyway
	}
	buf := appendEntryHeader(s.wbuf[:0], EntryNoop, s.term, s.lastIndex+1)
	buf = append(buf, make([]byte, gap-entryHeaderSize)...)
	sealEntry(buf)
	if err := s.clog.append(off, buf); err != nil {
		s.log.Warn("padding the commit log tail failed", "err", err)
		return
	}
	s.lastIndex++
	s.confirm(s.clog.wrote.Load())
}

// flushMeta fsyncs the ConsumeQueues and the index, then records the
// checkpoint.
func (s *Store) flushMeta() error {
	s.dmu.Lock()
	dispatched, dispatchedIdx := s.dispatched.Load(), s.dispatchedIdx
	s.dmu.Unlock()
	for _, q := range s.allQueues() {
		if err := q.sync(); err != nil {
			return err
		}
	}
	if s.index != nil {
		if err := s.index.sync(); err != nil {
			return err
		}
	}
	fp := s.flushPoint.Load()
	return s.cp.update(func(c *checkpoint) {
		c.CommitLogFlush, c.FlushIndex, c.FlushTerm = fp.Offset, fp.Index, fp.Term
		c.Dispatched, c.DispatchedIdx = dispatched, dispatchedIdx
		c.Timestamp = s.opts.Now().UnixMilli()
	})
}

// Flush makes everything written so far durable now: the CommitLog, the
// ConsumeQueues, the index and the checkpoint.
func (s *Store) Flush() error {
	if _, err := s.syncCommitLog(); err != nil {
		return err
	}
	return s.flushOnce()
}

// Close stops the store: puts still queued fail with ErrClosed, written data
// is flushed, dispatched and checkpointed, and the files are closed. It is
// idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.pmu.Lock()
		close(s.closing)
		s.pmu.Unlock()
		s.dmu.Lock()
		s.dcond.Broadcast()
		s.dmu.Unlock()
		s.wg.Wait()
		var errs []error
		if _, err := s.syncCommitLog(); err != nil {
			errs = append(errs, err)
		} else {
			if !s.opts.Replicated {
				s.confirmed.Store(s.clog.wrote.Load())
			}
			errs = append(errs, s.dispatchAll())
			errs = append(errs, s.flushOnce())
		}
		errs = append(errs, s.closeFiles())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

func (s *Store) closeFiles() error {
	var errs []error
	if s.index != nil {
		errs = append(errs, s.index.close())
	}
	for _, q := range s.allQueues() {
		errs = append(errs, q.close())
	}
	if s.clog != nil {
		errs = append(errs, s.clog.close())
	}
	if s.cp != nil {
		errs = append(errs, s.cp.f.Close())
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
	}
	return errors.Join(errs...)
}

// queue returns the ConsumeQueue of (topic, queueID), or nil.
func (s *Store) queue(topic string, queueID int32) *consumeQueue {
	s.qmu.RLock()
	defer s.qmu.RUnlock()
	return s.queues[queueKey{topic, queueID}]
}

func (s *Store) queueOrCreate(topic string, queueID int32) *consumeQueue {
	if q := s.queue(topic, queueID); q != nil {
		return q
	}
	s.qmu.Lock()
	defer s.qmu.Unlock()
	k := queueKey{topic, queueID}
	if q := s.queues[k]; q != nil {
		return q
	}
	q := newConsumeQueue(s.opts.FS, s.cqRoot(), topic, queueID, s.opts.QueueFileEntries)
	s.queues[k] = q
	return q
}

func (s *Store) cqRoot() string { return filepath.Join(s.opts.Dir, "consumequeue") }

func (s *Store) allQueues() []*consumeQueue {
	s.qmu.RLock()
	defer s.qmu.RUnlock()
	out := make([]*consumeQueue, 0, len(s.queues))
	for _, q := range s.queues {
		out = append(out, q)
	}
	return out
}
