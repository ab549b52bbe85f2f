package broker

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"qianlang.io/mq/message"
	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
)

// heartbeat registers a client's producer and consumer groups. Each
// consumer group gets its subscription group and retry topic on first
// sight; a membership or subscription change notifies the group.
func (b *Broker) heartbeat(c *remoting.Conn, req *remoting.Command) *remoting.Command {
	var hb protocol.HeartbeatData
	if err := protocol.Decode(req.Body, "heartbeat", &hb); err != nil {
		return req.Errorf(remoting.SystemError, "%v", err)
	}
	now := time.Now()
	var bad []string
	producers := make(map[string]bool, len(hb.ProducerDataSet))
	for _, pd := range hb.ProducerDataSet {
		producers[pd.GroupName] = true
		b.clients.producerHeartbeat(&clientChannel{clientID: hb.ClientID, conn: c, language: req.Language, version: req.Version, lastSeen: now}, pd.GroupName)
	}
	b.clients.keepProducers(c.ID(), producers)
	for _, cd := range hb.ConsumerDataSet {
		g, err := b.subscriptionGroup(cd.GroupName)
		if err != nil {
			return req.Errorf(remoting.SubscriptionGroupMissing, "%v", err)
		}
		if cd.MessageModel == protocol.Clustering {
			if err := b.ensureRetryTopic(cd.GroupName, g); err != nil {
				return req.Errorf(remoting.SystemError, "create retry topic: %v", err)
			}
		}
		for _, sd := range cd.SubscriptionDataSet {
			if sd.ExpressionType == protocol.ExpressionSQL92 {
				if _, err := b.filterFor(sd.SubString, sd.ExpressionType); err != nil {
					bad = append(bad, fmt.Sprintf("group %s topic %s: %v", cd.GroupName, sd.Topic, err))
				}
			}
		}
		ch := &clientChannel{clientID: hb.ClientID, conn: c, language: req.Language, version: req.Version, lastSeen: now}
		if b.clients.consumerHeartbeat(ch, cd) && g.NotifyConsumerIdsChangedEnable {
			b.notifyGroup(cd.GroupName)
		}
	}
	if len(bad) > 0 {
		// The client is registered all the same (its pulls of that topic
		// are refused with the same message); the client logs the remark.
		b.log.Warn("a consumer subscribes with an unusable filter", "client", hb.ClientID, "problems", bad)
		return req.Errorf(remoting.SubscriptionParseFailed, "%s", strings.Join(bad, "; "))
	}
	return req.Response(remoting.Success, "")
}

// subscriptionGroup returns a group's config, creating it with Java's
// defaults when autoCreateSubscriptionGroup is on.
func (b *Broker) subscriptionGroup(name string) (protocol.SubscriptionGroupConfig, error) {
	if g, ok := b.groups.Get(name); ok {
		return g, nil
	}
	if !b.cfg.AutoCreateSubscriptionGroup {
		return protocol.SubscriptionGroupConfig{}, fmt.Errorf("subscription group [%s] does not exist", name)
	}
	g := protocol.DefaultSubscriptionGroup(name)
	if err := b.groups.Put(g); err != nil {
		return g, err
	}
	return g, nil
}

// ensureRetryTopic creates %RETRY%<group> and registers it at once, so the
// group's retried messages are routable.
func (b *Broker) ensureRetryTopic(group string, g protocol.SubscriptionGroupConfig) error {
	n := max(g.RetryQueueNums, 1)
	_, created, err := b.topics.Ensure(protocol.TopicConfig{TopicName: RetryTopic(group), ReadQueueNums: n, WriteQueueNums: n, Perm: protocol.PermRead | protocol.PermWrite})
	if created {
		b.requestRegister()
	}
	return err
}

// notifyGroup sends NOTIFY_CONSUMER_IDS_CHANGED to every member of a group.
func (b *Broker) notifyGroup(group string) {
	if g, ok := b.groups.Get(group); ok && !g.NotifyConsumerIdsChangedEnable {
		return
	}
	for _, c := range b.clients.conns(group) {
		req := remoting.NewRequest(remoting.NotifyConsumerIDsChanged, remoting.Fields{{Key: "consumerGroup", Value: group}}, nil)
		_ = c.Oneway(req)
	}
}

