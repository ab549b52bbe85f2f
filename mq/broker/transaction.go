package broker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"qianlang.io/mq/message"
	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
)

// transactionGroup keys the checker's progress through the half and op
// queues in the offset table (replicated in a Raft group).
const transactionGroup = "CID_RMQ_SYS_TRANS"

// opTag tags the op records that close half messages.
const opTag = "d"

// Transaction outcomes of END_TRANSACTION's commitOrRollback.
const (
	txUnknown  = 0
	txCommit   = int64(message.TransactionCommit)
	txRollback = int64(message.TransactionRollback)
)

// transactions holds the state of transactional messages that is not in
// the log: the transactions resolved lately (so a commit that races a
// check-back of the same transaction is applied once) and the connection
// each producer group last sent a half message on (a fallback channel for
// check-backs before the producer's first heartbeat).
type transactions struct {
	mu       sync.Mutex
	resolved map[string]int64 // transaction id → outcome
	order    []string         // resolved ids, oldest first, for eviction
	lastConn map[string]*remoting.Conn
	checking sync.Mutex // one check pass at a time
}

// maxResolved bounds the resolved-transactions memory.
const maxResolved = 1 << 17

func newTransactions() *transactions {
	return &transactions{resolved: make(map[string]int64), lastConn: make(map[string]*remoting.Conn)}
}

func (t *transactions) outcome(id string) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o, ok := t.resolved[id]
	return o, ok
}

func (t *transactions) resolve(id string, outcome int64) {
	if id == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.resolved[id]; ok {
		return
	}
	t.resolved[id] = outcome
	t.order = append(t.order, id)
	if len(t.order) > maxResolved {
		drop := t.order[:len(t.order)/4]
		for _, old := range drop {
			delete(t.resolved, old)
		}
		t.order = append([]string(nil), t.order[len(drop):]...)
	}
}

func (t *transactions) sawHalf(group string, c *remoting.Conn) {
	t.mu.Lock()
	t.lastConn[group] = c
	t.mu.Unlock()
}

func (t *transactions) fallbackConn(group string) *remoting.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastConn[group]
}

func (t *transactions) connClosed(c *remoting.Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for g, lc := range t.lastConn {
		if lc == c {
			delete(t.lastConn, g)
		}
	}
}

// isTransactional reports whether a sent message is a half message.
func isTransactional(m *message.Message, known message.Known[string]) bool {
	return known.TranMsg == "true" || m.SysFlag&message.TransactionMask == message.TransactionPrepared
}

// makeHalf rewrites a transactional message into its half message, parked
// in RMQ_SYS_TRANS_HALF_TOPIC where consumers of the real topic cannot see
// it. A DELAY property stays on it and applies to the committed message.
func (b *Broker) makeHalf(c *remoting.Conn, m *message.Message, uniq string) *message.Message {
	p := message.SetProperty(m.Properties, message.PropTransactionID, uniq)
	p = message.SetProperty(p, message.PropRealTopic, m.Topic)
	p = message.SetProperty(p, message.PropRealQueueID, strconv.Itoa(int(m.QueueID)))
	m.Properties = p
	m.Topic, m.QueueID = TransHalfTopic, 0
	m.SysFlag &^= message.TransactionMask
	if g, ok := message.Property(p, message.PropProducerGroup); ok {
		b.tx.sawHalf(g, c)
	}
	return m
}

// endTransaction serves END_TRANSACTION: commit stores the real message
// and closes the half message, rollback only closes it. Both are written
// in one put, so a commit is never half applied.
func (b *Broker) endTransaction(req *remoting.Command) *remoting.Command {
	f := req.ExtFields
	group := f.Str("producerGroup")
	queueOff, err1 := f.Int64("tranStateTableOffset")
	phy, err2 := f.Int64("commitLogOffset")
	outcome, err3 := f.Int64("commitOrRollback")
	if err := errors.Join(err1, err2, err3); err != nil {
		return req.Errorf(remoting.InvalidParameter, "%v", err)
	}
	fromCheck := f.Bool("fromTransactionCheck", false)
	if outcome == txUnknown {
		b.log.Debug("transaction state unknown; it will be checked", "group", group, "offset", phy, "from_check", fromCheck)
		return req.Response(remoting.Success, "")
	}
	if outcome != txCommit && outcome != txRollback {
		return req.Errorf(remoting.InvalidParameter, "commitOrRollback=%d: want 8 (commit), 12 (rollback) or 0 (unknown)", outcome)
	}
	half, err := b.readHalf(phy, queueOff, group)
	if err != nil {
		b.log.Warn("end transaction refused", "group", group, "offset", phy, "err", err)
		return req.Errorf(remoting.SystemError, "%v", err)
	}
	msgs, err := b.closeHalf(half, outcome)
	if err != nil {
		return req.Errorf(remoting.SystemError, "%v", err)
	}
	if err := b.putSync(msgs); err != nil {
		return b.putError(req, err)
	}
	b.tx.resolve(transactionID(half), outcome)
	return req.Response(remoting.Success, "")
}

