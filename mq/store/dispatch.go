package store

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"qianlang.io/mq/message"
)

// dispatchLoop builds the ConsumeQueues and the index from the CommitLog up
// to the confirmed offset.
func (s *Store) dispatchLoop() {
	defer s.wg.Done()
	d := newDispatcher(s)
	for {
		if s.dispatched.Load() >= s.confirmed.Load() {
			select {
			case <-s.dispatchWake:
				continue
			case <-s.closing:
				return
			}
		}
		if err := d.run(s.dispatched.Load(), s.confirmed.Load()); err != nil {
			s.log.Error("dispatch failed; retrying", "offset", s.dispatched.Load(), "err", err)
			select {
			case <-time.After(200 * time.Millisecond):
			case <-s.closing:
				return
			}
		}
	}
}

// dispatchAll dispatches everything up to the confirmed offset on the
// calling goroutine (recovery and close, when the loop is not running).
func (s *Store) dispatchAll() error {
	d := newDispatcher(s)
	for s.dispatched.Load() < s.confirmed.Load() {
		if err := d.run(s.dispatched.Load(), s.confirmed.Load()); err != nil {
			return err
		}
	}
	return nil
}

// dispatcher turns CommitLog entries into ConsumeQueue and index entries.
type dispatcher struct {
	s       *Store
	topics  topicNames
	buf     []byte
	batches map[queueKey]*cqBatch
	order   []queueKey
	spare   []*cqBatch // flushed batches, reused with their buffers
	// indexFrom: records at or after this physical offset are indexed;
	// recovery sets it so records already in the index are skipped.
	indexFrom int64
	lastIndex uint64 // index of the last entry seen
}

// Flushed batches kept for reuse: at most this many, with buffers of at
// most this size.
const (
	maxSpareBatches    = 1024
	maxSpareBatchBytes = 64 << 10
)

type cqBatch struct {
	q    *consumeQueue
	from int64 // queue offset of the first entry in buf
	buf  []byte
}

func newDispatcher(s *Store) *dispatcher {
	return &dispatcher{s: s, topics: make(topicNames), batches: make(map[queueKey]*cqBatch), indexFrom: s.indexResume}
}

// run dispatches one scan's worth of entries in [from, limit) and publishes
// the result.
func (d *dispatcher) run(from, limit int64) error {
	end, stop, err := d.s.clog.scan(from, limit, &d.buf, d.entry)
	if ferr := d.flushBatches(); ferr != nil {
		return ferr
	}
	if err != nil || stop == stopTorn {
		return fmt.Errorf("store: dispatch at %d: %w", end, err)
	}
	if stop == stopEnd && end < limit {
		return fmt.Errorf("%w: dispatch found the end of data at %d before the confirmed offset %d", ErrCorrupt, end, limit)
	}
	d.s.dmu.Lock()
	if d.lastIndex != 0 {
		d.s.dispatchedIdx = d.lastIndex
	}
	d.s.dispatched.Store(end)
	d.s.dcond.Broadcast()
	d.s.dmu.Unlock()
	return nil
}

// entry handles one CommitLog entry.
func (d *dispatcher) entry(off int64, e []byte) error {
	d.lastIndex = entryIndexOf(e)
	if entryTypeOf(e) != EntryMessages {
		return nil
	}
	payload := e[entryHeaderSize:]
	for pos := 0; pos < len(payload); {
		m, err := message.ParseRecord(payload[pos:])
		if err != nil {
			return fmt.Errorf("record at %d: %w", off+entryHeaderSize+int64(pos), err)
		}
		d.record(&m)
		pos += int(m.Size)
	}
	return nil
}

// topicNames hands out one string per topic name read from record bytes,
// so hot paths that key maps by topic allocate nothing for a known topic.
type topicNames map[string]string

func (t topicNames) intern(b []byte) string {
	if s, ok := t[string(b)]; ok {
		return s
	}
	if len(t) >= 4096 {
		clear(t)
	}
	s := string(b)
	t[s] = s
	return s
}

func (d *dispatcher) record(m *message.RecordRef) {
	topic := d.topics.intern(m.Topic)
	k := queueKey{topic, m.QueueID}
	b := d.batches[k]
	if b == nil {
		b = d.newBatch(d.s.queueOrCreate(topic, m.QueueID), m.QueueOffset)
		d.batches[k] = b
		d.order = append(d.order, k)
	}
	if m.QueueOffset != b.from+int64(len(b.buf)/cqEntrySize) {
		// Not contiguous (re-dispatch over a gap): start a new run.
		if err := b.q.write(b.from, b.buf); err != nil {
			d.s.log.Error("consume queue write failed", "topic", topic, "queue", m.QueueID, "err", err)
		}
		b.from, b.buf = m.QueueOffset, b.buf[:0]
	}
	known := message.ScanKnown(m.Properties)
	var e [cqEntrySize]byte
	putCQEntry(e[:], CQEntry{PhysicalOffset: m.PhysicalOffset, Size: m.Size, TagsCode: tagsCode(known)})
	b.buf = append(b.buf, e[:]...)
	if d.s.index != nil && m.PhysicalOffset >= d.indexFrom {
		d.indexKeys(topic, m, known)
	}
}

func (d *dispatcher) indexKeys(topic string, m *message.RecordRef, known message.Known[[]byte]) {
	put := func(key []byte) {
		if len(key) == 0 {
			return
		}
		if err := d.s.index.put(keyHashBytes(topic, key), m.PhysicalOffset, m.StoreTimestamp); err != nil {
			d.s.log.Error("index write failed", "err", err)
		}
	}
	put(known.UniqKey)
	if v := known.Keys; len(v) > 0 {
		for len(v) > 0 {
			i := bytes.IndexByte(v, ' ')
			if i < 0 {
				put(v)
				break
			}
			put(v[:i])
			v = v[i+1:]
		}
	}
}

// flushBatches writes the collected ConsumeQueue entries, one write per
// queue, and wakes the long polls of each queue.
func (d *dispatcher) flushBatches() error {
	var first error
	listener := d.s.arrival.Load()
	for _, k := range d.order {
		b := d.batches[k]
		if len(b.buf) == 0 {
			continue
		}
		if err := b.q.write(b.from, b.buf); err != nil && first == nil {
			first = err
		}
		if listener != nil {
			(*listener)(k.topic, k.queueID, b.q.maxOffset.Load())
		}
	}
	for _, b := range d.batches {
		if len(d.spare) < maxSpareBatches && cap(b.buf) <= maxSpareBatchBytes {
			*b = cqBatch{buf: b.buf[:0]}
			d.spare = append(d.spare, b)
		}
	}
	clear(d.batches)
	d.order = d.order[:0]
	return first
}

// newBatch starts collecting entries for q from queue offset from.
func (d *dispatcher) newBatch(q *consumeQueue, from int64) *cqBatch {
	if n := len(d.spare); n > 0 {
		b := d.spare[n-1]
		d.spare = d.spare[:n-1]
		b.q, b.from = q, from
		return b
	}
	return &cqBatch{q: q, from: from}
}

// tagsCode is a record's ConsumeQueue tags code: the hash of its tag, or,
// for a message parked until a due time, that time in Unix ms.
func tagsCode(known message.Known[[]byte]) int64 {
	if len(known.Due) > 0 {
		if due, err := strconv.ParseInt(string(known.Due), 10, 64); err == nil {
			return due
		}
	}
	return int64(message.JavaHash(0, known.Tags))
}
