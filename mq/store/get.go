package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"qianlang.io/mq/message"
)

// GetStatus says what a GetMessages call found.
type GetStatus int

// Statuses of GetMessages, named as in RocketMQ.
const (
	Found GetStatus = iota
	NoMatchedMessage
	NoMessageInQueue
	OffsetTooSmall
	OffsetOverflowOne
	OffsetOverflowBadly
	MessageWasRemoving
)

var getStatusNames = [...]string{"FOUND", "NO_MATCHED_MESSAGE", "NO_MESSAGE_IN_QUEUE", "OFFSET_TOO_SMALL", "OFFSET_OVERFLOW_ONE", "OFFSET_OVERFLOW_BADLY", "MESSAGE_WAS_REMOVING"}

func (s GetStatus) String() string { return getStatusNames[s] }

// Filter selects messages for a pull. MatchTagsCode sees only the
// ConsumeQueue's tags code; when NeedsMessage is true, messages passing it
// are also given to MatchMessage with their properties.
type Filter interface {
	MatchTagsCode(code int64) bool
	NeedsMessage() bool
	MatchMessage(properties string) bool
}

// GetResult is the outcome of GetMessages.
type GetResult struct {
	Status          GetStatus
	NextBeginOffset int64
	MinOffset       int64
	MaxOffset       int64
	// Body is the concatenation of the found records, as pulled.
	Body  []byte
	Count int
	// Behind is the CommitLog bytes between the first message returned and
	// the end of the log: how far the consumer lags.
	Behind int64
}

// Limits of one GetMessages call.
const (
	maxScanEntries = 800       // ConsumeQueue entries looked at
	maxGetBytes    = 256 << 10 // message bytes returned (one message may exceed it)
)

// GetMessages reads up to maxMsgs messages of (topic, queueID) from queue
// offset off that pass filter (nil: all). maxMsgs 0 is taken as 1.
func (s *Store) GetMessages(topic string, queueID int32, off int64, maxMsgs int, filter Filter) (GetResult, error) {
	maxMsgs = max(maxMsgs, 1)
	q := s.queue(topic, queueID)
	var r GetResult
	if q == nil {
		r.Status, r.NextBeginOffset = NoMessageInQueue, 0
		if off != 0 {
			r.Status = OffsetOverflowBadly
		}
		return r, nil
	}
	r.MinOffset, r.MaxOffset = q.minOffset.Load(), q.maxOffset.Load()
	switch {
	case r.MaxOffset == 0:
		r.Status = NoMessageInQueue
		if off != 0 {
			r.Status = OffsetOverflowBadly
		}
		return r, nil
	case off < r.MinOffset:
		r.Status, r.NextBeginOffset = OffsetTooSmall, r.MinOffset
		return r, nil
	case off == r.MaxOffset:
		r.Status, r.NextBeginOffset = OffsetOverflowOne, off
		return r, nil
	case off > r.MaxOffset:
		r.Status, r.NextBeginOffset = OffsetOverflowBadly, r.MaxOffset
		return r, nil
	}
	entries, err := q.read(off, max(maxScanEntries, maxMsgs))
	if err != nil && len(entries) == 0 {
		if errors.Is(err, ErrDeleted) {
			r.Status, r.NextBeginOffset = OffsetTooSmall, q.minOffset.Load()
			return r, nil
		}
		return r, err
	}
	return s.collect(r, off, entries, maxMsgs, filter)
}

// collect reads the records of the entries that pass the filter, within
// the limits, and fills r.
func (s *Store) collect(r GetResult, off int64, entries []CQEntry, maxMsgs int, filter Filter) (GetResult, error) {
	clMin, clEnd := s.clog.minOffset(), s.clog.wrote.Load()
	var picked []CQEntry
	size, removed := 0, 0
	next := off
	for _, e := range entries {
		if len(picked) >= maxMsgs || (size+int(e.Size) > maxGetBytes && len(picked) > 0) {
			break
		}
		next++
		if e.Size <= 0 || e.PhysicalOffset < clMin {
			removed++
			continue
		}
		if e.PhysicalOffset+int64(e.Size) > clEnd {
			next-- // not readable yet; try again later
			break
		}
		if filter != nil && !filter.MatchTagsCode(e.TagsCode) {
			continue
		}
		picked = append(picked, e)
		size += int(e.Size)
	}
	r.NextBeginOffset = next
	if len(picked) == 0 {
		r.Status = NoMatchedMessage
		if removed > 0 {
			r.Status = MessageWasRemoving
		}
		return r, nil
	}
	body, err := s.readRecords(picked, size)
	if err != nil {
		if errors.Is(err, ErrDeleted) {
			r.Status = MessageWasRemoving
			return r, nil
		}
		return r, err
	}
	if filter != nil && filter.NeedsMessage() {
		body, err = filterBody(body, filter)
		if err != nil {
			return r, err
		}
	}
	r.Body = body
	r.Count = countRecords(body)
	r.Status = Found
	if r.Count == 0 {
		r.Status, r.Body = NoMatchedMessage, nil
	}
	r.Behind = clEnd - picked[0].PhysicalOffset
	return r, nil
}

