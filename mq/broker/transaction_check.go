package broker

import (
	"fmt"
	"strconv"
	"time"

	"qianlang.io/mq/message"
	"qianlang.io/mq/remoting"
)

// checkTransactions is one pass of the check-back service, run by the
// leader every transactionCheckInterval. It walks the half queue from its
// progress offset: a half message closed by an op record is passed; one
// younger than transactionTimeOut (or its CHECK_IMMUNITY_TIME_IN_SECONDS)
// ends the pass; one checked transactionCheckMax times is moved to
// TRANS_CHECK_MAX_TIME_TOPIC for an operator; any other is appended again
// with its check count raised and the producer group is asked about the
// copy (CHECK_TRANSACTION_STATE), so progress can move past the original.
// Progress is kept in the offset table, which a group replicates.
func (b *Broker) checkTransactions() {
	if !b.leads() {
		return
	}
	b.tx.checking.Lock()
	defer b.tx.checking.Unlock()
	if err := b.checkPass(time.Now()); err != nil {
		b.log.Warn("transaction check pass failed; retried next interval", "err", err)
	}
}

func (b *Broker) checkPass(now time.Time) error {
	halfFrom, _ := b.offsets.Get(transactionGroup, TransHalfTopic, 0)
	opFrom, _ := b.offsets.Get(transactionGroup, TransOpHalfTopic, 0)
	ops, err := b.readOps(opFrom)
	if err != nil {
		return err
	}
	off := max(halfFrom, b.store.MinOffset(TransHalfTopic, 0))
	end := b.store.MaxOffset(TransHalfTopic, 0)
	for off < end {
		if ops.closed[off] {
			off++
			continue
		}
		next, err := b.checkHalf(off, now)
		if err != nil {
			return err
		}
		if !next {
			break
		}
		off++
	}
	b.offsets.Commit(transactionGroup, TransHalfTopic, 0, off)
	b.offsets.Commit(transactionGroup, TransOpHalfTopic, 0, ops.passable(off))
	return nil
}

// opScan is what the op queue says from the checker's op progress on.
type opScan struct {
	from    int64
	closed  map[int64]bool // half-queue offsets closed
	highest []int64        // per op entry from `from`: the highest offset it closes
}

// passable is the op progress once the half progress reached halfOff: the
// op entries that close only offsets below it are not needed again.
func (s opScan) passable(halfOff int64) int64 {
	n := 0
	for n < len(s.highest) && s.highest[n] < halfOff {
		n++
	}
	return s.from + int64(n)
}

func (b *Broker) readOps(from int64) (opScan, error) {
	s := opScan{closed: make(map[int64]bool)}
	es, start, err := b.store.ReadQueue(TransOpHalfTopic, 0, from, 1<<20)
	s.from = start
	if err != nil {
		return s, err
	}
	for _, e := range es {
		raw, err := b.store.ReadMessage(e.PhysicalOffset)
		if err != nil {
			return s, fmt.Errorf("read op record: %w", err)
		}
		m, _, err := message.DecodeRecord(raw)
		if err != nil {
			return s, fmt.Errorf("op record at %d: %w", e.PhysicalOffset, err)
		}
		hi := int64(-1)
		for _, o := range parseOpBody(m.Body) {
			s.closed[o] = true
			hi = max(hi, o)
		}
		s.highest = append(s.highest, hi)
		if id, ok := message.Property(m.Properties, message.PropTransactionID); ok {
			b.tx.resolve(id, txRollback) // outcome unknown here; only "resolved" matters
		}
	}
	return s, nil
}