// readHalf reads and checks the half message an END_TRANSACTION names.
func (b *Broker) readHalf(phy, queueOff int64, group string) (*message.Message, error) {
	raw, err := b.store.ReadMessage(phy)
	if err != nil {
		return nil, fmt.Errorf("find prepared transaction message failed at offset %d: %w", phy, err)
	}
	m, _, err := message.DecodeRecord(raw)
	if err != nil {
		return nil, fmt.Errorf("the prepared transaction message at %d does not decode: %w", phy, err)
	}
	switch {
	case m.Topic != TransHalfTopic:
		return nil, fmt.Errorf("the message at offset %d is not a prepared transaction message (topic %s)", phy, m.Topic)
	case m.QueueOffset != queueOff:
		return nil, fmt.Errorf("the prepared transaction message at %d has queue offset %d, not %d", phy, m.QueueOffset, queueOff)
	}
	if pg, _ := message.Property(m.Properties, message.PropProducerGroup); pg != group {
		return nil, fmt.Errorf("the producer group %q differs from the prepared message's %q", group, pg)
	}
	return &m, nil
}

// closeHalf returns the messages that resolve a half message: for a commit
// the real message (parked first if it carries a delay) and the op record;
// for a rollback, or a transaction already resolved, only the op record.
func (b *Broker) closeHalf(half *message.Message, outcome int64) ([]*message.Message, error) {
	op := b.opRecord(half)
	if _, done := b.tx.outcome(transactionID(half)); done || outcome != txCommit {
		return []*message.Message{op}, nil
	}
	real, err := b.committed(half)
	if err != nil {
		return nil, err
	}
	return []*message.Message{real, op}, nil
}

// committed is the real message of a committed half message.
func (b *Broker) committed(half *message.Message) (*message.Message, error) {
	p := half.Properties
	topic, qid, ok := realQueue(p)
	if !ok {
		return nil, fmt.Errorf("the prepared transaction message at %d has no real topic or queue", half.PhysicalOffset)
	}
	for _, k := range []string{message.PropRealTopic, message.PropRealQueueID, message.PropTranMsg, message.PropCheckTimes} {
		p = message.DeleteProperty(p, k)
	}
	m := *half
	m.Topic, m.QueueID, m.Properties = topic, qid, p
	m.SysFlag = m.SysFlag&^message.TransactionMask | message.TransactionCommit
	m.PreparedTransactionOffset = half.PhysicalOffset
	m.QueueOffset, m.PhysicalOffset, m.StoreTimestamp = 0, 0, 0
	m.StoreHost = b.storeHost
	if _, err := b.sched.park(&m, message.ScanKnown(m.Properties), time.Now()); err != nil {
		return nil, err
	}
	return &m, nil
}

// opRecord closes a half message: its half-queue offset in the op queue,
// as Java writes it ("offset,").
func (b *Broker) opRecord(half *message.Message) *message.Message {
	props := message.EncodeProperties(map[string]string{
		message.PropTags:          opTag,
		message.PropTransactionID: transactionID(half),
	})
	return &message.Message{
		Topic: TransOpHalfTopic, QueueID: 0, Body: []byte(strconv.FormatInt(half.QueueOffset, 10) + ","),
		BornTimestamp: time.Now().UnixMilli(), BornHost: b.storeHost, StoreHost: b.storeHost,
		Properties: props,
	}
}

// transactionID is a half message's transaction id.
func transactionID(m *message.Message) string {
	if id, ok := message.Property(m.Properties, message.PropTransactionID); ok && id != "" {
		return id
	}
	id, _ := message.Property(m.Properties, message.PropUniqKey)
	return id
}

// transactionTopics are the transaction system topics.
func transactionTopics() []protocol.TopicConfig {
	rw := protocol.PermRead | protocol.PermWrite
	return []protocol.TopicConfig{
		{TopicName: TransHalfTopic, ReadQueueNums: 1, WriteQueueNums: 1, Perm: rw},
		{TopicName: TransOpHalfTopic, ReadQueueNums: 1, WriteQueueNums: 1, Perm: rw},
		{TopicName: TransCheckMax, ReadQueueNums: 1, WriteQueueNums: 1, Perm: rw},
	}
}

// parseOpBody reads the half-queue offsets an op record closes.
func parseOpBody(body []byte) []int64 {
	var out []int64
	for _, s := range strings.Split(string(body), ",") {
		if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil && n >= 0 {
			out = append(out, n)
		}
	}
	return out
}
