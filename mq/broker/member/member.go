// Package member is a broker's part in a Raft broker group
// (enableDLegerCommitLog): every member holds the same CommitLog; the
// leader takes writes and registers as brokerId 0, followers as 1, 2…; a
// follower forwards the writes that still reach it to the leader. The
// leader replicates the broker's metadata (package meta) through the
// group's log, and hands leadership over before a graceful shutdown.
//
// The broker serves requests; a Member tells it whether it leads, stores
// its writes through the group, forwards what it must not serve, and
// calls back (Hooks) when its brokerId or tables change.
package member

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"qianlang.io/mq/broker/meta"
	"qianlang.io/mq/message"
	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
	"qianlang.io/mq/replica"
	"qianlang.io/mq/store"
)

// Config is a member's part of the broker's configuration.
type Config struct {
	Group           string // dLegerGroup
	Self            Peer
	Peers           []Peer // every member, Self too, by id
	PreferredLeader uint64 // raft id of preferredLeaderId; 0: none
	SyncFlush       bool
	// PutTimeout bounds how long a write waits for the group.
	PutTimeout      time.Duration
	Heartbeat       time.Duration // dLegerHeartbeatIntervalMs
	ElectionTimeout time.Duration // dLegerElectionTimeoutMs
	// Drain is how long a leader that handed over at shutdown keeps
	// serving (dLegerShutdownDrainMs).
	Drain time.Duration
	// ForwardTimeout bounds a request forwarded to the leader, election
	// included.
	ForwardTimeout time.Duration
	Logger         *slog.Logger
}