// checkHalf handles the open half message at queue offset off and reports
// whether the pass goes on past it.
func (b *Broker) checkHalf(off int64, now time.Time) (bool, error) {
	es, _, err := b.store.ReadQueue(TransHalfTopic, 0, off, 1)
	if err != nil || len(es) == 0 {
		return false, err
	}
	raw, err := b.store.ReadMessage(es[0].PhysicalOffset)
	if err != nil {
		return false, fmt.Errorf("read half message %d: %w", off, err)
	}
	half, _, err := message.DecodeRecord(raw)
	if err != nil {
		b.log.Error("a half message does not decode; skipped", "offset", off, "err", err)
		return true, nil
	}
	if _, done := b.tx.outcome(transactionID(&half)); done {
		// Resolved through another copy: close this one too.
		return true, b.putSync([]*message.Message{b.opRecord(&half)})
	}
	wait := b.cfg.TransactionTimeOut
	if s, ok := propInt(half.Properties, message.PropCheckImmunity); ok {
		wait = max(wait, time.Duration(s)*time.Second)
	}
	if now.Sub(time.UnixMilli(half.StoreTimestamp)) < wait {
		return false, nil
	}
	n, _ := propInt(half.Properties, message.PropCheckTimes)
	times := int(n)
	if times >= b.cfg.TransactionCheckMax {
		return true, b.discardHalf(&half, times)
	}
	group, _ := message.Property(half.Properties, message.PropProducerGroup)
	conns := b.producerConns(group)
	cp := half
	if len(conns) > 0 {
		// Only a check that reaches a producer counts: after a leader
		// change the producers reach the new leader with their next
		// heartbeat (up to 30 s later), and their transactions must not
		// run out of checks meanwhile.
		cp.Properties = message.SetProperty(half.Properties, message.PropCheckTimes, strconv.Itoa(times+1))
	}
	cp.QueueOffset, cp.PhysicalOffset, cp.StoreTimestamp = 0, 0, 0
	if err := b.putSync([]*message.Message{&cp}); err != nil {
		return false, fmt.Errorf("re-append half message: %w", err)
	}
	if len(conns) == 0 {
		b.log.Warn("no producer of the group is connected to check a transaction; checked again later", "group", group, "transaction", transactionID(&half))
		return true, nil
	}
	b.askProducer(&cp, conns)
	return true, nil
}

// producerConns are the connections a check-back can go to: the group's
// live producers, and the one that sent a half message of the group.
func (b *Broker) producerConns(group string) []*remoting.Conn {
	conns := b.clients.producerConns(group)
	if c := b.tx.fallbackConn(group); c != nil {
		conns = append(conns, c)
	}
	return conns
}

// discardHalf moves a half message checked too often to
// TRANS_CHECK_MAX_TIME_TOPIC, where an operator can inspect it, and closes
// it.
func (b *Broker) discardHalf(half *message.Message, times int) error {
	m := *half
	m.Topic, m.QueueID = TransCheckMax, 0
	m.QueueOffset, m.PhysicalOffset, m.StoreTimestamp = 0, 0, 0
	b.log.Warn("transaction checked too often; moved to "+TransCheckMax, "transaction", transactionID(half), "checks", times)
	return b.putSync([]*message.Message{&m, b.opRecord(half)})
}

// askProducer sends CHECK_TRANSACTION_STATE for a half message to a live
// connection of its producer group. The body is the message as the
// producer sent it (real topic and queue) at the half message's offsets.
func (b *Broker) askProducer(half *message.Message, conns []*remoting.Conn) {
	group, _ := message.Property(half.Properties, message.PropProducerGroup)
	m := *half
	topic, qid, _ := realQueue(m.Properties)
	m.Topic, m.QueueID = topic, qid
	uniq, _ := message.Property(m.Properties, message.PropUniqKey)
	fields := remoting.Fields{
		{Key: "tranStateTableOffset", Value: strconv.FormatInt(half.QueueOffset, 10)},
		{Key: "commitLogOffset", Value: strconv.FormatInt(half.PhysicalOffset, 10)},
		{Key: "msgId", Value: uniq},
		{Key: "transactionId", Value: transactionID(half)},
		{Key: "offsetMsgId", Value: message.OffsetMsgID(b.storeHost, half.PhysicalOffset)},
		{Key: "topic", Value: topic},
		{Key: "bname", Value: b.cfg.BrokerName},
	}
	body := message.AppendRecord(nil, &m)
	for _, c := range conns {
		req := remoting.NewRequest(remoting.CheckTransactionState, fields, body)
		if err := c.Oneway(req); err == nil {
			return
		}
	}
	b.log.Warn("asking the producer group about a transaction failed on every connection", "group", group)
}
