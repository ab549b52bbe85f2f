package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"qianlang.io/mq/message"
	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
	"qianlang.io/mq/replica"
)

// member is this broker's part in a Raft group (enableDLegerCommitLog):
// every member holds the same CommitLog; the leader takes sends and
// registers as brokerId 0, followers as 1, 2…; a follower forwards the
// sends that still reach it to the leader.
type member struct {
	b     *Broker
	node  *replica.Node                // set once ready is closed
	ready chan struct{}                // the node's callbacks wait for it
	live  atomic.Pointer[replica.Node] // node, once ready is closed: the send path's lock-free read
	tr    *replica.TCP
	self  dlegerPeer
	all   []dlegerPeer

	addrs    *memberAddrs   // client address of each member, from their leader announcements
	tablesAt *tablesAt      // the last metadata entry the topic and group tables hold
	brokerID atomic.Int64   // registered id; -1 while unknown
	last     replica.Status // the status statusChanged saw last; its goroutine only
	term     atomic.Uint64
	fwd      *remoting.Client

	metaWake chan struct{}
	mu       sync.Mutex
	proposed metaVersions // what the leader last replicated; guarded by mu
	// offsetsWhole makes the leader's next offset replication the whole
	// table, not the changes; offsetsWholeAt is when one last committed.
	// Guarded by mu.
	offsetsWhole   bool
	offsetsWholeAt time.Time
	// offsetsMu orders the offset proposals: it is held from taking
	// offsets out of the table until their entry is proposed.
	offsetsMu sync.Mutex
}

// metaVersions identify the states of the replicated tables.
type metaVersions struct {
	topics, groups protocol.DataVersion
	offsets        uint64
}

// metaEntry is a replicated metadata entry: whole tables, or the consumer
// offsets that changed, so applying the entries in log order is idempotent
// and a follower that becomes leader holds the last replicated state.
type metaEntry struct {
	Leader *leaderInfo                                 `json:"leader,omitempty"`
	Topics map[string]protocol.TopicConfig             `json:"topics,omitempty"`
	Groups map[string]protocol.SubscriptionGroupConfig `json:"groups,omitempty"`
	// Offsets is the whole offset table; an empty one is sent as {} and
	// replaces the table, an absent one (null) leaves it.
	Offsets map[string]map[int32]int64 `json:"offsets"`
	// OffsetUpdates and OffsetRemovals are the offsets committed and the
	// "topic@group" keys deleted since the leader last replicated them;
	// removals apply first.
	OffsetUpdates  map[string]map[int32]int64 `json:"offsetUpdates,omitempty"`
	OffsetRemovals []string                   `json:"offsetRemovals,omitempty"`
	Version        *tableVersions             `json:"version,omitempty"`
	Members        map[uint64]string          `json:"members,omitempty"`
	Locks          *[]lockRecord              `json:"locks,omitempty"`
}

// tableVersions are the versions of the replicated topic and group tables.
type tableVersions struct{ Topics, Groups protocol.DataVersion }

type leaderInfo struct {
	ID   uint64 `json:"id"`
	Addr string `json:"addr"`
}

// metaInterval is how often the leader replicates changed tables; consumer
// offsets committed within the last interval may be lost with the leader
// (the consumers then see those messages again).
const metaInterval = 500 * time.Millisecond

// offsetsWholeEvery is how often the leader replicates the whole offset
// table instead of its changes (when anything changed), so a member whose
// table drifted (its own commits while it followed, or an older version's
// members during a rolling upgrade) is brought back in line.
const offsetsWholeEvery = time.Minute

// newMember prepares this broker's membership; startMember joins once the
// broker's address is known.
func (b *Broker) newMember() error {
	self, all := b.cfg.dlegerMembers()
	m := &member{b: b, self: self, all: all, metaWake: make(chan struct{}, 1), ready: make(chan struct{}),
		fwd:      remoting.NewClient(remoting.ClientOptions{DialTimeout: time.Second}),
		addrs:    newMemberAddrs(b.cfg.FS, b.cfg.StorePathRootDir),
		tablesAt: newTablesAt(b.cfg.FS, b.cfg.StorePathRootDir)}
	if err := m.addrs.load(); err != nil {
		return err
	}
	m.brokerID.Store(-1)
	b.member = m
	return nil
}

