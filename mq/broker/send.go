package broker

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"qianlang.io/mq/message"
	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
	"qianlang.io/mq/replica"
	"qianlang.io/mq/store"
)

// sendHeader is a send request's header, from the long-key (V1) or the
// short-key (V2, batches) form.
type sendHeader struct {
	producerGroup  string
	topic          string
	defaultTopic   string
	defaultQueues  int
	queueID        int32
	sysFlag        int32
	bornTimestamp  int64
	flag           int32
	properties     string
	reconsumeTimes int32
	batch          bool
}

// The fields of a send header, in the order of sendFieldNames.
const (
	sfGroup = iota
	sfTopic
	sfDefaultTopic
	sfDefaultQueues
	sfQueueID
	sfSysFlag
	sfBorn
	sfFlag
	sfProps
	sfReconsume
	sfBatch
	sfCount
)

// sendFieldNames are the long (V1) names, which errors use for both forms.
var sendFieldNames = [sfCount]string{"producerGroup", "topic", "defaultTopic", "defaultTopicQueueNums", "queueId",
	"sysFlag", "bornTimestamp", "flag", "properties", "reconsumeTimes", "batch"}

// sendFieldLong and sendFieldShort number the keys of SEND_MESSAGE (V1)
// and of SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE; -1 for keys a send ignores.
func sendFieldLong(k string) int {
	switch k {
	case "producerGroup":
		return sfGroup
	case "topic":
		return sfTopic
	case "defaultTopic":
		return sfDefaultTopic
	case "defaultTopicQueueNums":
		return sfDefaultQueues
	case "queueId":
		return sfQueueID
	case "sysFlag":
		return sfSysFlag
	case "bornTimestamp":
		return sfBorn
	case "flag":
		return sfFlag
	case "properties":
		return sfProps
	case "reconsumeTimes":
		return sfReconsume
	case "batch":
		return sfBatch
	}
	return -1
}

func sendFieldShort(k string) int {
	if len(k) == 1 && k[0] >= 'a' && k[0] <= 'm' {
		return [...]int{sfGroup, sfTopic, sfDefaultTopic, sfDefaultQueues, sfQueueID, sfSysFlag, sfBorn, sfFlag, sfProps, sfReconsume, -1, -1, sfBatch}[k[0]-'a']
	}
	return -1
}

// sendFields holds a send header's values by field, the first of each key.
type sendFields struct {
	v    [sfCount]string
	seen [sfCount]bool
}

func (f *sendFields) set(id int, v string) {
	if id >= 0 && !f.seen[id] {
		f.v[id], f.seen[id] = v, true
	}
}

func (f *sendFields) required(id int) (string, error) {
	if f.v[id] == "" {
		return "", fmt.Errorf("%w: %s", remoting.ErrMissingField, sendFieldNames[id])
	}
	return f.v[id], nil
}

func (f *sendFields) int64(id int, def int64, optional bool) (int64, error) {
	if !f.seen[id] || (optional && f.v[id] == "") {
		if optional {
			return def, nil
		}
		return 0, fmt.Errorf("%w: %s", remoting.ErrMissingField, sendFieldNames[id])
	}
	n, err := strconv.ParseInt(f.v[id], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q", remoting.ErrBadField, sendFieldNames[id], f.v[id])
	}
	return n, nil
}

func (f *sendFields) int32(id int) (int32, error) {
	n, err := f.int64(id, 0, false)
	if err != nil {
		return 0, err
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		return 0, fmt.Errorf("%w: %s=%d out of range", remoting.ErrBadField, sendFieldNames[id], n)
	}
	return int32(n), nil
}

