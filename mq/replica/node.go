package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"qianlang.io/mq/message"
	"qianlang.io/mq/store"
)

// Errors a put can fail with.
var (
	// ErrNotLeader: this member is not the leader; the put was not
	// proposed.
	ErrNotLeader = errors.New("replica: not the leader")
	// ErrLeadershipLost: this member stopped leading after it proposed
	// the put and before it was committed. The new leader may still commit
	// it; a client that retries may store it twice.
	ErrLeadershipLost = errors.New("replica: leadership lost before commit")
	// ErrClosed: the member is shutting down.
	ErrClosed = errors.New("replica: closed")
	// ErrStopped: the member stopped after a storage failure.
	ErrStopped = errors.New("replica: stopped after a storage failure")
	// ErrCommitTimeout: the put was proposed but not committed within
	// PutTimeout. It may still be committed.
	ErrCommitTimeout = errors.New("replica: not committed in time; it may or may not be stored")
	// ErrProposeTimeout: the put waited PutTimeout without being proposed
	// (the group commits nothing); it is not stored.
	ErrProposeTimeout = errors.New("replica: not proposed in time; not stored")
)

// Role is a member's part in its group.
type Role int

const (
	Follower Role = iota
	Candidate
	Leader
	Stopped // left the group after a storage failure
)

func (r Role) String() string {
	return [...]string{"FOLLOWER", "CANDIDATE", "LEADER", "STOPPED"}[r]
}

// Status is a member's view of its group.
type Status struct {
	ID        uint64
	Role      Role
	Term      uint64
	Leader    uint64 // 0 when unknown
	Commit    uint64 // highest index known committed
	Applied   uint64 // highest index visible to readers here
	LastIndex uint64
	// Settled is true on a leader that has applied an entry of its own
	// term, and with it every entry an earlier leader committed: until
	// then, state derived from applied entries may still change under it.
	Settled bool
}

// Options configure a Node.
type Options struct {
	// ID is this member's id (1-based; dLegerSelfId n0 is 1).
	ID uint64
	// Voters lists every member's id, ID included.
	Voters []uint64
	Store  *store.Store
	// SyncFlush makes every member fsync entries before acknowledging
	// them; otherwise a majority holding them in the page cache commits.
	SyncFlush bool
	// TickInterval is the heartbeat period; elections start after
	// ElectionTicks to 2×ElectionTicks ticks without a leader.
	TickInterval  time.Duration
	ElectionTicks int
	// MaxEntryBytes bounds the records the leader packs into one entry.
	MaxEntryBytes int
	// MaxPipeline is how many proposals the leader keeps uncommitted
	// before it lets new puts gather for the next one (2 by default;
	// negative: no limit). Puts that arrive while the pipeline is full
	// wait for the oldest proposal to commit, or until MaxEntryBytes of
	// them are waiting, and then go out together in one entry: under
	// load every replication round trip carries everything that arrived
	// during the previous one, so the cost of a round trip (writes,
	// transport frames, wake-ups) is shared by more messages; a lone put
	// never waits.
	MaxPipeline int
	// PutTimeout bounds how long a put waits for its outcome: older puts
	// fail with ErrProposeTimeout or ErrCommitTimeout, checked every tick
	// (0: they wait as long as it takes).
	PutTimeout time.Duration
	// PreferredLeader is the member that should lead whenever it can
	// (DLedger's preferredLeaderId; 0: none). Once per election timeout
	// that member, when it follows and has caught up, asks the leader to
	// hand leadership over.
	PreferredLeader uint64
	// RecentBytes is how much of the newest log raft reads back from
	// memory instead of the CommitLog (32 MiB by default).
	RecentBytes int
	Logger      *slog.Logger
	// NewTransport builds the transport, given where to deliver incoming
	// messages and how to report a peer unreachable.
	NewTransport func(deliver func(pb.Message), unreachable func(id uint64)) (Transport, error)
	// OnStatus is told when the role, the term, the leader or Settled
	// changes. It runs on a goroutine of its own, one call at a time, and
	// may block without holding up the member. Changes that happen while
	// it runs are coalesced to the newest: a slow OnStatus may miss
	// intermediate statuses, but it never sees an older status after a
	// newer one, and it is always called with the latest, so the last call
	// carries the member's final role, term and leader (Stopped after a
	// storage failure). Close returns once the call in progress and the
	// one still owed have returned; none comes after it.
	OnStatus func(Status)
	// OnMeta applies a committed metadata entry, given its index and the
	// term it was proposed in. It runs on every member in log order, on
	// the driver goroutine, and must not block.
	OnMeta func(index, term uint64, payload []byte)
	// OnCompletions runs after each batch of put completions.
	OnCompletions func()
	// SnapshotData returns the application metadata (JSON) a snapshot for
	// a far-behind follower carries; RestoreData installs it there.
	SnapshotData func() []byte
	RestoreData  func([]byte)
}

