package broker

import (
	"strconv"

	"qianlang.io/mq/message"
	"qianlang.io/mq/remoting"
)

// ReplyTopicSuffix names a cluster's reply topic, <cluster>_REPLY_TOPIC,
// where responders of request-reply messages send their replies.
const ReplyTopicSuffix = "_REPLY_TOPIC"

// pushReply hands a stored reply message (SEND_REPLY_MESSAGE) to the
// requester's connection, found by the REPLY_TO_CLIENT client id, as
// PUSH_REPLY_MESSAGE_TO_CLIENT. A requester that is gone only loses its
// reply; the message stays stored.
func (b *Broker) pushReply(m *message.Message, producerGroup string) {
	to, _ := message.Property(m.Properties, message.PropReplyToClient)
	c := b.clients.connByClientID(to)
	if c == nil {
		b.log.Warn("the requester of a reply message is not connected", "client", to, "topic", m.Topic)
		return
	}
	fields := remoting.Fields{
		{Key: "producerGroup", Value: producerGroup},
		{Key: "topic", Value: m.Topic},
		{Key: "defaultTopic", Value: DefaultTopic},
		{Key: "defaultTopicQueueNums", Value: "4"},
		{Key: "queueId", Value: strconv.Itoa(int(m.QueueID))},
		{Key: "sysFlag", Value: strconv.Itoa(int(m.SysFlag))},
		{Key: "bornTimestamp", Value: strconv.FormatInt(m.BornTimestamp, 10)},
		{Key: "flag", Value: strconv.Itoa(int(m.Flag))},
		{Key: "properties", Value: m.Properties},
		{Key: "reconsumeTimes", Value: strconv.Itoa(int(m.ReconsumeTimes))},
		{Key: "unitMode", Value: "false"},
		{Key: "bornHost", Value: m.BornHost.String()},
		{Key: "storeHost", Value: b.addr},
		{Key: "storeTimestamp", Value: strconv.FormatInt(m.StoreTimestamp, 10)},
	}
	if err := c.Oneway(remoting.NewRequest(remoting.PushReplyMessageToClient, fields, m.Body)); err != nil {
		b.log.Warn("pushing a reply to its requester failed", "client", to, "err", err)
	}
}