// readRecords reads the records into one buffer, merging adjacent ones
// into one read.
func (s *Store) readRecords(es []CQEntry, size int) ([]byte, error) {
	body := make([]byte, size)
	pos := 0
	for i := 0; i < len(es); {
		j, n := i+1, int(es[i].Size)
		for j < len(es) && es[j].PhysicalOffset == es[j-1].PhysicalOffset+int64(es[j-1].Size) {
			n += int(es[j].Size)
			j++
		}
		if err := s.clog.readAt(body[pos:pos+n], es[i].PhysicalOffset); err != nil {
			return nil, err
		}
		pos += n
		i = j
	}
	return body, nil
}

// filterBody keeps the records whose properties pass filter.
func filterBody(body []byte, filter Filter) ([]byte, error) {
	out := body[:0]
	for pos := 0; pos < len(body); {
		m, n, err := message.DecodeRecord(body[pos:])
		if err != nil {
			return nil, fmt.Errorf("store: stored record: %w", err)
		}
		if filter.MatchMessage(m.Properties) {
			out = append(out, body[pos:pos+n]...)
		}
		pos += n
	}
	return out, nil
}

func countRecords(body []byte) int {
	n := 0
	for pos := 0; pos+4 <= len(body); n++ {
		pos += int(binary.BigEndian.Uint32(body[pos:]))
	}
	return n
}

// MaxOffset is the next queue offset to be written to (topic, queueID), 0
// for an unknown queue.
func (s *Store) MaxOffset(topic string, queueID int32) int64 {
	if q := s.queue(topic, queueID); q != nil {
		return q.maxOffset.Load()
	}
	return 0
}

// MinOffset is the first readable queue offset of (topic, queueID).
func (s *Store) MinOffset(topic string, queueID int32) int64 {
	if q := s.queue(topic, queueID); q != nil {
		return q.minOffset.Load()
	}
	return 0
}

// entryAt returns the ConsumeQueue entry at a queue offset.
func (s *Store) entryAt(q *consumeQueue, off int64) (CQEntry, error) {
	es, err := q.read(off, 1)
	if err != nil {
		return CQEntry{}, err
	}
	if len(es) == 0 {
		return CQEntry{}, fmt.Errorf("store: no entry at %d", off)
	}
	return es[0], nil
}

// StoreTime returns the store timestamp (ms) of the message at queue offset
// off of (topic, queueID).
func (s *Store) StoreTime(topic string, queueID int32, off int64) (int64, error) {
	q := s.queue(topic, queueID)
	if q == nil {
		return 0, fmt.Errorf("store: no queue %s/%d", topic, queueID)
	}
	e, err := s.entryAt(q, off)
	if err != nil {
		return 0, err
	}
	return s.storeTimeAt(e.PhysicalOffset)
}

// OffsetByTime returns the first queue offset whose message was stored at or
// after ts (ms); the max offset when every message is older, and the min
// offset when every message is newer.
func (s *Store) OffsetByTime(topic string, queueID int32, ts int64) (int64, error) {
	q := s.queue(topic, queueID)
	if q == nil {
		return 0, nil
	}
	lo, hi := q.minOffset.Load(), q.maxOffset.Load()
	var ferr error
	i := sort.Search(int(hi-lo), func(i int) bool {
		t, err := s.StoreTime(topic, queueID, lo+int64(i))
		if err != nil {
			ferr = err
			return true
		}
		return t >= ts
	})
	if ferr != nil {
		return 0, ferr
	}
	return lo + int64(i), nil
}