func (b *Broker) unregisterClient(c *remoting.Conn, req *remoting.Command) *remoting.Command {
	group := req.ExtFields.Str("consumerGroup")
	if b.clients.unregister(c.ID(), group, req.ExtFields.Str("producerGroup")) {
		b.notifyGroup(group)
	}
	return req.Response(remoting.Success, "")
}

func (b *Broker) consumerList(req *remoting.Command) *remoting.Command {
	group := req.ExtFields.Str("consumerGroup")
	ids := b.clients.consumerIDs(group)
	if ids == nil {
		resp := req.Errorf(remoting.SystemError, "no consumer for this group, %s", group)
		resp.Body = protocol.Encode(protocol.ConsumerListBody{ConsumerIDList: []string{}})
		return resp
	}
	resp := req.Response(remoting.Success, "")
	resp.Body = protocol.Encode(protocol.ConsumerListBody{ConsumerIDList: ids})
	return resp
}

type queueRef struct {
	group   string
	topic   string
	queueID int32
}

func parseQueueRef(f remoting.Fields, needGroup bool) (queueRef, error) {
	var q queueRef
	var err error
	if needGroup {
		if q.group, err = f.Required("consumerGroup"); err != nil {
			return q, err
		}
	}
	if q.topic, err = f.Required("topic"); err != nil {
		return q, err
	}
	q.queueID, err = f.Int32("queueId")
	return q, err
}

// queryOffset answers a group's committed offset. With none stored it
// follows Java: offset 0 when the queue still starts at 0 and its first
// message is hot (within accessMessageInMemoryMaxRatio of RAM from the end
// of the log), so a new group on a young topic sees the topic's whole
// history; otherwise QUERY_NOT_FOUND and the client applies its
// consume-from policy.
func (b *Broker) queryOffset(req *remoting.Command) *remoting.Command {
	q, err := parseQueueRef(req.ExtFields, true)
	if err != nil {
		return req.Errorf(remoting.InvalidParameter, "%v", err)
	}
	off, ok := b.offsets.Get(q.group, q.topic, q.queueID)
	if !ok && b.store.MinOffset(q.topic, q.queueID) == 0 && b.firstMessageHot(q.topic, q.queueID) {
		off, ok = 0, true
	}
	if !ok {
		return req.Errorf(remoting.QueryNotFound, "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first")
	}
	resp := req.Response(remoting.Success, "")
	resp.ExtFields = remoting.Fields{{Key: "offset", Value: strconv.FormatInt(off, 10)}}
	return resp
}

func (b *Broker) firstMessageHot(topic string, queueID int32) bool {
	if b.store.MaxOffset(topic, queueID) == 0 {
		return true
	}
	r, err := b.store.GetMessages(topic, queueID, 0, 1, nil)
	if err != nil || r.Count == 0 {
		return false
	}
	return float64(r.Behind) <= float64(totalMemory())*float64(b.cfg.AccessMessageInMemoryMax)/100
}

func (b *Broker) updateOffset(req *remoting.Command) *remoting.Command {
	q, err := parseQueueRef(req.ExtFields, true)
	if err != nil {
		return req.Errorf(remoting.InvalidParameter, "%v", err)
	}
	off, err := req.ExtFields.Int64("commitOffset")
	if err != nil {
		return req.Errorf(remoting.InvalidParameter, "%v", err)
	}
	b.offsets.Commit(q.group, q.topic, q.queueID, off)
	return req.Response(remoting.Success, "")
}

// offsetQuery serves GET_MAX_OFFSET, GET_MIN_OFFSET,
// SEARCH_OFFSET_BY_TIMESTAMP and GET_EARLIEST_MSG_STORETIME.
func (b *Broker) offsetQuery(req *remoting.Command) *remoting.Command {
	q, err := parseQueueRef(req.ExtFields, false)
	if err != nil {
		return req.Errorf(remoting.InvalidParameter, "%v", err)
	}
	var v int64
	key := "offset"
	switch req.Code {
	case remoting.GetMaxOffset:
		v = b.store.MaxOffset(q.topic, q.queueID)
	case remoting.GetMinOffset:
		v = b.store.MinOffset(q.topic, q.queueID)
	case remoting.SearchOffsetByTimestamp:
		ts, err := req.ExtFields.Int64("timestamp")
		if err != nil {
			return req.Errorf(remoting.InvalidParameter, "%v", err)
		}
		if v, err = b.store.OffsetByTime(q.topic, q.queueID, ts); err != nil {
			return req.Errorf(remoting.SystemError, "%v", err)
		}
	case remoting.GetEarliestMsgStoreTime:
		key = "timestamp"
		if v, err = b.store.StoreTime(q.topic, q.queueID, b.store.MinOffset(q.topic, q.queueID)); err != nil {
			v = -1
		}
	}
	resp := req.Response(remoting.Success, "")
	resp.ExtFields = remoting.Fields{{Key: key, Value: strconv.FormatInt(v, 10)}}
	return resp
}