func (o *Options) fill() {
	if o.TickInterval == 0 {
		o.TickInterval = 100 * time.Millisecond
	}
	if o.ElectionTicks == 0 {
		o.ElectionTicks = 10
	}
	if o.MaxEntryBytes == 0 {
		o.MaxEntryBytes = 1 << 20
	}
	if o.MaxPipeline == 0 {
		o.MaxPipeline = 2
	}
	if o.RecentBytes == 0 {
		o.RecentBytes = 32 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first invalid option.
func (o *Options) Validate() error {
	if o.ID == 0 {
		return errors.New("replica: ID must be set (1-based)")
	}
	if !slices.Contains(o.Voters, o.ID) {
		return fmt.Errorf("replica: ID %d is not among the voters %v", o.ID, o.Voters)
	}
	if o.PreferredLeader != 0 && !slices.Contains(o.Voters, o.PreferredLeader) {
		return fmt.Errorf("replica: preferred leader %d is not among the voters %v", o.PreferredLeader, o.Voters)
	}
	if o.Store == nil || o.NewTransport == nil {
		return errors.New("replica: Store and NewTransport must be set")
	}
	if o.ElectionTicks < 0 || o.TickInterval < 0 {
		return errors.New("replica: TickInterval and ElectionTicks must not be negative")
	}
	return nil
}

// put is one request waiting to be proposed: messages, or metadata.
type put struct {
	msgs []*message.Message
	meta []byte
	done func(error)
}

// proposal is one entry this leader proposed.
type proposal struct {
	at   time.Time // when it was proposed
	puts []*put
	msgs []*message.Message // every message of puts, in record order
	next int                // the next record AppendEntries reports
}

// Node is one member of a replicated broker group: it drives raft (a
// RawNode owned by one goroutine, in the Ready/Advance shape), writes
// entries to the store, sends messages through the transport and applies
// committed entries.
type Node struct {
	o   Options
	log *slog.Logger
	st  *store.Store
	rn  *raft.RawNode
	ls  *logStorage
	tr  Transport

	recvc    chan pb.Message
	unreachc chan uint64
	retiring atomic.Bool // stopping: never asks for leadership
	ctlc     chan func()
	propWake chan struct{}
	// wantPuts tells enqueue to wake the driver for a new put: false only
	// while the leader's pipeline is full, when the driver proposes what
	// gathered as soon as a proposal commits, so a wake would be wasted.
	wantPuts atomic.Bool

	pmu          sync.Mutex
	pending      []*put    // guarded by pmu
	pendingBytes int       // guarded by pmu: the message bytes in pending
	pendingSince time.Time // guarded by pmu: when the oldest pending put came

	inflight map[uint64]*proposal // by entry index; driver goroutine only
	role     Role                 // driver goroutine only
	lastTerm uint64               // term of the last entry applied; driver goroutine only
	lead     uint64               // driver goroutine only

	status atomic.Pointer[Status]
	// notice is the newest status OnStatus has not been given, and
	// noticeWake (capacity 1) tells notifyLoop it is there: statuses
	// published while OnStatus runs replace each other, so the last one is
	// never dropped.
	notice     atomic.Pointer[Status]
	noticeWake chan struct{}
	fatal      atomic.Pointer[error]

	stop      chan struct{}
	halt      chan struct{} // closed when a storage failure stopped the member
	haltOnce  sync.Once
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Start starts a member on a store opened in replicated mode.
func Start(o Options) (*Node, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.fill()
	n := &Node{
		o: o, st: o.Store,
		log:        o.Logger.With("component", "replica", "id", o.ID),
		recvc:      make(chan pb.Message, 1024),
		unreachc:   make(chan uint64, 64),
		ctlc:       make(chan func()),
		propWake:   make(chan struct{}, 1),
		inflight:   make(map[uint64]*proposal),
		noticeWake: make(chan struct{}, 1),
		stop:       make(chan struct{}),
		halt:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	ls := &logStorage{st: o.Store, voters: o.Voters, ring: entryRing{max: o.RecentBytes}, appData: o.SnapshotData}
	n.ls = ls
	n.wantPuts.Store(true)
	hs, _, _ := ls.InitialState()
	cfg := &raft.Config{
		ID:                        o.ID,
		ElectionTick:              o.ElectionTicks,
		HeartbeatTick:             1,
		Storage:                   ls,
		Applied:                   min(o.Store.AppliedIndex(), hs.Commit),
		MaxSizePerMsg:             4 << 20,
		MaxCommittedSizePerReady:  64 << 20,
		MaxUncommittedEntriesSize: 1 << 30,
		MaxInflightMsgs:           256,
		CheckQuorum:               true,
		PreVote:                   true,
		Logger:                    raftLogger{n.log},
	}
	rn, err := raft.NewRawNode(cfg)
	if err != nil {
		return nil, fmt.Errorf("replica: start raft: %w", err)
	}
	n.rn = rn
	n.publish()
	tr, err := o.NewTransport(n.deliver, n.reportUnreachable)
	if err != nil {
		return nil, err
	}
	n.tr = tr
	n.wg.Add(2)
	go n.run()
	go n.notifyLoop()
	return n, nil
}

func (n *Node) deliver(m pb.Message) {
	select {
	case n.recvc <- m:
	case <-n.stop:
	case <-n.halt:
	}
}

func (n *Node) reportUnreachable(id uint64) {
	select {
	case n.unreachc <- id:
	default:
	}
}

// Status returns this member's current view.
func (n *Node) Status() Status { return *n.status.Load() }

// Err is the storage failure that stopped this member, or nil.
func (n *Node) Err() error {
	if e := n.fatal.Load(); e != nil {
		return *e
	}
	return nil
}

// Put replicates msgs as part of one entry and calls done once they are
// committed (on a majority) and this member's store knows it (its
// dispatcher makes them readable right after), with their queue offsets,
// physical offsets and store timestamps filled in; or with the error.
func (n *Node) Put(msgs []*message.Message, done func(error)) {
	n.enqueue(&put{msgs: msgs, done: done})
}

// ProposeMeta replicates a metadata entry; done is called once it is
// committed and applied here.
func (n *Node) ProposeMeta(payload []byte, done func(error)) {
	n.enqueue(&put{meta: payload, done: done})
}

func (n *Node) enqueue(p *put) {
	if err := n.Err(); err != nil {
		p.done(err)
		return
	}
	if n.Status().Role != Leader {
		p.done(ErrNotLeader)
		return
	}
	if p.meta == nil {
		if err := n.st.Writable(); err != nil {
			p.done(err)
			return
		}
	}
	size := len(p.meta)
	for _, m := range p.msgs {
		size += len(m.Body) + len(m.Properties)
	}
	n.pmu.Lock()
	if len(n.pending) == 0 && n.o.PutTimeout > 0 {
		n.pendingSince = time.Now()
	}
	n.pending = append(n.pending, p)
	n.pendingBytes += size
	full := n.pendingBytes >= n.o.MaxEntryBytes
	n.pmu.Unlock()
	if full || n.wantPuts.Load() {
		select {
		case n.propWake <- struct{}{}:
		default:
		}
	}
}

// Campaign makes this member start an election now.
func (n *Node) Campaign() error {
	return n.control(func() { _ = n.rn.Campaign() })
}

// TransferLeadership hands leadership to the most up-to-date follower and
// waits until another member leads, or ctx ends. It is a no-op on a
// follower.
func (n *Node) TransferLeadership(ctx context.Context) error {
	var target uint64
	err := n.control(func() {
		if n.role != Leader {
			return
		}
		var best uint64
		for id, pr := range n.rn.Status().Progress {
			if id != n.o.ID && (target == 0 || pr.Match > best) {
				target, best = id, pr.Match
			}
		}
		if target != 0 {
			n.log.Info("transferring leadership", "to", target, "match", best)
			n.rn.TransferLeader(target)
		}
	})
	if err != nil || target == 0 {
		return err
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if s := n.Status(); s.Role != Leader && s.Leader != 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replica: leadership transfer to %d: %w", target, ctx.Err())
		case <-t.C:
		}
	}
}

// claimPreferred asks the leader to hand leadership over when this member
// is the preferred one, follows, and has every committed entry written
// and applied: it then lacks at most the entries in flight, so the
// hand-over stops proposals for about one round trip. raft forwards the
// request to the leader. A member that is stopping never asks.
func (n *Node) claimPreferred() {
	if n.o.PreferredLeader != n.o.ID || n.role != Follower || n.retiring.Load() {
		return
	}
	s := n.Status()
	if s.Leader == 0 || s.Leader == n.o.ID || s.Commit == 0 || s.LastIndex < s.Commit || s.Applied < s.Commit {
		return
	}
	n.log.Info("asking the leader to hand over leadership to the preferred member", "leader", s.Leader, "commit", s.Commit)
	n.rn.TransferLeader(n.o.ID)
}

// Retire marks this member as stopping: it no longer asks for leadership
// as the preferred member. A graceful shutdown calls it first.
func (n *Node) Retire() { n.retiring.Store(true) }

// control runs fn on the driver goroutine.
func (n *Node) control(fn func()) error {
	ran := make(chan struct{})
	select {
	case n.ctlc <- func() { fn(); close(ran) }:
	case <-n.done:
		return ErrClosed
	}
	select {
	case <-ran:
		return nil
	case <-n.done:
		return ErrClosed
	}
}

func (n *Node) run() {
	defer n.wg.Done()
	defer close(n.done)
	defer func() {
		// raft panics when the log contradicts what this member promised
		// before (it lost acknowledged entries, as an ASYNC_FLUSH member can
		// in a power loss). Leave the group instead of taking the broker
		// down; the operator wipes this member's store to rejoin.
		if r := recover(); r != nil {
			n.stopOnFailure(fmt.Errorf("raft refused this member's log (lost acknowledged entries? wipe the store to rejoin): %v", r))
		}
	}()
	tick := time.NewTicker(n.o.TickInterval)
	defer tick.Stop()
	ticks := 0
	for {
		select {
		case now := <-tick.C:
			n.rn.Tick()
			n.expire(now)
			if ticks++; ticks%n.o.ElectionTicks == 0 {
				n.claimPreferred()
			}
		case m := <-n.recvc:
			n.step(m)
			for i := 0; i < 256; i++ {
				select {
				case m = <-n.recvc:
					n.step(m)
					continue
				default:
				}
				break
			}
		case id := <-n.unreachc:
			n.rn.ReportUnreachable(id)
		case fn := <-n.ctlc:
			fn()
		case <-n.propWake:
			n.propose()
		case <-n.stop:
			n.failAll(ErrClosed)
			return
		}
		for {
			for n.rn.HasReady() {
				if err := n.handleReady(n.rn.Ready()); err != nil {
					n.stopOnFailure(err)
					return
				}
			}
			// A commit may have made room in the pipeline for puts that
			// gathered meanwhile.
			if !n.gathered() {
				break
			}
			n.propose()
		}
	}
}

// gathered reports whether puts wait that the pipeline now has room for
// (or that a member which no longer leads must refuse).
// It also tells enqueue whether to wake the driver: it stores wantPuts
// before it looks at the pending puts, so a put that saw wantPuts false
// is found here.
func (n *Node) gathered() bool {
	n.wantPuts.Store(n.pipelineHasRoom())
	if n.pipelineFull() {
		return false
	}
	n.pmu.Lock()
	defer n.pmu.Unlock()
	return len(n.pending) > 0
}

func (n *Node) step(m pb.Message) {
	if err := n.rn.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
		n.log.Debug("raft step", "type", m.Type, "from", m.From, "err", err)
	}
}

// pipelineFull reports whether the leader should let puts gather: it has
// MaxPipeline proposals uncommitted and less than an entry's worth waits.
func (n *Node) pipelineFull() bool {
	if n.pipelineHasRoom() {
		return false
	}
	n.pmu.Lock()
	defer n.pmu.Unlock()
	return n.pendingBytes < n.o.MaxEntryBytes
}

// pipelineHasRoom reports whether a proposal may go out without waiting
// for one to commit (always, on a member that does not lead).
func (n *Node) pipelineHasRoom() bool {
	return n.role != Leader || n.o.MaxPipeline < 0 || len(n.inflight) < n.o.MaxPipeline
}

// propose packs the pending puts into entries and proposes them, unless
// the pipeline is full; the run loop proposes again once one commits.
func (n *Node) propose() {
	if n.pipelineFull() {
		return
	}
	n.pmu.Lock()
	puts := n.pending
	n.pending, n.pendingBytes = nil, 0
	n.pmu.Unlock()
	if len(puts) == 0 {
		return
	}
	if n.role != Leader {
		for _, p := range puts {
			p.done(ErrNotLeader)
		}
		n.completed()
		return
	}
	at := time.Now()
	now := at.UnixMilli()
	// Group the puts into entries of at most MaxEntryBytes, then encode
	// each entry into a buffer of its exact size.
	var ents []pb.Entry
	var props []*proposal
	var cur *proposal
	size := 0
	seal := func() {
		if cur == nil {
			return
		}
		data := make([]byte, dataOffPayload, size)
		data[dataOffType] = byte(store.EntryMessages)
		for _, m := range cur.msgs {
			m.StoreTimestamp = now
			data = message.AppendRecord(data, m)
		}
		ents = append(ents, pb.Entry{Data: data})
		props = append(props, cur)
		cur, size = nil, 0
	}
	for _, p := range puts {
		if p.meta != nil {
			seal()
			ents = append(ents, pb.Entry{Data: append([]byte{byte(store.EntryMeta)}, p.meta...)})
			props = append(props, &proposal{at: at, puts: []*put{p}})
			continue
		}
		psize := 0
		for _, m := range p.msgs {
			psize += m.EncodedSize()
		}
		if cur != nil && size+psize > n.o.MaxEntryBytes {
			seal()
		}
		if cur == nil {
			cur, size = &proposal{at: at}, dataOffPayload
		}
		size += psize
		cur.puts = append(cur.puts, p)
		cur.msgs = append(cur.msgs, p.msgs...)
	}
	seal()
	if err := n.rn.Step(pb.Message{Type: pb.MsgProp, From: n.o.ID, Entries: ents}); err != nil {
		for _, pr := range props {
			pr.finish(ErrNotLeader)
		}
		n.completed()
		return
	}
	// raft numbered the entries in place.
	for i := range ents {
		n.inflight[ents[i].Index] = props[i]
	}
}

// finish completes every put of the proposal: with nil once its entry is
// committed and applied here, or with the error that ends the wait for it.
func (p *proposal) finish(err error) {
	for _, x := range p.puts {
		x.done(err)
	}
}

func (n *Node) completed() {
	if n.o.OnCompletions != nil {
		n.o.OnCompletions()
	}
}

// handleReady persists, sends and applies one Ready.
func (n *Node) handleReady(rd raft.Ready) error {
	if rd.SoftState != nil {
		n.softState(rd.SoftState)
	}
	leader := n.role == Leader
	if leader {
		// A leader may send while it writes (Raft thesis §10.2.1): it
		// counts itself only once its own write is done.
		n.send(rd.Messages)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.installSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	if err := n.appendEntries(rd.Entries); err != nil {
		return err
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		hs := store.HardState{Term: rd.HardState.Term, Vote: rd.HardState.Vote, Commit: rd.HardState.Commit}
		if err := n.st.SetHardState(hs); err != nil {
			return err
		}
	}
	if rd.MustSync && n.o.SyncFlush && len(rd.Entries) > 0 {
		if err := n.st.SyncLog(); err != nil {
			return err
		}
	}
	if !leader {
		n.send(rd.Messages)
	}
	if err := n.apply(rd.CommittedEntries); err != nil {
		return err
	}
	n.rn.Advance(rd)
	n.publish()
	return nil
}

// send hands messages to the transport. A snapshot is reported delivered
// once queued: if it is lost, the follower's next rejection makes raft send
// another.
func (n *Node) send(msgs []pb.Message) {
	n.tr.Send(msgs)
	for i := range msgs {
		if msgs[i].Type == pb.MsgSnap {
			n.log.Info("sent a snapshot to a follower behind the log start", "to", msgs[i].To, "index", msgs[i].Snapshot.Metadata.Index)
			n.rn.ReportSnapshot(msgs[i].To, raft.SnapshotFinish)
		}
	}
}

// installSnapshot restarts this member's log at the leader's log start.
func (n *Node) installSnapshot(snap pb.Snapshot) error {
	var sd snapshotData
	if err := json.Unmarshal(snap.Data, &sd); err != nil {
		return fmt.Errorf("replica: undecodable snapshot at index %d: %w", snap.Metadata.Index, err)
	}
	if sd.Log.Start.Index != snap.Metadata.Index || sd.Log.Start.Term != snap.Metadata.Term {
		return fmt.Errorf("replica: snapshot data at %d/%d does not match its metadata %d/%d",
			sd.Log.Start.Index, sd.Log.Start.Term, snap.Metadata.Index, snap.Metadata.Term)
	}
	if err := n.st.InstallSnapshot(sd.Log); err != nil {
		return err
	}
	n.ls.ring.reset()
	if n.o.RestoreData != nil && len(sd.App) > 0 {
		n.o.RestoreData(sd.App)
	}
	return nil
}

func (n *Node) appendEntries(ents []pb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	les := make([]store.LogEntry, len(ents))
	for i := range ents {
		le, err := fromRaft(&ents[i])
		if err != nil {
			return err
		}
		les[i] = le
	}
	err := n.st.AppendEntries(les, func(i int, phy, qo int64) {
		p := n.inflight[ents[i].Index]
		if p == nil || p.next >= len(p.msgs) {
			return
		}
		m := p.msgs[p.next]
		p.next++
		m.PhysicalOffset, m.QueueOffset = phy, qo
	})
	if err == nil {
		n.ls.ring.append(ents)
	}
	return err
}

// apply makes committed entries visible and completes the puts they carry.
func (n *Node) apply(ents []pb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	for i := range ents {
		e := &ents[i]
		switch e.Type {
		case pb.EntryConfChange:
			var cc pb.ConfChange
			if err := cc.Unmarshal(e.Data); err != nil {
				return fmt.Errorf("replica: entry %d: %w", e.Index, err)
			}
			n.rn.ApplyConfChange(cc)
		case pb.EntryConfChangeV2:
			var cc pb.ConfChangeV2
			if err := cc.Unmarshal(e.Data); err != nil {
				return fmt.Errorf("replica: entry %d: %w", e.Index, err)
			}
			n.rn.ApplyConfChange(cc)
		default:
			if len(e.Data) > 0 && store.EntryType(e.Data[dataOffType]) == store.EntryMeta && n.o.OnMeta != nil {
				n.o.OnMeta(e.Index, e.Term, e.Data[dataOffPayload:])
			}
		}
	}
	last := ents[len(ents)-1].Index
	if err := n.st.Commit(last); err != nil {
		return err
	}
	n.lastTerm = ents[len(ents)-1].Term
	done := false
	for i := range ents {
		if p := n.inflight[ents[i].Index]; p != nil {
			delete(n.inflight, ents[i].Index)
			p.finish(nil)
			done = true
		}
	}
	if done {
		n.completed()
	}
	return nil
}

// softState follows role and leader changes.
func (n *Node) softState(ss *raft.SoftState) {
	was := n.role
	switch ss.RaftState {
	case raft.StateLeader:
		n.role = Leader
	case raft.StateCandidate, raft.StatePreCandidate:
		n.role = Candidate
	default:
		n.role = Follower
	}
	n.lead = ss.Lead
	if was == Leader && n.role != Leader {
		n.log.Warn("lost leadership; failing uncommitted puts", "inflight", len(n.inflight), "new_leader", ss.Lead)
		n.failInflight(ErrLeadershipLost)
		n.failAll(ErrNotLeader)
	}
}

// expire fails the puts older than PutTimeout: proposed ones that have not
// committed (they may still commit; nobody waits for them any more) and
// waiting ones the leader could not propose.
func (n *Node) expire(now time.Time) {
	if n.o.PutTimeout <= 0 {
		return
	}
	limit := now.Add(-n.o.PutTimeout)
	expired := 0
	for idx, p := range n.inflight {
		if p.at.Before(limit) {
			delete(n.inflight, idx)
			p.finish(ErrCommitTimeout)
			expired += len(p.puts)
		}
	}
	var stale []*put
	n.pmu.Lock()
	if len(n.pending) > 0 && n.pendingSince.Before(limit) {
		stale = n.pending
		n.pending, n.pendingBytes = nil, 0
	}
	n.pmu.Unlock()
	for _, p := range stale {
		p.done(ErrProposeTimeout)
	}
	if expired+len(stale) > 0 {
		n.log.Warn("puts timed out", "uncommitted", expired, "unproposed", len(stale), "timeout", n.o.PutTimeout)
		n.completed()
	}
}

// failInflight fails the proposed puts not yet completed.
func (n *Node) failInflight(err error) {
	for idx, p := range n.inflight {
		delete(n.inflight, idx)
		p.finish(err)
	}
}

// failAll fails every put not yet completed: proposed ones and queued ones.
func (n *Node) failAll(err error) {
	n.failInflight(err)
	n.pmu.Lock()
	puts := n.pending
	n.pending, n.pendingBytes = nil, 0
	n.pmu.Unlock()
	for _, p := range puts {
		p.done(err)
	}
	n.completed()
}

// publish refreshes the status and leaves a notification for OnStatus
// when the role, term, leader or Settled changed. Only the driver
// goroutine publishes (and Start, before it runs).
func (n *Node) publish() {
	bs := n.rn.BasicStatus()
	s := Status{
		ID: n.o.ID, Role: n.role, Term: bs.Term, Leader: bs.Lead,
		Commit: bs.Commit, Applied: n.st.AppliedIndex(), LastIndex: n.st.LastIndex(),
		Settled: n.role == Leader && n.lastTerm == bs.Term,
	}
	if e := n.fatal.Load(); e != nil {
		s.Role = Stopped
	}
	old := n.status.Swap(&s)
	if old == nil || old.Role != s.Role || old.Term != s.Term || old.Leader != s.Leader || old.Settled != s.Settled {
		n.notify(&s)
	}
}

// notify leaves s for notifyLoop, replacing a status it has not taken yet.
// The status is stored before the wake-up is sent, so a wake-up that is
// already pending finds it.
func (n *Node) notify(s *Status) {
	n.notice.Store(s)
	select {
	case n.noticeWake <- struct{}{}:
	default:
	}
}

// notifyLoop calls OnStatus with the newest status each time one is left;
// once the driver has stopped it delivers what it published last.
func (n *Node) notifyLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.noticeWake:
			n.deliverNotice()
		case <-n.done:
			n.deliverNotice()
			return
		}
	}
}

func (n *Node) deliverNotice() {
	if s := n.notice.Swap(nil); s != nil && n.o.OnStatus != nil {
		n.o.OnStatus(*s)
	}
}

// stopOnFailure takes this member out of the group after a storage
// failure: it acknowledges nothing more and sends nothing more.
func (n *Node) stopOnFailure(err error) {
	err = fmt.Errorf("%w: %w", ErrStopped, err)
	n.fatal.Store(&err)
	n.log.Error("storage failed; this member leaves its group until restarted", "err", err)
	n.haltOnce.Do(func() { close(n.halt) }) // the transport's readers stop waiting for the loop
	n.failAll(err)
	n.tr.Close()
	n.publish()
}

// Close stops the member. The store stays open; the caller closes it
// after. It is idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.stop)
		<-n.done
		n.tr.Close()
	})
	n.wg.Wait()
	return nil
}