// ReadMessage returns the raw record at physical offset phy.
func (s *Store) ReadMessage(phy int64) ([]byte, error) {
	if phy < s.clog.minOffset() {
		return nil, fmt.Errorf("store: offset %d: %w", phy, ErrDeleted)
	}
	var h [4]byte
	if err := s.clog.readAt(h[:], phy); err != nil {
		return nil, err
	}
	size := int(binary.BigEndian.Uint32(h[:]))
	if size < 91 || size > s.opts.MaxMessageSize+64<<10 {
		return nil, fmt.Errorf("%w: no record at offset %d", ErrCorrupt, phy)
	}
	rec := make([]byte, size)
	if err := s.clog.readAt(rec, phy); err != nil {
		return nil, err
	}
	if _, _, err := message.DecodeRecord(rec); err != nil {
		return nil, fmt.Errorf("store: offset %d: %w", phy, err)
	}
	return rec, nil
}

// QueryByKey returns up to maxNum records of topic indexed under key (a
// KEYS entry or a UNIQ_KEY) and stored within [begin, end] ms, newest
// first.
func (s *Store) QueryByKey(topic, key string, maxNum int, begin, end int64) ([][]byte, error) {
	if s.index == nil {
		return nil, ErrIndexDisabled
	}
	phys, err := s.index.lookup(keyHash(topic, key), begin, end, maxNum*2+8)
	if err != nil {
		return nil, err
	}
	seen := make(map[int64]bool)
	var out [][]byte
	for _, phy := range phys {
		if seen[phy] || len(out) >= maxNum {
			continue
		}
		seen[phy] = true
		rec, err := s.ReadMessage(phy)
		if err != nil {
			continue // deleted by retention, or a stale entry past a cut tail
		}
		m, _, _ := message.DecodeRecord(rec)
		if m.Topic == topic && hasKey(m.Properties, key) {
			out = append(out, rec)
		}
	}
	return out, nil
}

func hasKey(props, key string) bool {
	if v, ok := message.Property(props, message.PropUniqKey); ok && v == key {
		return true
	}
	v, _ := message.Property(props, message.PropKeys)
	for _, k := range message.Keys(v) {
		if k == key {
			return true
		}
	}
	return false
}

// Stats describes the store.
type Stats struct {
	MinPhysicalOffset int64
	MaxPhysicalOffset int64
	Flushed           int64
	Dispatched        int64
	Queues            int
	DiskUsedRatio     float64
	Writable          error
}

// Stats returns current figures.
func (s *Store) Stats() Stats {
	st := Stats{
		MinPhysicalOffset: s.clog.minOffset(),
		MaxPhysicalOffset: s.clog.wrote.Load(),
		Flushed:           s.clog.flushed.Load(),
		Dispatched:        s.dispatched.Load(),
		Writable:          s.Writable(),
	}
	s.qmu.RLock()
	st.Queues = len(s.queues)
	s.qmu.RUnlock()
	if u := s.usage.Load(); u != nil {
		st.DiskUsedRatio = u.UsedRatio()
	}
	return st
}

// QueueIDs returns the queue ids the store holds for topic, ascending.
func (s *Store) QueueIDs(topic string) []int32 {
	s.qmu.RLock()
	defer s.qmu.RUnlock()
	var ids []int32
	for k := range s.queues {
		if k.topic == topic {
			ids = append(ids, k.queueID)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// DeleteTopic removes the ConsumeQueues of topic. Its records stay in the
// CommitLog until retention removes them, but are no longer reachable.
func (s *Store) DeleteTopic(topic string) error {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	s.qmu.Lock()
	var qs []*consumeQueue
	for k, q := range s.queues {
		if k.topic == topic {
			qs = append(qs, q)
			delete(s.queues, k)
			if !s.opts.Replicated {
				delete(s.queueOffsets, k) // replicated: offsets follow the log
			}
		}
	}
	s.qmu.Unlock()
	var errs []error
	for _, q := range qs {
		errs = append(errs, q.close())
	}
	errs = append(errs, s.opts.FS.RemoveAll(s.cqRoot()+"/"+topic))
	return errors.Join(errs...)
}

// ReadQueue returns up to n ConsumeQueue entries of (topic, queueID) from
// queue offset from. Entries below the queue's minimum are skipped: the
// first returned entry is at max(from, MinOffset). It returns that offset
// too; schedulers use it to walk a queue by due time (the tags code).
func (s *Store) ReadQueue(topic string, queueID int32, from int64, n int) ([]CQEntry, int64, error) {
	q := s.queue(topic, queueID)
	if q == nil {
		return nil, from, nil
	}
	from = max(from, q.minOffset.Load())
	if from >= q.maxOffset.Load() {
		return nil, from, nil
	}
	es, err := q.read(from, n)
	if err != nil && len(es) == 0 {
		if errors.Is(err, ErrDeleted) {
			return nil, q.minOffset.Load(), nil
		}
		return nil, from, err
	}
	return es, from, nil
}
