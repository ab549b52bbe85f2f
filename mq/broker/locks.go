package broker

import (
	"time"

	"qianlang.io/mq/broker/meta"
	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
)

// lockWait bounds the replication of a lock change: the client waits 1 s
// for the answer.
const lockWait = 800 * time.Millisecond

func (b *Broker) lockBatch(req *remoting.Command) *remoting.Command {
	var body protocol.LockBatchRequest
	if err := protocol.Decode(req.Body, "lock", &body); err != nil {
		return req.Errorf(remoting.SystemError, "%v", err)
	}
	granted, changed := b.locks.TryLock(body.ConsumerGroup, body.ClientID, body.MQSet, time.Now())
	if changed {
		if err := b.replicate(meta.QueueLocks, lockWait); err != nil {
			b.log.Warn("replicating queue locks failed; granting none", "group", body.ConsumerGroup, "err", err)
			granted = []protocol.MessageQueue{}
		}
	}
	resp := req.Response(remoting.Success, "")
	resp.Body = protocol.Encode(protocol.LockBatchResponse{LockOKMQSet: granted})
	return resp
}

func (b *Broker) unlockBatch(req *remoting.Command) *remoting.Command {
	var body protocol.LockBatchRequest
	if err := protocol.Decode(req.Body, "unlock", &body); err != nil {
		return req.Errorf(remoting.SystemError, "%v", err)
	}
	if b.locks.Unlock(body.ConsumerGroup, body.ClientID, body.MQSet) {
		if err := b.replicate(meta.QueueLocks, lockWait); err != nil {
			return req.Errorf(remoting.SystemError, "unlock: %v", err)
		}
	}
	return req.Response(remoting.Success, "")
}