// parseSendHeader reads a send header in one pass over its fields: the
// long form when it has "topic", else the short one.
func parseSendHeader(req *remoting.Command) (sendHeader, error) {
	var long, short sendFields
	for _, kv := range req.ExtFields {
		long.set(sendFieldLong(kv.Key), kv.Value)
		short.set(sendFieldShort(kv.Key), kv.Value)
	}
	f := &long
	if !long.seen[sfTopic] {
		f = &short
	}
	var h sendHeader
	var err error
	if h.producerGroup, err = f.required(sfGroup); err != nil {
		return h, err
	}
	if h.topic, err = f.required(sfTopic); err != nil {
		return h, err
	}
	h.defaultTopic = f.v[sfDefaultTopic]
	n, err := f.int64(sfDefaultQueues, 4, true)
	if err != nil {
		return h, err
	}
	h.defaultQueues = int(n)
	if h.queueID, err = f.int32(sfQueueID); err != nil {
		return h, err
	}
	if h.sysFlag, err = f.int32(sfSysFlag); err != nil {
		return h, err
	}
	if h.bornTimestamp, err = f.int64(sfBorn, 0, false); err != nil {
		return h, err
	}
	if h.flag, err = f.int32(sfFlag); err != nil {
		return h, err
	}
	h.properties = f.v[sfProps]
	rt, err := f.int64(sfReconsume, 0, true)
	if err != nil {
		return h, err
	}
	h.reconsumeTimes = int32(rt)
	h.batch = req.Code == remoting.SendBatchMessage
	if b, err := strconv.ParseBool(f.v[sfBatch]); err == nil && f.seen[sfBatch] {
		h.batch = h.batch || b
	}
	return h, nil
}

// sendAnswerDeadline bounds how long a send waits for the store before it
// is answered: the Go client's async send crashes when no answer comes
// within its 3 s timeout.
const sendAnswerDeadline = 2500 * time.Millisecond

// send stores one message or a batch and answers with its ids and offsets.
// It runs on the connection's reader goroutine and never blocks on the
// store: the answer is written from the store's completion callback, or
// as FLUSH_DISK_TIMEOUT if the store takes longer than the deadline.
func (b *Broker) send(c *remoting.Conn, req *remoting.Command) *remoting.Command {
	h, err := parseSendHeader(req)
	if err != nil {
		return req.Errorf(remoting.InvalidParameter, "%v", err)
	}
	tc, resp := b.checkSend(req, &h)
	if resp != nil {
		return resp
	}
	ps := &pendingSend{b: b, c: c, req: req, topic: h.topic, queueID: h.queueID, group: h.producerGroup, start: time.Now()}
	msgs, uniq, resp := b.buildMessages(c, req, &h, tc, ps)
	if resp != nil {
		return resp
	}
	ps.msgs, ps.uniq = msgs, uniq
	if b.member == nil {
		// A group bounds the wait itself (replica PutTimeout), without a
		// timer per send.
		ps.timer = time.AfterFunc(min(b.cfg.SyncFlushTimeout, sendAnswerDeadline), ps.timeout)
	}
	b.put(msgs, ps.done)
	return nil
}

// pendingSend is a send waiting for the store.
type pendingSend struct {
	b        *Broker
	c        *remoting.Conn
	req      *remoting.Command
	msgs     []*message.Message
	topic    string
	uniq     string      // the single message's UNIQ_KEY
	queueID  int32       // the queue the client chose (a parked message is elsewhere)
	group    string      // the producer group
	timer    *time.Timer // nil in a group
	start    time.Time   // when the broker took the request
	answered atomic.Bool

	// A single message lives here rather than in allocations of its own.
	one [1]*message.Message
	msg message.Message
}

// timeout answers Java's FLUSH_DISK_TIMEOUT when the store is late: the
// message may still be stored.
func (p *pendingSend) timeout() {
	if p.answered.CompareAndSwap(false, true) {
		p.b.log.Warn("store did not confirm a send in time", "topic", p.topic)
		p.c.Respond(p.req, p.req.Errorf(remoting.FlushDiskTimeout, "flush disk timeout on broker %s", p.b.cfg.BrokerName))
	}
}

