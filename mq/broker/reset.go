package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

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
	tc, ok := b.topics.get(topic)
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
		if cur, has := b.offsets.get(group, topic, q); has && !force && cur <= off {
			off = cur
		}
		b.offsets.commit(group, topic, q, off)
		table = append(table, protocol.QueueOffset{MQ: protocol.MessageQueue{Topic: topic, BrokerName: b.cfg.BrokerName, QueueID: int(q)}, Offset: off})
	}
	if err := b.replicateOffsets(); err != nil {
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

// replicateOffsets replicates the offset table now and waits until a
// majority holds it, so a reset survives a leader change at once.
func (b *Broker) replicateOffsets() error {
	if b.member == nil {
		return nil
	}
	m := b.member
	// Proposed in turn with the leader's periodic changes, so none taken
	// before this table lands after it.
	m.offsetsMu.Lock()
	offsets, _ := b.offsets.snapshot()
	body, err := json.Marshal(metaEntry{Offsets: offsets})
	if err != nil {
		m.offsetsMu.Unlock()
		return err
	}
	ch := make(chan error, 1)
	m.n().ProposeMeta(body, func(err error) { ch <- err })
	m.offsetsMu.Unlock()
	return b.waitMeta(ch, "offsets")
}

// proposeMetaWait proposes a metadata entry and waits for its commit.
func (b *Broker) proposeMetaWait(body []byte, what string) error {
	ch := make(chan error, 1)
	b.member.n().ProposeMeta(body, func(err error) { ch <- err })
	return b.waitMeta(ch, what)
}

// waitMeta waits for the outcome of a metadata proposal.
func (b *Broker) waitMeta(ch <-chan error, what string) error {
	ctx, cancel := context.WithTimeout(context.Background(), lockWait)
	defer cancel()
	select {
	case err := <-ch:
		if err != nil {
			return fmt.Errorf("broker: replicate %s to group %s: %w", what, b.cfg.DLegerGroup, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("broker: replicate %s to group %s: %w", what, b.cfg.DLegerGroup, ctx.Err())
	}
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
