package broker

import (
	"strconv"

	"qianlang.io/mq/broker/meta"
	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
)

// resetOffset serves INVOKE_BROKER_TO_RESET_OFFSET (mqadmin
// resetOffsetByTime): it moves a group's offsets on every queue of a topic
// to the first message stored at or after a time (-1: the end of each
// queue), replicates them, and tells the group's live consumers
// (RESET_CONSUMER_CLIENT_OFFSET), which drop what they hold and resume
// from there. Without isForce an offset only moves back (rewind).
func (b *Broker) resetOffset(req *remoting.Command) *remoting.Command {
	f := req.ExtFields
	topic, err1 := f.Required("topic")
	group, err2 := f.Required("group")
	ts, err3 := f.Int64("timestamp")
	if err := firstErr(err1, err2, err3); err != nil {
		return req.Errorf(remoting.InvalidParameter, "%v", err)
	}
	force := f.Bool("isForce", true)
	tc, ok := b.topics.Get(topic)
	if !ok {
		return req.Errorf(remoting.TopicNotExist, "topic[%s] not exist", topic)
	}
	var table []protocol.QueueOffset
	for q := range int32(max(tc.ReadQueueNums, tc.WriteQueueNums)) {
		off := b.store.MaxOffset(topic, q)
		if ts >= 0 {
			var err error
			if off, err = b.store.OffsetByTime(topic, q, ts); err != nil {
				return req.Errorf(remoting.SystemError, "search offset of %s/%d by time: %v", topic, q, err)
			}
		}
		if cur, has := b.offsets.Get(group, topic, q); has && !force && cur <= off {
			off = cur
		}
		b.offsets.Commit(group, topic, q, off)
		table = append(table, protocol.QueueOffset{MQ: protocol.MessageQueue{Topic: topic, BrokerName: b.cfg.BrokerName, QueueID: int(q)}, Offset: off})
	}
	if err := b.replicate(meta.ConsumerOffsets, lockWait); err != nil {
		return req.Errorf(remoting.SystemError, "%v", err)
	}
	body := protocol.EncodeResetOffsetBody(table)
	fields := remoting.Fields{
		{Key: "topic", Value: topic}, {Key: "group", Value: group},
		{Key: "timestamp", Value: strconv.FormatInt(ts, 10)}, {Key: "isForce", Value: strconv.FormatBool(force)},
	}
	conns := b.clients.conns(group)
	for _, c := range conns {
		if err := c.Oneway(remoting.NewRequest(remoting.ResetConsumerClientOffset, fields, body)); err != nil {
			b.log.Warn("telling a consumer to reset its offsets failed", "group", group, "remote", c.RemoteAddr().String(), "err", err)
		}
	}
	b.log.Info("consumer offsets reset", "group", group, "topic", topic, "timestamp", ts, "force", force, "consumers_told", len(conns))
	resp := req.Response(remoting.Success, "")
	resp.Body = body
	return resp
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
