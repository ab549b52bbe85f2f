package broker

import (
	"context"
	"strconv"
	"sync"
	"time"

	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
	"qianlang.io/mq/store"
)

// Pull sysFlag bits.
const (
	pullCommitOffset    = 1
	pullSuspend         = 2
	pullHasSubscription = 4
)

// pullRecheck is how often a held pull looks again even without an
// arrival (a safety net, as Java's 5 s check).
const pullRecheck = 5 * time.Second

type pullHeader struct {
	group        string
	topic        string
	queueID      int32
	offset       int64
	maxMsgs      int
	sysFlag      int32
	commitOffset int64
	suspend      time.Duration
	subscription string
	exprType     string
}

func parsePullHeader(f remoting.Fields) (pullHeader, error) {
	var h pullHeader
	var err error
	if h.group, err = f.Required("consumerGroup"); err != nil {
		return h, err
	}
	if h.topic, err = f.Required("topic"); err != nil {
		return h, err
	}
	if h.queueID, err = f.Int32("queueId"); err != nil {
		return h, err
	}
	if h.offset, err = f.Int64("queueOffset"); err != nil {
		return h, err
	}
	n, err := f.Int64("maxMsgNums")
	if err != nil {
		return h, err
	}
	h.maxMsgs = int(min(max(n, 0), 1024))
	if h.sysFlag, err = f.Int32("sysFlag"); err != nil {
		return h, err
	}
	if h.commitOffset, err = f.Int64Or("commitOffset", 0); err != nil {
		return h, err
	}
	ms, err := f.Int64Or("suspendTimeoutMillis", 15000)
	if err != nil {
		return h, err
	}
	h.suspend = time.Duration(min(max(ms, 0), 25000)) * time.Millisecond
	h.subscription, h.exprType = f.Str("subscription"), f.Str("expressionType")
	return h, nil
}

// pull serves PULL_MESSAGE, holding it (long polling) while there is
// nothing new, until a message arrives or the client's suspend time ends.
func (b *Broker) pull(ctx context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
	h, err := parsePullHeader(req.ExtFields)
	if err != nil {
		return req.Errorf(remoting.InvalidParameter, "%v", err)
	}
	if resp := b.checkPull(req, &h); resp != nil {
		return resp
	}
	filter, err := b.subscriptionFilter(h.group, h.topic, h.sysFlag, h.subscription, h.exprType)
	if err != nil {
		return req.Errorf(remoting.SubscriptionParseFailed, "%v", err)
	}
	if h.sysFlag&pullCommitOffset != 0 && h.commitOffset >= 0 {
		b.offsets.Commit(h.group, h.topic, h.queueID, h.commitOffset)
	}
	resp, notFound := b.pullOnce(req, &h, filter)
	if !notFound || h.sysFlag&pullSuspend == 0 {
		return resp
	}
	wait := h.suspend
	if !b.cfg.LongPollingEnable {
		wait = b.cfg.ShortPollingTime
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		b.stats.heldPulls.Add(1)
		woken := b.holds.wait(ctx, h.topic, h.queueID, h.offset, min(time.Until(deadline), pullRecheck), func() bool {
			return b.store.MaxOffset(h.topic, h.queueID) > h.offset
		})
		b.stats.heldPulls.Add(-1)
		if ctx.Err() != nil {
			return nil // the connection is gone
		}
		resp, notFound = b.pullOnce(req, &h, filter)
		if !notFound || !woken && !b.cfg.LongPollingEnable {
			return resp
		}
	}
	return resp
}

// checkPull validates the topic, queue and group, or returns the error
// response.
func (b *Broker) checkPull(req *remoting.Command, h *pullHeader) *remoting.Command {
	if b.cfg.BrokerPermission&protocol.PermRead == 0 {
		return req.Errorf(remoting.NoPermission, "the broker[%s] pulling message is forbidden", b.cfg.BrokerName)
	}
	tc, ok := b.topics.Get(h.topic)
	if !ok {
		return req.Errorf(remoting.TopicNotExist, "topic[%s] not exist, apply first please!", h.topic)
	}
	if tc.Perm&protocol.PermRead == 0 {
		return req.Errorf(remoting.NoPermission, "the topic[%s] pulling message is forbidden", h.topic)
	}
	if h.queueID < 0 || int(h.queueID) >= max(tc.ReadQueueNums, tc.WriteQueueNums) {
		return req.Errorf(remoting.SystemError, "queueId[%d] is illegal, topic:[%s] topicConfig.readQueueNums:[%d]", h.queueID, h.topic, tc.ReadQueueNums)
	}
	g, err := b.subscriptionGroup(h.group)
	if err != nil {
		return req.Errorf(remoting.SubscriptionGroupMissing, "%v", err)
	}
	if !g.ConsumeEnable {
		return req.Errorf(remoting.NoPermission, "subscription group [%s] does not have permission to consume", h.group)
	}
	return nil
}