// done is the store's completion callback. The store has copied the
// bodies, so the request's frame buffer can be reused.
func (p *pendingSend) done(err error) {
	if p.timer != nil {
		p.timer.Stop()
	}
	b := p.b
	// Never proposed: this broker stopped leading before it could. The
	// request goes to the new leader, which answers it (and times it).
	unproposed := b.member != nil && errors.Is(err, replica.ErrNotLeader)
	if !unproposed {
		b.putTimes.record(p.start, time.Now()) // late answers count too
	}
	if !p.answered.CompareAndSwap(false, true) {
		p.req.Release()
		return
	}
	if unproposed {
		b.forward(p.c, p.req)
		return
	}
	defer p.req.Release()
	if err != nil {
		b.stats.putFailures.Add(1)
		p.c.Respond(p.req, b.putError(p.req, err))
		return
	}
	for _, m := range p.msgs {
		b.stats.putMessages.Add(1)
		b.stats.putBytes.Add(int64(len(m.Body)))
	}
	if p.req.Code == remoting.SendReplyMessage || p.req.Code == remoting.SendReplyMessageV2 {
		b.pushReply(p.msgs[0], p.group)
	} else if len(p.msgs) == 1 && strings.Contains(p.msgs[0].Properties, message.PropReplyToClient) {
		if id, ok := message.Property(p.msgs[0].Properties, message.PropReplyToClient); ok && id != "" {
			b.clients.noteRequester(id, p.c)
		}
	}
	// The answer is encoded into the connection's write buffer at once,
	// so it lives on this stack.
	var resp remoting.Command
	var fields [6]remoting.Field
	b.sendResponse(p, &resp, &fields)
	resp.ExtFields = fields[:]
	p.c.RespondQueued(p.req, &resp)
	b.kickLater(p.c)
}

// kickLater notes a connection with queued responses; kickQueued, run
// after each batch of store completions, wakes their writers once.
func (b *Broker) kickLater(c *remoting.Conn) {
	b.kickMu.Lock()
	b.kicks[c] = struct{}{}
	b.kickMu.Unlock()
}

func (b *Broker) kickQueued() {
	b.kickMu.Lock()
	for c := range b.kicks {
		c.Kick()
	}
	clear(b.kicks)
	b.kickMu.Unlock()
}

// checkSend validates the target and returns its topic config, or an error
// response.
func (b *Broker) checkSend(req *remoting.Command, h *sendHeader) (protocol.TopicConfig, *remoting.Command) {
	if b.cfg.BrokerPermission&protocol.PermWrite == 0 {
		return protocol.TopicConfig{}, req.Errorf(remoting.NoPermission, "the broker[%s] sending message is forbidden", b.cfg.BrokerName)
	}
	if err := ValidateTopic(h.topic); err != nil {
		return protocol.TopicConfig{}, req.Errorf(remoting.InvalidParameter, "%v", err)
	}
	if forbiddenSendTopics[h.topic] {
		return protocol.TopicConfig{}, req.Errorf(remoting.NoPermission, "sending message to topic[%s] is forbidden", h.topic)
	}
	tc, ok := b.topics.Get(h.topic)
	if !ok {
		var err error
		if tc, ok, err = b.autoCreateTopic(h); err != nil {
			return tc, req.Errorf(remoting.SystemError, "create topic %s: %v", h.topic, err)
		}
		if !ok {
			return tc, req.Errorf(remoting.TopicNotExist, "topic[%s] not exist, apply first please!", h.topic)
		}
	}
	if tc.Perm&protocol.PermWrite == 0 {
		return tc, req.Errorf(remoting.NoPermission, "the topic[%s] sending message is forbidden", h.topic)
	}
	limit := int32(max(tc.ReadQueueNums, tc.WriteQueueNums))
	if h.queueID >= limit {
		return tc, req.Errorf(remoting.InvalidParameter, "request queueId[%d] is illegal, topic %s has %d queues", h.queueID, h.topic, limit)
	}
	if h.queueID < 0 {
		h.queueID = rand.Int32N(int32(max(tc.WriteQueueNums, 1)))
	}
	if h.batch && strings.HasPrefix(h.topic, RetryGroupPrefix) {
		return tc, req.Errorf(remoting.MessageIllegal, "batch messages cannot be sent to retry topic %s", h.topic)
	}
	if h.batch && h.sysFlag&message.TransactionMask != 0 {
		return tc, req.Errorf(remoting.MessageIllegal, "batch messages cannot be transactional (sysFlag %d)", h.sysFlag)
	}
	if !h.batch {
		return tc, nil
	}
	if d, _ := message.Property(h.properties, message.PropDelay); d != "" && d != "0" {
		return tc, req.Errorf(remoting.MessageIllegal, "batch messages cannot be delayed (DELAY=%s)", d)
	}
	return tc, nil
}