// sendBack stores a message a consumer failed to process into the group's
// retry topic (or, past its max reconsume times, the dead-letter topic)
// and answers only once it is stored: the client takes any answer as
// success.
func (b *Broker) sendBack(c *remoting.Conn, req *remoting.Command) *remoting.Command {
	f := req.ExtFields
	group, err := f.Required("group")
	if err != nil {
		return req.Errorf(remoting.InvalidParameter, "%v", err)
	}
	phy, err := f.Int64("offset")
	if err != nil {
		return req.Errorf(remoting.InvalidParameter, "%v", err)
	}
	delayLevel, _ := f.Int64Or("delayLevel", 0)
	g, err := b.subscriptionGroup(group)
	if err != nil {
		return req.Errorf(remoting.SubscriptionGroupMissing, "%v", err)
	}
	raw, err := b.store.ReadMessage(phy)
	if err != nil {
		return req.Errorf(remoting.SystemError, "look message by offset failed, %d: %v", phy, err)
	}
	orig, _, err := message.DecodeRecord(raw)
	if err != nil {
		return req.Errorf(remoting.SystemError, "%v", err)
	}
	maxTimes := int32(g.RetryMaxTimes)
	if n, err := f.Int64Or("maxReconsumeTimes", -1); err == nil && n >= 0 {
		maxTimes = int32(n)
	}
	m := orig
	m.QueueID, m.PhysicalOffset, m.QueueOffset, m.StoreHost = 0, 0, 0, b.storeHost
	m.ReconsumeTimes = orig.ReconsumeTimes + 1
	if _, ok := message.Property(m.Properties, message.PropRetryTopic); !ok {
		m.Properties = message.SetProperty(m.Properties, message.PropRetryTopic, orig.Topic)
	}
	if _, ok := message.Property(m.Properties, message.PropOriginMessageID); !ok {
		m.Properties = message.SetProperty(m.Properties, message.PropOriginMessageID, message.OffsetMsgID(orig.StoreHost, orig.PhysicalOffset))
	}
	m.Topic = RetryTopic(group)
	if orig.ReconsumeTimes >= maxTimes || delayLevel < 0 {
		m.Topic = DLQTopic(group)
		if _, _, err := b.topics.Ensure(protocol.TopicConfig{TopicName: m.Topic, ReadQueueNums: 1, WriteQueueNums: 1, Perm: protocol.PermRead | protocol.PermWrite}); err != nil {
			return req.Errorf(remoting.SystemError, "create DLQ topic: %v", err)
		}
		b.requestRegister()
		b.log.Warn("message moved to the dead-letter queue", "group", group, "topic", orig.Topic, "reconsume_times", orig.ReconsumeTimes)
	} else {
		if err := b.ensureRetryTopic(group, g); err != nil {
			return req.Errorf(remoting.SystemError, "create retry topic: %v", err)
		}
		// Redelivered after a growing delay: level 3 (10 s) for the first
		// retry, then one level more per retry, up to the last level.
		level := delayLevel
		if level == 0 {
			level = 3 + int64(orig.ReconsumeTimes)
		}
		m.Properties = message.SetProperty(m.Properties, message.PropDelay, strconv.FormatInt(level, 10))
		if _, err := b.sched.park(&m, message.ScanKnown(m.Properties), time.Now()); err != nil {
			return req.Errorf(remoting.SystemError, "%v", err)
		}
	}
	if err := b.putSync([]*message.Message{&m}); err != nil {
		return b.putError(req, err)
	}
	return req.Response(remoting.Success, "")
}