// pullOnce reads from the store and builds the response; notFound reports
// "nothing new yet", the case long polling waits out.
func (b *Broker) pullOnce(req *remoting.Command, h *pullHeader, filter store.Filter) (*remoting.Command, bool) {
	r, err := b.store.GetMessages(h.topic, h.queueID, h.offset, h.maxMsgs, filter)
	if err != nil {
		b.log.Error("pull failed", "topic", h.topic, "queue", h.queueID, "offset", h.offset, "err", err)
		return req.Errorf(remoting.SystemError, "pull failed: %v", err), false
	}
	code := int32(remoting.Success)
	notFound := false
	switch r.Status {
	case store.Found:
		b.stats.getMessages.Add(int64(r.Count))
		b.stats.getBytes.Add(int64(len(r.Body)))
	case store.NoMatchedMessage, store.MessageWasRemoving:
		code = remoting.PullRetryImmediately
	case store.NoMessageInQueue, store.OffsetOverflowOne:
		code, notFound = remoting.PullNotFound, true
	case store.OffsetTooSmall, store.OffsetOverflowBadly:
		code = remoting.PullOffsetMoved
	}
	suggest := b.suggestBroker(h.group, r.Behind)
	if code != remoting.Success && b.followsKnownLeader() {
		// A follower with nothing (more) to give sends the consumer
		// back to the leader at once, as a Java slave does.
		code, notFound, suggest = remoting.PullRetryImmediately, false, 0
	}
	resp := req.Response(code, r.Status.String())
	resp.ExtFields = remoting.Fields{
		{Key: "nextBeginOffset", Value: strconv.FormatInt(r.NextBeginOffset, 10)},
		{Key: "minOffset", Value: strconv.FormatInt(r.MinOffset, 10)},
		{Key: "maxOffset", Value: strconv.FormatInt(r.MaxOffset, 10)},
		{Key: "suggestWhichBrokerId", Value: strconv.FormatInt(suggest, 10)},
	}
	if code == remoting.Success {
		resp.Body = r.Body
	}
	return resp, notFound
}

// pullHolds parks long-polling pulls per queue until the dispatcher
// reports an arrival past their offset.
type pullHolds struct {
	mu      sync.Mutex
	waiters map[holdKey][]*holdWaiter
}

type holdKey struct {
	topic   string
	queueID int32
}

type holdWaiter struct {
	offset int64
	ch     chan struct{}
}

func newPullHolds() *pullHolds { return &pullHolds{waiters: make(map[holdKey][]*holdWaiter)} }

// wait blocks until the queue's max offset passes offset, the timeout
// passes or ctx ends; it reports whether an arrival woke it. ready is
// checked once the waiter is registered, so an arrival between the
// caller's last look and the registration is not missed.
func (p *pullHolds) wait(ctx context.Context, topic string, queueID int32, offset int64, timeout time.Duration, ready func() bool) bool {
	w := &holdWaiter{offset: offset, ch: make(chan struct{})}
	k := holdKey{topic, queueID}
	p.mu.Lock()
	p.waiters[k] = append(p.waiters[k], w)
	p.mu.Unlock()
	woken := ready()
	if !woken {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-w.ch:
			return true
		case <-t.C:
		case <-ctx.Done():
		}
	}
	p.mu.Lock()
	ws := p.waiters[k]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(p.waiters, k)
	} else {
		p.waiters[k] = ws
	}
	p.mu.Unlock()
	return woken
}

// arrived is the store's arrival listener.
func (p *pullHolds) arrived(topic string, queueID int32, maxOffset int64) {
	k := holdKey{topic, queueID}
	p.mu.Lock()
	defer p.mu.Unlock()
	ws := p.waiters[k]
	if len(ws) == 0 {
		return
	}
	keep := ws[:0]
	for _, w := range ws {
		if maxOffset > w.offset {
			close(w.ch)
		} else {
			keep = append(keep, w)
		}
	}
	if len(keep) == 0 {
		delete(p.waiters, k)
	} else {
		p.waiters[k] = keep
	}
}
