package broker

import (
	"context"
	"errors"
	"time"

	"qianlang.io/mq/broker/member"
	"qianlang.io/mq/broker/meta"
	"qianlang.io/mq/message"
	"qianlang.io/mq/remoting"
	"qianlang.io/mq/replica"
	"qianlang.io/mq/store"
)

// group is what request handling needs of the broker's place among its
// replicas: a standalone broker is alone (standalone); with
// enableDLegerCommitLog it is a member of a Raft group (member.Member).
type group interface {
	// Put stores msgs, through the group when replicated, and calls done
	// once they are stored.
	Put(msgs []*message.Message, done func(error))
	// Leads reports whether this broker takes writes and table changes
	// itself.
	Leads() bool
	// Forward hands a request this broker must not serve to the one that
	// does, and answers it on c later.
	Forward(c *remoting.Conn, req *remoting.Command)
	// Replicate replicates part of the tables now and waits until the
	// group holds it or ctx ends.
	Replicate(ctx context.Context, part meta.Part) error
	// Status is the broker's view of its Raft group; false when
	// standalone.
	Status() (replica.Status, bool)
}

// standalone is a broker without replicas: it stores into its own store
// and always leads.
type standalone struct{ st *store.Store }

func (s standalone) Put(msgs []*message.Message, done func(error)) { s.st.Put(msgs, done) }
func (standalone) Leads() bool                                     { return true }
func (standalone) Replicate(context.Context, meta.Part) error      { return nil }
func (standalone) Status() (replica.Status, bool)                  { return replica.Status{}, false }

// Forward is never called: a standalone broker leads.
func (standalone) Forward(c *remoting.Conn, req *remoting.Command) {
	defer req.Release()
	c.Respond(req, req.Errorf(remoting.SystemError, "a standalone broker has no leader to forward request %d to", req.Code))
}

// newMember prepares the broker's membership of its Raft group.
func (b *Broker) newMember(tables *meta.Tables) (*member.Member, error) {
	self, all := b.cfg.dlegerMembers()
	cfg := member.Config{
		Group: b.cfg.DLegerGroup, Self: self, Peers: all, PreferredLeader: b.cfg.preferredLeader(all),
		SyncFlush:  b.cfg.FlushDiskType == "SYNC_FLUSH",
		PutTimeout: min(b.cfg.SyncFlushTimeout, sendAnswerDeadline),
		Heartbeat:  b.cfg.DLegerHeartbeatInterval, ElectionTimeout: b.cfg.DLegerElectionTimeout,
		Drain: b.cfg.DLegerShutdownDrain, ForwardTimeout: sendAnswerDeadline, Logger: b.log,
	}
	hooks := member.Hooks{
		Serve: b.serve, Register: b.requestRegister, Unregister: b.unregisterAll,
		Settled: b.sched.wakeAll, Completions: b.kickQueued,
	}
	return member.New(cfg, hooks, b.store, tables)
}

// registeredID is the brokerId to register with, or -1 for none yet.
func (b *Broker) registeredID() int64 {
	if b.member == nil {
		return b.cfg.BrokerID
	}
	return b.member.BrokerID()
}

// put stores msgs: through the group when replicated.
func (b *Broker) put(msgs []*message.Message, done func(error)) { b.group.Put(msgs, done) }

func (b *Broker) putSync(msgs []*message.Message) error {
	ch := make(chan error, 1)
	b.put(msgs, func(err error) { ch <- err })
	return <-ch
}

// leads reports whether this broker takes writes itself: standalone, or
// as its group's settled leader.
func (b *Broker) leads() bool { return b.group.Leads() }

// forward hands a request to the group's leader (see member.Forward);
// the answer comes later.
func (b *Broker) forward(c *remoting.Conn, req *remoting.Command) *remoting.Command {
	b.group.Forward(c, req)
	return nil
}

// GroupStatus is this member's view of its Raft group; false when the
// broker is not in one.
func (b *Broker) GroupStatus() (replica.Status, bool) { return b.group.Status() }

// SetReplicationFilter drops the group messages this member sends or
// receives for which drop is true (nil: none). Tests cut or thin out the
// replication network with it.
func (b *Broker) SetReplicationFilter(drop replica.Filter) {
	if b.member != nil {
		b.member.SetFilter(drop)
	}
}

// replicaPutError maps group errors for the send path.
func (b *Broker) replicaPutError(req *remoting.Command, err error) *remoting.Command {
	switch {
	case errors.Is(err, replica.ErrLeadershipLost):
		return req.Errorf(remoting.ServiceNotAvailable, "service not available now: broker %s lost leadership of group %s; the message may or may not be stored", b.addr, b.cfg.DLegerGroup)
	case errors.Is(err, replica.ErrNotLeader):
		return req.Errorf(remoting.ServiceNotAvailable, "service not available now: broker %s does not lead group %s", b.addr, b.cfg.DLegerGroup)
	case errors.Is(err, replica.ErrClosed):
		return req.Errorf(remoting.ServiceNotAvailable, "service not available now: broker %s is shutting down", b.addr)
	case errors.Is(err, replica.ErrStopped):
		return req.Errorf(remoting.ServiceNotAvailable, "service not available now: broker %s left its group after a storage failure", b.addr)
	case errors.Is(err, replica.ErrCommitTimeout):
		return req.Errorf(remoting.FlushSlaveTimeout, "group %s did not confirm the message within %v; it may or may not be stored", b.cfg.DLegerGroup, min(b.cfg.SyncFlushTimeout, sendAnswerDeadline))
	case errors.Is(err, replica.ErrProposeTimeout):
		return req.Errorf(remoting.SystemBusy, "[REPLICATION]broker busy: group %s could not take the message within %v; it is not stored", b.cfg.DLegerGroup, min(b.cfg.SyncFlushTimeout, sendAnswerDeadline))
	}
	return nil
}

// suggestBroker is the brokerId a consumer of group should pull from next,
// as Java decides it: the master unless slaveReadEnable is on; then a
// consumer whose unread data no longer fits the accessMessageInMemoryMaxRatio
// share of RAM goes to the group's whichBrokerWhenConsumeSlowly (a
// follower, 1 by default), the others to the group's brokerId (0).
func (b *Broker) suggestBroker(group string, behind int64) int64 {
	if b.member == nil || !b.cfg.SlaveReadEnable {
		return 0
	}
	g, ok := b.groups.Get(group)
	if !ok {
		return 0
	}
	if behind > int64(totalMemory()*uint64(b.cfg.AccessMessageInMemoryMax)/100) {
		return g.WhichBrokerWhenConsumeSlowly
	}
	return g.BrokerID
}

// followsKnownLeader reports whether this broker is a follower whose
// leader is up.
func (b *Broker) followsKnownLeader() bool {
	s, ok := b.group.Status()
	return ok && s.Role != replica.Leader && s.Leader != 0
}

// replicate replicates part of the tables after a change and waits up
// to d until the group holds it; a standalone broker has nothing to do.
func (b *Broker) replicate(part meta.Part, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return b.group.Replicate(ctx, part)
}