// autoCreateTopic creates an unknown topic from its default topic, as Java
// does: the default topic must exist with the inherit bit; the new topic
// gets min(requested, default's) queues and the default's perm without
// inherit. Retry topics are created on demand.
func (b *Broker) autoCreateTopic(h *sendHeader) (protocol.TopicConfig, bool, error) {
	var tc protocol.TopicConfig
	if strings.HasPrefix(h.topic, RetryGroupPrefix) {
		tc = protocol.TopicConfig{TopicName: h.topic, ReadQueueNums: 1, WriteQueueNums: 1, Perm: protocol.PermRead | protocol.PermWrite}
	} else {
		def, ok := b.topics.Get(h.defaultTopic)
		if !ok || def.Perm&protocol.PermInherit == 0 || !b.cfg.AutoCreateTopicEnable {
			return tc, false, nil
		}
		n := max(1, min(h.defaultQueues, def.WriteQueueNums))
		tc = protocol.TopicConfig{TopicName: h.topic, ReadQueueNums: n, WriteQueueNums: n, Perm: def.Perm &^ protocol.PermInherit}
	}
	tc, created, err := b.topics.Ensure(tc)
	if err != nil {
		return tc, false, err
	}
	if created {
		b.log.Info("topic auto-created", "topic", tc.TopicName, "queues", tc.WriteQueueNums)
		b.requestRegister()
	}
	return tc, true, nil
}

// buildMessages turns the request into stored messages, or an error
// response. For a single message it also returns its UNIQ_KEY.
func (b *Broker) buildMessages(c *remoting.Conn, req *remoting.Command, h *sendHeader, tc protocol.TopicConfig, ps *pendingSend) ([]*message.Message, string, *remoting.Command) {
	base := message.Message{
		Topic: h.topic, QueueID: h.queueID, SysFlag: h.sysFlag, BornTimestamp: h.bornTimestamp,
		BornHost: bornHost(c), StoreHost: b.storeHost, ReconsumeTimes: h.reconsumeTimes,
	}
	if tc.TopicFilterType == "MULTI_TAG" {
		base.SysFlag |= message.FlagMultiTags
	}
	if !h.batch {
		m := &ps.msg
		*m = base
		m.Flag, m.Body, m.Properties = h.flag, req.Body, h.properties
		known := message.ScanKnown(m.Properties)
		if resp := b.checkMessage(req, m, known); resp != nil {
			return nil, "", resp
		}
		uniq := known.UniqKey
		if !known.HasUniqKey {
			uniq = b.uniq.Next(time.Now())
			m.Properties += message.PropUniqKey + "\x01" + uniq + "\x02"
		}
		m.Properties = b.withCluster(m.Properties, known.HasCluster)
		if isTransactional(m, known) {
			return []*message.Message{b.makeHalf(c, m, uniq)}, uniq, nil
		}
		if mayPark(m, known) {
			if _, err := b.sched.park(m, known, time.Now()); err != nil {
				return nil, "", req.Errorf(remoting.MessageIllegal, "%v", err)
			}
		}
		ps.one[0] = m
		return ps.one[:], uniq, nil
	}
	items, err := message.DecodeBatch(req.Body)
	if err != nil {
		return nil, "", req.Errorf(remoting.MessageIllegal, "bad batch body: %v", err)
	}
	msgs := make([]*message.Message, len(items))
	structs := make([]message.Message, len(items))
	for i, it := range items {
		m := &structs[i]
		*m = base
		m.Flag, m.Body = it.Flag, it.Body
		known := message.ScanKnown(it.Properties)
		m.Properties = b.withCluster(it.Properties, known.HasCluster)
		if resp := b.checkBatchItem(req, m); resp != nil {
			return nil, "", resp
		}
		msgs[i] = m
	}
	return msgs, "", nil
}

