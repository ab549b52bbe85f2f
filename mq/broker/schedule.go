package broker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"qianlang.io/mq/message"
	"qianlang.io/mq/protocol"
	"qianlang.io/mq/schedule"
	"qianlang.io/mq/store"
)

// scheduleGroup keys the schedulers' progress in the offset table, which a
// Raft group replicates: a new leader resumes delivery where the old one
// left off (a few messages may be delivered twice, none lost).
const scheduleGroup = "SCHEDULE_PROGRESS"

// scheduleBatch is how many due messages one step delivers.
const scheduleBatch = 128

// scheduler delivers parked messages when they fall due: one loop per
// schedule queue, the delay levels of SCHEDULE_TOPIC_XXXX and the rungs of
// the timer ladder. Only the leader (or a standalone broker) delivers; a
// delivery is a put of the real message, and the queue's progress moves
// past the parked entry only once that put succeeded.
type scheduler struct {
	b      *Broker
	levels []time.Duration
	wake   map[queueRef]chan struct{}
}

func newScheduler(b *Broker, levels []time.Duration) *scheduler {
	s := &scheduler{b: b, levels: levels, wake: make(map[queueRef]chan struct{})}
	for i := range levels {
		s.wake[queueRef{topic: ScheduleTopic, queueID: int32(i)}] = make(chan struct{}, 1)
	}
	for i := range schedule.Rungs {
		s.wake[queueRef{topic: TimerTopic, queueID: int32(i)}] = make(chan struct{}, 1)
	}
	return s
}

// topics are the schedule topics' configs, created at start.
func (s *scheduler) topics() []protocol.TopicConfig {
	return []protocol.TopicConfig{
		{TopicName: ScheduleTopic, ReadQueueNums: len(s.levels), WriteQueueNums: len(s.levels), Perm: protocol.PermRead | protocol.PermWrite},
		{TopicName: TimerTopic, ReadQueueNums: len(schedule.Rungs), WriteQueueNums: len(schedule.Rungs), Perm: protocol.PermRead | protocol.PermWrite},
	}
}

// start runs one loop per schedule queue until the broker stops.
func (s *scheduler) start() {
	for q, ch := range s.wake {
		s.b.wg.Add(1)
		go s.run(q, ch)
	}
}

// arrived wakes the loop of a schedule queue that got a message.
func (s *scheduler) arrived(topic string, queueID int32) {
	if topic != ScheduleTopic && topic != TimerTopic {
		return
	}
	if ch, ok := s.wake[queueRef{topic: topic, queueID: queueID}]; ok {
		wake(ch)
	}
}

// wakeAll wakes every loop (a change of leadership).
func (s *scheduler) wakeAll() {
	for _, ch := range s.wake {
		wake(ch)
	}
}

// wake signals ch without blocking.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (s *scheduler) run(q queueRef, wake chan struct{}) {
	defer s.b.wg.Done()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for {
		wait := time.Second
		if s.b.leads() {
			var err error
			wait, err = s.step(q, time.Now())
			if err != nil {
				s.b.log.Warn("delivering scheduled messages failed; retrying", "topic", q.topic, "queue", q.queueID, "err", err)
				wait = time.Second
			}
		}
		if wait <= 0 {
			select {
			case <-s.b.stop:
				return
			default:
			}
			continue
		}
		t.Reset(wait)
		select {
		case <-s.b.stop:
			return
		case <-wake:
		case <-t.C:
		}
	}
}