// Hooks are the broker's parts a member calls.
type Hooks struct {
	// Serve serves a request that was to be forwarded, once this member
	// turns out to lead.
	Serve func(ctx context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command
	// Register asks for a registration with the NameServers: the
	// brokerId or the topic table changed.
	Register func()
	// Unregister withdraws the registration: the member left its group.
	Unregister func()
	// Settled runs when this member settles as leader.
	Settled func()
	// Completions runs after each batch of store completions.
	Completions func()
}

// Member is this broker's part in its Raft group.
type Member struct {
	cfg    Config
	hooks  Hooks
	log    *slog.Logger
	store  *store.Store
	tables *meta.Tables
	addr   string // the broker's client address, from Start

	node  *replica.Node                // set once ready is closed
	ready chan struct{}                // the node's callbacks wait for it
	live  atomic.Pointer[replica.Node] // node, once ready is closed: the send path's lock-free read
	tr    *replica.TCP
	fwd   *remoting.Client

	brokerID atomic.Int64   // registered id; -1 while unknown
	last     replica.Status // the status statusChanged saw last; its goroutine only

	// statusHook, when set, runs before each status is handled (tests).
	statusHook atomic.Pointer[func(replica.Status)]
	term       atomic.Uint64

	metaWake chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	proposed versions // what the leader last replicated; guarded by mu
	// offsetsWhole makes the leader's next offset replication the whole
	// table, not the changes; offsetsWholeAt is when one last committed.
	// Guarded by mu.
	offsetsWhole   bool
	offsetsWholeAt time.Time
	// offsetsMu orders the offset proposals: it is held from taking
	// offsets out of the table until their entry is proposed.
	offsetsMu sync.Mutex
}

// versions identify the states of the replicated tables.
type versions struct {
	topics, groups protocol.DataVersion
	offsets        uint64
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

// leaderWait bounds how long a forwarded request waits for an election.
const leaderWait = 1500 * time.Millisecond

// New prepares a member over the broker's store and tables and loads the
// members' addresses; Start joins the group.
func New(cfg Config, hooks Hooks, st *store.Store, tables *meta.Tables) (*Member, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Member{cfg: cfg, hooks: hooks, log: cfg.Logger, store: st, tables: tables,
		ready: make(chan struct{}), metaWake: make(chan struct{}, 1), stop: make(chan struct{})}
	if err := tables.Members.Load(); err != nil {
		return nil, err
	}
	m.brokerID.Store(-1)
	return m, nil
}

// Start joins the group; addr is the broker's client address, which the
// member announces when it leads.
func (m *Member) Start(addr string) error {
	m.addr = addr
	voters := make([]uint64, len(m.cfg.Peers))
	peers := make(map[uint64]string, len(m.cfg.Peers))
	for i, p := range m.cfg.Peers {
		voters[i] = p.ID
		peers[p.ID] = p.Addr
	}
	if err := m.tables.Applied.Load(m.store.AppliedIndex()); err != nil {
		return fmt.Errorf("member: join group %s: %w", m.cfg.Group, err)
	}
	m.fwd = remoting.NewClient(remoting.ClientOptions{DialTimeout: time.Second})
	node, err := replica.Start(replica.Options{
		ID: m.cfg.Self.ID, Voters: voters, Store: m.store, PreferredLeader: m.cfg.PreferredLeader,
		SyncFlush:     m.cfg.SyncFlush,
		PutTimeout:    m.cfg.PutTimeout,
		TickInterval:  m.cfg.Heartbeat,
		ElectionTicks: int(m.cfg.ElectionTimeout / m.cfg.Heartbeat),
		Logger:        m.log,
		NewTransport: replica.TCPTransport(replica.TCPOptions{Self: m.cfg.Self.ID, Listen: m.cfg.Self.Addr, Peers: peers, Logger: m.log},
			func(tr *replica.TCP) { m.tr = tr }),
		OnStatus:      m.statusChanged,
		OnMeta:        m.applyMeta,
		OnCompletions: m.hooks.Completions,
		SnapshotData:  m.snapshotData,
		RestoreData:   m.restoreData,
	})
	if err != nil {
		m.fwd.Close()
		return fmt.Errorf("member: join group %s: %w", m.cfg.Group, err)
	}
	m.node = node
	close(m.ready)
	m.live.Store(node)
	m.wg.Add(1)
	go m.replicateLoop()
	return nil
}

// replicateLoop replicates the changed tables every metaInterval, and
// when woken, until the member closes.
func (m *Member) replicateLoop() {
	defer m.wg.Done()
	t := time.NewTicker(metaInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		case <-m.metaWake:
		}
		m.replicateMeta()
	}
}

// statusChanged follows role changes: the registered brokerId, and on
// becoming leader, the meta entry that tells followers where to forward.
// Once the leader has settled (applied an entry of its own term, and so
// every entry its predecessors committed), it starts replicating its
// tables and the broker runs its schedulers.
func (m *Member) statusChanged(s replica.Status) {
	<-m.ready
	if h := m.statusHook.Load(); h != nil {
		(*h)(s)
	}
	prev := m.last
	m.last = s
	m.term.Store(s.Term)
	id := m.idFor(s)
	m.log.Info("group member status", "group", m.cfg.Group, "self", m.cfg.Self.Name, "role", s.Role.String(), "term", s.Term, "leader", s.Leader, "settled", s.Settled, "brokerId", id)
	if id == -1 {
		return // no leader known: keep the last registration
	}
	if id == -2 {
		m.brokerID.Store(-1)
		go m.hooks.Unregister()
		return
	}
	if old := m.brokerID.Swap(id); old != id {
		m.hooks.Register()
	}
	if s.Role != replica.Leader {
		return
	}
	took := prev.Role != replica.Leader || prev.Term != s.Term
	if took {
		m.mu.Lock()
		m.proposed = versions{}
		m.offsetsWhole = true // the followers may not hold what this member committed while it followed
		m.mu.Unlock()
		m.proposeLeader()
		// The locks it inherited count from now: their owners may need
		// a route refresh (up to 30 s) before they reach this leader.
		m.tables.Locks.Replace(m.tables.Locks.Owners(), time.Now())
	}
	if s.Settled && (took || !prev.Settled) {
		wake(m.metaWake)
		m.hooks.Settled()
	}
}

// idFor is the brokerId a status registers with: 0 for the leader, 1, 2…
// for the followers in member order; -1 while no leader is known, -2
// once the member stopped.
func (m *Member) idFor(s replica.Status) int64 {
	switch {
	case s.Role == replica.Leader:
		return 0
	case s.Role == replica.Stopped:
		return -2
	case s.Leader != 0:
		others := []uint64{}
		for _, p := range m.cfg.Peers {
			if p.ID != s.Leader {
				others = append(others, p.ID)
			}
		}
		return int64(slices.Index(others, m.cfg.Self.ID) + 1)
	}
	return -1
}

// n is the member's raft node, once it runs: requests that reach the
// broker while it is still joining wait for it.
func (m *Member) n() *replica.Node {
	if nd := m.live.Load(); nd != nil {
		return nd
	}
	<-m.ready
	return m.node
}

// started reports whether the member's node runs.
func (m *Member) started() bool {
	select {
	case <-m.ready:
		return true
	default:
		return false
	}
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// BrokerID is the brokerId to register with, or -1 for none yet.
func (m *Member) BrokerID() int64 { return m.brokerID.Load() }

// Term is the group's term as this member last saw it.
func (m *Member) Term() uint64 { return m.term.Load() }

// Status is this member's view of its group; the bool is always true (a
// standalone broker answers false).
func (m *Member) Status() (replica.Status, bool) { return m.n().Status(), true }

// Put stores msgs through the group.
func (m *Member) Put(msgs []*message.Message, done func(error)) { m.n().Put(msgs, done) }

// Leads reports whether this member takes writes itself: as its group's
// leader once settled. A leader that has not yet applied every entry its
// predecessors committed does not serve writes and table changes yet:
// they wait in Forward, since an entry still to apply may replace the
// tables they would change.
func (m *Member) Leads() bool {
	s := m.n().Status()
	return s.Role == replica.Leader && s.Settled
}

// SetFilter drops the group messages this member sends or receives for
// which drop is true (nil: none).
func (m *Member) SetFilter(drop replica.Filter) {
	if m.tr != nil {
		m.tr.SetFilter(drop)
	}
}

// HandOver runs first in a graceful shutdown: a leader hands leadership to
// the most up-to-date follower, then keeps serving for Drain, forwarding
// the sends that still reach it, while the new leader registers and
// clients refresh their routes. A rolling restart then fails no send. A
// stopping member, leader or not, no longer asks for leadership as
// preferredLeaderId.
func (m *Member) HandOver() {
	if !m.started() {
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
		m.log.Warn("leadership transfer before shutdown failed", "err", err)
		return
	}
	if d := m.cfg.Drain; d > 0 {
		m.log.Info("handed leadership over; serving while clients move to the new leader", "drain", d)
		time.Sleep(d)
	}
}

// Close leaves the group; it is called once.
func (m *Member) Close() error {
	if !m.started() {
		return nil
	}
	err := m.node.Close()
	close(m.stop)
	m.wg.Wait()
	m.fwd.Close()
	return err
}

// TransferLeadership hands the group's leadership to its most up-to-date
// follower and waits until another member leads, or ctx ends. It does
// nothing before the member started.
func (m *Member) TransferLeadership(ctx context.Context) error {
	if !m.started() {
		return nil
	}
	return m.n().TransferLeadership(ctx)
}

// SetStatusHook installs fn (nil removes it), called with each status the
// member is told before it acts on it: its role, brokerId and
// registration. A test blocks in fn to hold role changes back.
func (m *Member) SetStatusHook(fn func(replica.Status)) {
	if fn == nil {
		m.statusHook.Store(nil)
		return
	}
	m.statusHook.Store(&fn)
}