// withCluster adds the CLUSTER property, as Java's broker does (request
// and reply messages route by it).
func (b *Broker) withCluster(props string, has bool) string {
	if has {
		return message.SetProperty(props, message.PropCluster, b.cfg.BrokerClusterName)
	}
	return props + b.clusterProp
}

// checkMessage applies the per-message rules.
func (b *Broker) checkMessage(req *remoting.Command, m *message.Message, known message.Known[string]) *remoting.Command {
	if isTransactional(m, known) && b.cfg.RejectTransactionMessage {
		return req.Errorf(remoting.NoPermission, "the broker[%s] sending transaction message is forbidden (rejectTransactionMessage)", b.cfg.BrokerName)
	}
	return b.checkBatchItem(req, m)
}

// checkBatchItem applies the size rules (a batch's items are never
// delayed or transactional: Java stores them as they are).
func (b *Broker) checkBatchItem(req *remoting.Command, m *message.Message) *remoting.Command {
	if len(m.Body) > b.cfg.MaxMessageSize {
		return req.Errorf(remoting.MessageIllegal, "the message body size %d exceeds maxMessageSize %d", len(m.Body), b.cfg.MaxMessageSize)
	}
	if len(m.Properties) > message.MaxPropertiesLen-64 {
		return req.Errorf(remoting.MessageIllegal, "the message properties size %d exceeds %d", len(m.Properties), message.MaxPropertiesLen-64)
	}
	return nil
}

// putError maps a store error to the response the client acts on: a full
// disk or a closing store is SERVICE_NOT_AVAILABLE (the client retries on
// another broker), a failed write SYSTEM_ERROR (also retried).
func (b *Broker) putError(req *remoting.Command, err error) *remoting.Command {
	if resp := b.replicaPutError(req, err); resp != nil {
		return resp
	}
	switch {
	case errors.Is(err, store.ErrDiskFull):
		return req.Errorf(remoting.ServiceNotAvailable, "service not available now: the disk of broker %s is full: %v", b.cfg.BrokerName, err)
	case errors.Is(err, store.ErrClosed):
		return req.Errorf(remoting.ServiceNotAvailable, "service not available now: broker %s is shutting down", b.cfg.BrokerName)
	case errors.Is(err, store.ErrMessageTooLarge):
		return req.Errorf(remoting.MessageIllegal, "%v", err)
	}
	b.log.Error("put failed", "err", err)
	return req.Errorf(remoting.SystemError, "store failed on broker %s: %v", b.cfg.BrokerName, err)
}

// sendResponse fills resp and fields with the answer to a stored send.
// The caller makes fields resp's extFields: assigning it here would move
// both to the heap.
func (b *Broker) sendResponse(p *pendingSend, resp *remoting.Command, fields *[6]remoting.Field) {
	req, msgs := p.req, p.msgs
	req.ResponseTo(resp, remoting.Success, "")
	var msgID string
	if len(msgs) == 1 {
		msgID = message.OffsetMsgID(b.storeHost, msgs[0].PhysicalOffset)
	} else {
		ids := make([]string, len(msgs))
		for i, m := range msgs {
			ids[i] = message.OffsetMsgID(b.storeHost, m.PhysicalOffset)
		}
		msgID = strings.Join(ids, ",")
	}
	*fields = [...]remoting.Field{
		{Key: "msgId", Value: msgID},
		{Key: "queueId", Value: strconv.Itoa(int(p.queueID))},
		{Key: "queueOffset", Value: strconv.FormatInt(msgs[0].QueueOffset, 10)},
		{Key: "transactionId", Value: p.uniq},
		{Key: "MSG_REGION", Value: "DefaultRegion"},
		{Key: "TRACE_ON", Value: "true"},
	}
}