// step delivers the due head of a queue. It returns how long to wait
// before the next step: 0 to go on at once, the time until the head falls
// due, or a second when the queue is empty (an arrival wakes it sooner).
func (s *scheduler) step(q queueRef, now time.Time) (time.Duration, error) {
	from, _ := s.b.offsets.Get(scheduleGroup, q.topic, q.queueID)
	es, start, err := s.b.store.ReadQueue(q.topic, q.queueID, from, scheduleBatch)
	if err != nil {
		return 0, err
	}
	if len(es) == 0 {
		if start != from {
			s.b.offsets.Commit(scheduleGroup, q.topic, q.queueID, start)
		}
		return time.Second, nil
	}
	nowMS := now.UnixMilli()
	due := es
	var wait time.Duration
	for i, e := range es {
		if e.TagsCode > nowMS {
			due, wait = es[:i], time.Duration(e.TagsCode-nowMS)*time.Millisecond
			break
		}
	}
	if len(due) == 0 {
		return wait, nil
	}
	var out []*message.Message
	for _, e := range due {
		m, err := s.next(q, e, now)
		if err != nil {
			return 0, err
		}
		if m != nil {
			out = append(out, m)
		}
	}
	if len(out) > 0 {
		if err := s.b.putSync(out); err != nil {
			return 0, fmt.Errorf("put: %w", err)
		}
	}
	s.b.offsets.Commit(scheduleGroup, q.topic, q.queueID, start+int64(len(due)))
	return 0, nil
}

// next is what a due parked entry becomes: the real message, a further hop
// down the timer ladder, or nothing (a record that cannot be delivered,
// logged).
func (s *scheduler) next(q queueRef, e store.CQEntry, now time.Time) (*message.Message, error) {
	raw, err := s.b.store.ReadMessage(e.PhysicalOffset)
	if err != nil {
		if errors.Is(err, store.ErrDeleted) {
			s.b.log.Error("a scheduled message was deleted by retention before it fell due", "topic", q.topic, "queue", q.queueID, "offset", e.PhysicalOffset)
			return nil, nil
		}
		return nil, err
	}
	m, _, err := message.DecodeRecord(raw)
	if err != nil {
		s.b.log.Error("a scheduled record does not decode; skipped", "offset", e.PhysicalOffset, "err", err)
		return nil, nil
	}
	if q.topic == TimerTopic {
		return s.nextTimer(&m, now)
	}
	return s.deliverable(&m), nil
}

// nextTimer re-parks a timer message that is not yet due on the next rung,
// as a small hop record pointing at the parked message, or delivers it.
func (s *scheduler) nextTimer(m *message.Message, now time.Time) (*message.Message, error) {
	at, _ := propInt(m.Properties, message.PropTimerDeliverMS)
	ref := m.PhysicalOffset
	if r, ok := propInt(m.Properties, message.PropTimerRef); ok {
		ref = r
	}
	if rung, ok := schedule.Rung(time.UnixMilli(at).Sub(now)); ok {
		hop := &message.Message{
			Topic: TimerTopic, QueueID: int32(rung), BornTimestamp: now.UnixMilli(),
			BornHost: s.b.storeHost, StoreHost: s.b.storeHost,
			Properties: message.EncodeProperties(map[string]string{
				message.PropTimerRef:       strconv.FormatInt(ref, 10),
				message.PropTimerDeliverMS: strconv.FormatInt(at, 10),
				message.PropDueMS:          strconv.FormatInt(now.Add(schedule.Rungs[rung]).UnixMilli(), 10),
			}),
		}
		return hop, nil
	}
	if ref == m.PhysicalOffset {
		return s.deliverable(m), nil
	}
	raw, err := s.b.store.ReadMessage(ref)
	if err != nil {
		if errors.Is(err, store.ErrDeleted) {
			s.b.log.Error("a timer message was deleted by retention before it fell due", "offset", ref)
			return nil, nil
		}
		return nil, err
	}
	orig, _, err := message.DecodeRecord(raw)
	if err != nil {
		s.b.log.Error("a timer message does not decode; skipped", "offset", ref, "err", err)
		return nil, nil
	}
	return s.deliverable(&orig), nil
}

// deliverable turns a parked message back into its real one: real topic
// and queue, a fresh store position, the scheduling properties removed
// (REAL_TOPIC and REAL_QID stay, as in Java).
func (s *scheduler) deliverable(m *message.Message) *message.Message {
	props := m.Properties
	topic, id, ok := realQueue(props)
	if !ok {
		s.b.log.Error("a scheduled message has no real topic or queue; dropped", "offset", m.PhysicalOffset)
		return nil
	}
	for _, k := range []string{message.PropDelay, message.PropDueMS, message.PropTimerRef} {
		props = message.DeleteProperty(props, k)
	}
	out := *m
	out.Topic, out.QueueID, out.Properties = topic, id, props
	out.QueueOffset, out.PhysicalOffset, out.StoreTimestamp = 0, 0, 0
	out.StoreHost = s.b.storeHost
	return &out
}

