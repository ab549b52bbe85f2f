package broker

import (
	"context"

	"qianlang.io/mq/acl"
	"qianlang.io/mq/remoting"
)

// request is what the broker knows about one request code.
type request struct {
	// serve answers the request, or returns nil when it answers later
	// on the connection itself. nil: the code is known (for its ACL need)
	// but not served, and is answered REQUEST_CODE_NOT_SUPPORTED.
	serve handler
	// inline requests are served on the connection's reader goroutine:
	// they must only queue work, never wait for it.
	inline bool
	// leader requests change the replicated tables or write to the log,
	// or (locks) their state lives on the leader: a group's follower
	// forwards them to its leader.
	leader bool
	// need is what the request needs under ACL.
	need needFn
}

// handler serves one request code.
type handler func(b *Broker, ctx context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command

// requestTable is every request code the broker knows, one line each.
func requestTable() map[int32]request {
	sendNeed, sendNeedShort := topicIn("topic", acl.Pub), topicIn("b", acl.Pub)
	consumes := both(topicIn("topic", acl.Sub), groupIn("consumerGroup"))
	return map[int32]request{
		// Producers and consumers.
		remoting.SendMessage:             {serve: withConn((*Broker).send), inline: true, leader: true, need: sendNeed},
		remoting.SendMessageV2:           {serve: withConn((*Broker).send), inline: true, leader: true, need: sendNeedShort},
		remoting.SendBatchMessage:        {serve: withConn((*Broker).send), inline: true, leader: true, need: sendNeedShort},
		remoting.SendReplyMessage:        {serve: withConn((*Broker).send), leader: true, need: sendNeed},
		remoting.SendReplyMessageV2:      {serve: withConn((*Broker).send), leader: true, need: sendNeedShort},
		remoting.PullMessage:             {serve: (*Broker).pull, need: consumes},
		remoting.HeartBeat:               {serve: withConn((*Broker).heartbeat), need: heartbeatNeed},
		remoting.UnregisterClient:        {serve: withConn((*Broker).unregisterClient), need: groupIn("consumerGroup")},
		remoting.QueryConsumerOffset:     {serve: reqOnly((*Broker).queryOffset), need: consumes},
		remoting.UpdateConsumerOffset:    {serve: reqOnly((*Broker).updateOffset), need: consumes},
		remoting.GetConsumerListByGroup:  {serve: reqOnly((*Broker).consumerList), need: groupIn("consumerGroup")},
		remoting.GetMaxOffset:            {serve: reqOnly((*Broker).offsetQuery), need: authenticated},
		remoting.GetMinOffset:            {serve: reqOnly((*Broker).offsetQuery), need: authenticated},
		remoting.SearchOffsetByTimestamp: {serve: reqOnly((*Broker).offsetQuery), need: authenticated},
		remoting.GetEarliestMsgStoreTime: {serve: reqOnly((*Broker).offsetQuery), need: authenticated},
		remoting.LockBatchMQ:             {serve: reqOnly((*Broker).lockBatch), leader: true, need: lockNeed},
		remoting.UnlockBatchMQ:           {serve: reqOnly((*Broker).unlockBatch), leader: true, need: lockNeed},
		remoting.ConsumerSendMsgBack:     {serve: withConn((*Broker).sendBack), leader: true, need: groupIn("group")},
		remoting.EndTransaction:          {serve: reqOnly((*Broker).endTransaction), leader: true, need: authenticated},
		remoting.QueryMessage:            {serve: reqOnly((*Broker).queryMessage), need: topicIn("topic", acl.Sub)},
		remoting.ViewMessageByID:         {serve: reqOnly((*Broker).viewMessage), need: authenticated},

		// Operators (mqadmin and the admin API).
		remoting.UpdateAndCreateTopic:             {serve: reqOnly((*Broker).createTopic), leader: true, need: admin},
		remoting.DeleteTopicInBroker:              {serve: reqOnly((*Broker).deleteTopic), leader: true, need: admin},
		remoting.UpdateAndCreateSubscriptionGroup: {serve: reqOnly((*Broker).putGroup), leader: true, need: admin},
		remoting.DeleteSubscriptionGroup:          {serve: reqOnly((*Broker).deleteGroup), leader: true, need: admin},
		remoting.InvokeBrokerToResetOffset:        {serve: reqOnly((*Broker).resetOffset), leader: true, need: admin},
		remoting.GetAllTopicConfig:                {serve: reqOnly((*Broker).allTopics), need: authenticated},
		remoting.GetTopicConfig:                   {serve: reqOnly((*Broker).topicConfig), need: authenticated},
		remoting.GetAllSubscriptionGroupConfig:    {serve: reqOnly((*Broker).allGroups), need: authenticated},
		remoting.GetTopicStatsInfo:                {serve: reqOnly((*Broker).topicStats), need: authenticated},
		remoting.GetConsumeStats:                  {serve: reqOnly((*Broker).consumeStats), need: authenticated},
		remoting.GetConsumerConnectionList:        {serve: reqOnly((*Broker).consumerConnections), need: authenticated},
		remoting.QueryTopicConsumeByWho:           {serve: reqOnly((*Broker).consumedBy), need: authenticated},
		remoting.GetBrokerRuntimeInfo:             {serve: reqOnly((*Broker).brokerRuntimeInfo), need: authenticated},
		remoting.GetBrokerConfig:                  {serve: reqOnly((*Broker).brokerConfig), need: authenticated},
		remoting.UpdateBrokerConfig:               {need: admin},
		remoting.CleanExpiredConsumeQueue:         {need: admin},
	}
}

// requests is requestTable indexed by code, so dispatch costs an index
// rather than a hash. It is built in init: the handlers refer back to it
// (forward serves through it).
var requests []request

func init() {
	table := requestTable()
	var top int32
	for code := range table {
		top = max(top, code)
	}
	requests = make([]request, top+1)
	for code, r := range table {
		requests[code] = r
	}
}

// requestFor is what the broker knows about a code; nil when nothing.
func requestFor(code int32) *request {
	if uint32(code) >= uint32(len(requests)) || requests[code].need == nil {
		return nil
	}
	return &requests[code]
}

// withConn adapts a handler that needs the connection.
func withConn(f func(b *Broker, c *remoting.Conn, req *remoting.Command) *remoting.Command) handler {
	return func(b *Broker, _ context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
		return f(b, c, req)
	}
}

// reqOnly adapts a handler that needs only the request.
func reqOnly(f func(b *Broker, req *remoting.Command) *remoting.Command) handler {
	return func(b *Broker, _ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
		return f(b, req)
	}
}

// serve routes a request to its handler by code: after the ACL check, a
// follower forwards what only the leader serves.
func (b *Broker) serve(ctx context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
	if resp := b.checkAccess(c, req); resp != nil {
		return resp
	}
	r := requestFor(req.Code)
	if r == nil || r.serve == nil {
		return req.Errorf(remoting.RequestCodeNotSupported, " request type %d not supported", req.Code)
	}
	if r.leader && !b.leads() {
		return b.forward(c, req)
	}
	return r.serve(b, ctx, c, req)
}