// startMember joins the group.
func (b *Broker) startMember() error {
	m := b.member
	self, all := m.self, m.all
	voters := make([]uint64, len(all))
	peers := make(map[uint64]string, len(all))
	for i, p := range all {
		voters[i] = p.id
		peers[p.id] = p.addr
	}
	if err := m.tablesAt.load(b.store.AppliedIndex()); err != nil {
		m.fwd.Close()
		return fmt.Errorf("broker: join group %s: %w", b.cfg.DLegerGroup, err)
	}
	node, err := replica.Start(replica.Options{
		ID: self.id, Voters: voters, Store: b.store, PreferredLeader: b.cfg.preferredLeader(all),
		SyncFlush:     b.cfg.FlushDiskType == "SYNC_FLUSH",
		PutTimeout:    min(b.cfg.SyncFlushTimeout, sendAnswerDeadline),
		TickInterval:  b.cfg.DLegerHeartbeatInterval,
		ElectionTicks: int(b.cfg.DLegerElectionTimeout / b.cfg.DLegerHeartbeatInterval),
		Logger:        b.log,
		NewTransport: replica.TCPTransport(replica.TCPOptions{Self: self.id, Listen: self.addr, Peers: peers, Logger: b.log},
			func(tr *replica.TCP) { m.tr = tr }),
		OnStatus:      m.statusChanged,
		OnMeta:        m.applyMeta,
		OnCompletions: b.kickQueued,
		SnapshotData:  m.snapshotData,
		RestoreData:   m.restoreData,
	})
	if err != nil {
		m.fwd.Close()
		return fmt.Errorf("broker: join group %s: %w", b.cfg.DLegerGroup, err)
	}
	m.node = node
	close(m.ready)
	m.live.Store(node)
	b.wg.Add(1)
	go b.every(metaInterval, m.metaWake, m.replicateMeta)
	return nil
}

// statusChanged follows role changes: the registered brokerId, and on
// becoming leader, the meta entry that tells followers where to forward.
// Once the leader has settled (applied an entry of its own term, and so
// every entry its predecessors committed), it starts replicating its
// tables and running the schedulers.
func (m *member) statusChanged(s replica.Status) {
	<-m.ready
	prev := m.last
	m.last = s
	m.term.Store(s.Term)
	id := int64(-1)
	switch {
	case s.Role == replica.Leader:
		id = 0
	case s.Role == replica.Stopped:
		id = -2
	case s.Leader != 0:
		others := []uint64{}
		for _, p := range m.all {
			if p.id != s.Leader {
				others = append(others, p.id)
			}
		}
		id = int64(slices.Index(others, m.self.id) + 1)
	}
	m.b.log.Info("group member status", "group", m.b.cfg.DLegerGroup, "self", m.self.name, "role", s.Role.String(), "term", s.Term, "leader", s.Leader, "settled", s.Settled, "brokerId", id)
	if id == -1 {
		return // no leader known: keep the last registration
	}
	if id == -2 {
		m.brokerID.Store(-1)
		go m.b.unregisterAll()
		return
	}
	if old := m.brokerID.Swap(id); old != id {
		m.b.requestRegister()
	}
	if s.Role != replica.Leader {
		return
	}
	took := prev.Role != replica.Leader || prev.Term != s.Term
	if took {
		m.mu.Lock()
		m.proposed = metaVersions{}
		m.offsetsWhole = true // the followers may not hold what this member committed while it followed
		m.mu.Unlock()
		m.proposeLeader()
		// The locks it inherited count from now: their owners may need
		// a route refresh (up to 30 s) before they reach this leader.
		m.b.locks.replace(m.b.locks.owners(), time.Now())
	}
	if s.Settled && (took || !prev.Settled) {
		wakeChan(m.metaWake)
		m.b.sched.wakeAll()
	}
}

// n is the member's raft node, once it runs: requests that reach the
// broker while it is still joining wait for it.
func (m *member) n() *replica.Node {
	if nd := m.live.Load(); nd != nil {
		return nd
	}
	<-m.ready
	return m.node
}

// started reports whether the member's node runs.
func (m *member) started() bool {
	select {
	case <-m.ready:
		return true
	default:
		return false
	}
}