// park rewrites a message sent with a delay level or a delivery time so
// that it waits in a schedule queue. It reports whether the message was
// parked, or an error for a delivery time beyond timerMaxDelaySec.
func (s *scheduler) park(m *message.Message, known message.Known[string], now time.Time) (bool, error) {
	if known.Delay != "" {
		level, err := strconv.Atoi(known.Delay)
		if err != nil || level <= 0 {
			return false, nil
		}
		level = min(level, len(s.levels))
		s.parkIn(m, ScheduleTopic, int32(level-1), now.Add(s.levels[level-1]))
		return true, nil
	}
	at, ok, err := timerDeliverAt(m.Properties, now)
	if err != nil || !ok {
		return false, err
	}
	if d, limit := at.Sub(now), s.b.cfg.timerMax(); d > limit {
		return false, fmt.Errorf("the delivery time is %v away, beyond timerMaxDelaySec %d", d.Round(time.Second), int64(limit/time.Second))
	}
	rung, ok := schedule.Rung(at.Sub(now))
	if !ok {
		return false, nil // due already: stored as a plain message
	}
	for _, k := range []string{message.PropTimerDelaySec, message.PropTimerDelayMS} {
		m.Properties = message.DeleteProperty(m.Properties, k)
	}
	m.Properties = message.SetProperty(m.Properties, message.PropTimerDeliverMS, strconv.FormatInt(at.UnixMilli(), 10))
	s.parkIn(m, TimerTopic, int32(rung), now.Add(schedule.Rungs[rung]))
	return true, nil
}

// mayPark is a quick test for the properties park acts on, so a plain
// send skips looking up three timer properties one by one.
func mayPark(m *message.Message, known message.Known[string]) bool {
	return known.Delay != "" || strings.Contains(m.Properties, "TIMER_")
}

func (s *scheduler) parkIn(m *message.Message, topic string, queueID int32, due time.Time) {
	p := message.SetProperty(m.Properties, message.PropRealTopic, m.Topic)
	p = message.SetProperty(p, message.PropRealQueueID, strconv.Itoa(int(m.QueueID)))
	m.Properties = message.SetProperty(p, message.PropDueMS, strconv.FormatInt(due.UnixMilli(), 10))
	m.Topic, m.QueueID = topic, queueID
}

// timerDeliverAt reads RocketMQ 5's timer properties: TIMER_DELIVER_MS (an
// absolute time in Unix ms), TIMER_DELAY_SEC or TIMER_DELAY_MS (relative to
// now).
func timerDeliverAt(props string, now time.Time) (time.Time, bool, error) {
	for _, p := range []struct {
		key  string
		unit time.Duration
		abs  bool
	}{{message.PropTimerDeliverMS, time.Millisecond, true}, {message.PropTimerDelaySec, time.Second, false}, {message.PropTimerDelayMS, time.Millisecond, false}} {
		v, ok := message.Property(props, p.key)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return time.Time{}, false, fmt.Errorf("property %s=%q: want a non-negative integer", p.key, v)
		}
		if p.abs {
			return time.UnixMilli(n), true, nil
		}
		if n > int64(100*365*24*time.Hour/p.unit) {
			return time.Time{}, false, fmt.Errorf("property %s=%q is too large", p.key, v)
		}
		return now.Add(time.Duration(n) * p.unit), true, nil
	}
	return time.Time{}, false, nil
}

// realQueue reads the REAL_TOPIC and REAL_QID a parked or half message
// carries.
func realQueue(props string) (string, int32, bool) {
	topic, _ := message.Property(props, message.PropRealTopic)
	qid, ok := propInt(props, message.PropRealQueueID)
	return topic, int32(qid), topic != "" && ok && qid >= 0 && qid <= 1<<16
}

// propInt reads an integer property.
func propInt(props, key string) (int64, bool) {
	v, ok := message.Property(props, key)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}