func wakeChan(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (m *member) proposeLeader() {
	body, _ := json.Marshal(metaEntry{Leader: &leaderInfo{ID: m.self.id, Addr: m.b.addr}})
	m.n().ProposeMeta(body, func(err error) {
		if err != nil && !errors.Is(err, replica.ErrNotLeader) {
			m.b.log.Warn("announcing leadership failed", "err", err)
		}
	})
}

// replicateMeta runs on the leader: it replicates the tables that changed
// since it last did; for consumer offsets only what changed, and the whole
// table after a takeover, after a failed proposal and every
// offsetsWholeEvery.
func (m *member) replicateMeta() {
	if !m.b.leads() {
		return
	}
	topics, tv := m.b.topics.snapshot()
	groups, gv := m.b.groups.snapshot()
	m.mu.Lock()
	last := m.proposed
	whole := m.offsetsWhole || time.Since(m.offsetsWholeAt) >= offsetsWholeEvery
	m.mu.Unlock()
	var e metaEntry
	if tv != last.topics || gv != last.groups {
		e.Topics, e.Groups = topics, groups
		e.Version = &tableVersions{tv, gv}
	}
	m.offsetsMu.Lock()
	defer m.offsetsMu.Unlock()
	ov := last.offsets
	if m.b.offsets.version() != last.offsets {
		if whole {
			e.Offsets, ov = m.b.offsets.takeAll()
		} else {
			e.OffsetUpdates, e.OffsetRemovals, ov = m.b.offsets.takeChanges()
		}
	}
	if e.Offsets == nil && e.OffsetUpdates == nil && e.OffsetRemovals == nil && ov != last.offsets {
		// Nothing to say: the table changed only in ways it had
		// replicated already.
		m.mu.Lock()
		m.proposed.offsets = ov
		m.mu.Unlock()
		ov = last.offsets
	}
	if e.Topics == nil && ov == last.offsets {
		return
	}
	body, err := json.Marshal(e)
	if err != nil {
		m.b.log.Error("encoding replicated metadata failed", "err", err)
		return
	}
	m.n().ProposeMeta(body, func(err error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if err != nil {
			// Tried again next round; changes taken for this entry are
			// only in the table now, so the whole table goes, even if
			// nothing changes until then.
			m.offsetsWhole = true
			m.proposed.offsets = 0
			return
		}
		if e.Topics != nil {
			m.proposed.topics, m.proposed.groups = tv, gv
		}
		if ov != last.offsets {
			m.proposed.offsets = ov
		}
		if e.Offsets != nil {
			m.offsetsWhole, m.offsetsWholeAt = false, time.Now()
		}
	})
}

// replicateTables replicates the topic and group tables now and waits
// until a majority holds them: admin changes are answered only then, so a
// new leader knows every topic an admin was told exists. A standalone
// broker has nothing to do.
func (b *Broker) replicateTables(ctx context.Context) error {
	m := b.member
	if m == nil {
		return nil
	}
	topics, tv := b.topics.snapshot()
	groups, gv := b.groups.snapshot()
	body, err := json.Marshal(metaEntry{Topics: topics, Groups: groups, Version: &tableVersions{tv, gv}})
	if err != nil {
		return err
	}
	ch := make(chan error, 1)
	m.n().ProposeMeta(body, func(err error) { ch <- err })
	select {
	case err := <-ch:
		if err != nil {
			return fmt.Errorf("broker: replicate tables to group %s: %w", b.cfg.DLegerGroup, err)
		}
	case <-ctx.Done():
		return fmt.Errorf("broker: replicate tables to group %s: %w", b.cfg.DLegerGroup, ctx.Err())
	}
	m.mu.Lock()
	m.proposed.topics, m.proposed.groups = tv, gv
	m.mu.Unlock()
	return nil
}

// applyMeta applies a committed metadata entry. A leader's own entries
// (of its term) carry tables older than its own, so it only notes them as
// held; the entries of an earlier term that commit after it took over
// (say an admin change its predecessor answered just before dying) are
// installed like on a follower, before it settles and serves (see
// Broker.leads).
func (m *member) applyMeta(index, term uint64, payload []byte) {
	<-m.ready
	var e metaEntry
	if err := json.Unmarshal(payload, &e); err != nil {
		m.b.log.Error("undecodable metadata entry; skipped", "index", index, "err", err)
		return
	}
	if e.Leader != nil {
		if err := m.addrs.set(e.Leader.ID, e.Leader.Addr); err != nil {
			m.b.log.Error("recording the leader's address failed", "err", err)
		}
	}
	s := m.n().Status()
	own := s.Role == replica.Leader && term == s.Term
	if err := m.installTables(e, index, own); err != nil {
		m.b.log.Error("applying replicated metadata failed", "index", index, "err", err)
	}
}

// installTables replaces this member's tables with the leader's, given
// the entry's index (0 for a snapshot's tables, installed whatever the
// member holds). A table skips entries at or below the index it last
// took (an entry delivered again after a restart is older than the table
// on disk); own marks a leader's own entry, whose tables it only notes as
// held. Only the tables change: a deleted topic's queues stay, as on the
// leader (see deleteTopic), since queue offsets must stay a function of
// the log on every member.
func (m *member) installTables(e metaEntry, index uint64, own bool) error {
	var errs []error
	for id, addr := range e.Members {
		errs = append(errs, m.addrs.set(id, addr))
	}
	if e.Topics != nil && e.Version != nil && (index == 0 || index > m.tablesAt.index) {
		if !own {
			errs = append(errs, m.b.topics.replace(e.Topics, e.Version.Topics), m.b.groups.replace(e.Groups, e.Version.Groups))
			m.b.requestRegister() // the NameServers route by the registered topics
		}
		if index > 0 {
			errs = append(errs, m.tablesAt.set(index))
		}
	}
	offsets := e.Offsets != nil || e.OffsetUpdates != nil || e.OffsetRemovals != nil
	if offsets && (index == 0 || index > m.b.offsets.metaAt()) {
		if !own {
			if e.Offsets != nil {
				m.b.offsets.replace(e.Offsets)
			}
			if e.OffsetUpdates != nil || e.OffsetRemovals != nil {
				m.b.offsets.apply(e.OffsetUpdates, e.OffsetRemovals)
			}
		}
		m.b.offsets.setMetaAt(index)
	}
	if e.Locks != nil && !own {
		m.b.locks.replace(*e.Locks, time.Now())
	}
	return errors.Join(errs...)
}

// snapshotData is the metadata a far-behind follower gets with a snapshot:
// every replicated table and the members' addresses.
func (m *member) snapshotData() []byte {
	<-m.ready
	topics, tv := m.b.topics.snapshot()
	groups, gv := m.b.groups.snapshot()
	offsets, _ := m.b.offsets.snapshot()
	locks := m.b.locks.owners()
	body, err := json.Marshal(metaEntry{Topics: topics, Groups: groups, Offsets: offsets,
		Version: &tableVersions{tv, gv}, Members: m.addrs.all(), Locks: &locks})
	if err != nil {
		m.b.log.Error("encoding snapshot metadata failed", "err", err)
		return nil
	}
	return body
}

// restoreData installs the metadata of a snapshot on a follower.
func (m *member) restoreData(b []byte) {
	<-m.ready
	var e metaEntry
	if err := json.Unmarshal(b, &e); err != nil {
		m.b.log.Error("undecodable snapshot metadata; tables stay as they were", "err", err)
		return
	}
	if err := m.installTables(e, 0, false); err != nil {
		m.b.log.Error("installing snapshot metadata failed", "err", err)
	}
}

// registeredID is the brokerId to register with, or -1 for none yet.
func (b *Broker) registeredID() int64 {
	if b.member == nil {
		return b.cfg.BrokerID
	}
	return b.member.brokerID.Load()
}

// put stores msgs: through the group when replicated.
func (b *Broker) put(msgs []*message.Message, done func(error)) {
	if b.member != nil {
		b.member.n().Put(msgs, done)
		return
	}
	b.store.Put(msgs, done)
}

func (b *Broker) putSync(msgs []*message.Message) error {
	ch := make(chan error, 1)
	b.put(msgs, func(err error) { ch <- err })
	return <-ch
}

// leads reports whether this broker takes writes itself: standalone, or
// as its group's leader once settled. A leader that has not yet applied
// every entry its predecessors committed does not serve writes and table
// changes yet: they wait in forward, since an entry still to apply may
// replace the tables they would change.
func (b *Broker) leads() bool {
	if b.member == nil {
		return true
	}
	s := b.member.n().Status()
	return s.Role == replica.Leader && s.Settled
}

// forward relays a send (or a table change) that reached a follower to
// the leader and its answer back, so clients whose route is not yet
// refreshed keep working. During an election it waits for the new leader,
// up to leaderWait, then the client is told to retry; when this broker
// turns out to lead, it serves the request itself once settled.
func (b *Broker) forward(c *remoting.Conn, req *remoting.Command) *remoting.Command {
	go func() {
		leader, self := b.waitLeaderAddr(leaderWait)
		if self {
			if resp := b.serve(context.Background(), c, req); resp != nil {
				c.Respond(req, resp)
			}
			return
		}
		defer req.Release()
		if leader == "" {
			c.Respond(req, req.Errorf(remoting.ServiceNotAvailable, "service not available now: group %s is electing a leader", b.cfg.DLegerGroup))
			return
		}
		fields := append(remoting.Fields(nil), req.ExtFields...)
		body := append([]byte(nil), req.Body...)
		ctx, cancel := context.WithTimeout(context.Background(), sendAnswerDeadline-leaderWait)
		defer cancel()
		resp, err := b.member.fwd.Invoke(ctx, leader, remoting.NewRequest(req.Code, fields, body))
		if err != nil {
			c.Respond(req, req.Errorf(remoting.ServiceNotAvailable, "service not available now: forwarding to leader %s: %v", leader, err))
			return
		}
		out := req.Response(resp.Code, resp.Remark)
		out.ExtFields = resp.ExtFields
		out.Body = resp.Body
		c.Respond(req, out)
	}()
	return nil
}

// leaderWait bounds how long a forwarded request waits for an election.
const leaderWait = 1500 * time.Millisecond

// waitLeaderAddr waits up to d for a leader: the client address of
// another member that leads, or self when this broker leads and has
// settled. Neither: no leader in time.
func (b *Broker) waitLeaderAddr(d time.Duration) (addr string, self bool) {
	deadline := time.Now().Add(d)
	for {
		s := b.member.n().Status()
		switch {
		case s.Role == replica.Leader && s.Settled:
			return "", true
		case s.Role != replica.Leader && s.Leader != 0:
			if addr, ok := b.member.addrs.get(s.Leader); ok && addr != b.addr {
				return addr, false
			}
		}
		if time.Now().After(deadline) {
			return "", false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// handOver runs first in a graceful shutdown: a leader hands leadership to
// the most up-to-date follower, then keeps serving for
// dLegerShutdownDrainMs, forwarding the sends that still reach it, while
// the new leader registers and clients refresh their routes. A rolling
// restart then fails no send. A stopping member, leader or not, no longer
// asks for leadership as preferredLeaderId.
func (b *Broker) handOver() {
	m := b.member
	if m == nil || !m.started() {
		return
	}
	m.n().Retire()
	if m.n().Status().Role != replica.Leader {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	err := m.n().TransferLeadership(ctx)
	cancel()
	if err != nil {
		b.log.Warn("leadership transfer before shutdown failed", "err", err)
		return
	}
	if d := b.cfg.DLegerShutdownDrain; d > 0 {
		b.log.Info("handed leadership over; serving while clients move to the new leader", "drain", d)
		time.Sleep(d)
	}
}

// closeMember leaves the group.
func (b *Broker) closeMember() error {
	m := b.member
	if m == nil || !m.started() {
		return nil
	}
	err := m.node.Close()
	m.fwd.Close()
	return err
}

// GroupStatus is this member's view of its Raft group; false when the
// broker is not in one.
func (b *Broker) GroupStatus() (replica.Status, bool) {
	if b.member == nil {
		return replica.Status{}, false
	}
	return b.member.n().Status(), true
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

// SetReplicationFilter drops the group messages this member sends or
// receives for which drop is true (nil: none). Tests cut or thin out the
// replication network with it.
func (b *Broker) SetReplicationFilter(drop replica.Filter) {
	if b.member == nil || b.member.tr == nil {
		return
	}
	b.member.tr.SetFilter(drop)
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
	g, ok := b.groups.get(group)
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
	if b.member == nil {
		return false
	}
	s := b.member.n().Status()
	return s.Role != replica.Leader && s.Leader != 0
}
