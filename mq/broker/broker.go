// Package broker is a RocketMQ-compatible broker: it serves the official
// clients' sends, pulls (with long polling), offsets, heartbeats and admin
// calls over the remoting protocol, stores messages in package store, and
// registers itself with every NameServer.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"qianlang.io/mq/broker/member"
	"qianlang.io/mq/broker/meta"
	"qianlang.io/mq/message"
	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
	"qianlang.io/mq/schedule"
	"qianlang.io/mq/store"
	"qianlang.io/mq/vfs"
)

// Broker is one broker node.
type Broker struct {
	cfg     Config
	log     *slog.Logger
	store   *store.Store
	topics  *meta.Topics
	groups  *meta.Groups
	offsets *meta.Offsets
	locks   *meta.Locks
	clients *clientTable
	holds   *pullHolds
	srv     *remoting.Server
	ns      *remoting.Client
	uniq    *message.UniqIDGenerator
	group   group          // what request handling sees of the replicas
	member  *member.Member // the group, when the broker is a member of a Raft group
	sched   *scheduler
	tx      *transactions
	sql     sqlCache
	acl     *aclFile // nil: ACL off

	addr        string         // advertised ip:port
	clusterProp string         // the CLUSTER property, encoded
	storeHost   netip.AddrPort // addr, parsed
	startedAt   time.Time

	registerWake chan struct{}
	// registerMu orders registrations: each takes its topic snapshot and
	// waits for every NameServer's answer before the next begins, so an
	// older snapshot never lands after a newer one (as Java's synchronized
	// registerBrokerAll).
	registerMu sync.Mutex
	stop       chan struct{}
	wg         sync.WaitGroup
	closeOnce  sync.Once
	closeErr   error

	stats    brokerStats
	putTimes putTimes

	kickMu sync.Mutex
	kicks  map[*remoting.Conn]struct{} // connections with queued responses
}

type brokerStats struct {
	putMessages  atomic.Int64
	putBytes     atomic.Int64
	getMessages  atomic.Int64
	getBytes     atomic.Int64
	putFailures  atomic.Int64
	heldPulls    atomic.Int64
	registerOK   atomic.Int64
	registerFail atomic.Int64
}

// New validates cfg, opens the store and loads the broker's tables. Start
// makes it serve.
func New(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Broker{
		cfg:          cfg,
		log:          cfg.Logger.With("component", "broker", "broker", cfg.BrokerName),
		clients:      newClientTable(),
		tx:           newTransactions(),
		holds:        newPullHolds(),
		registerWake: make(chan struct{}, 1),
		stop:         make(chan struct{}),
		clusterProp:  message.PropCluster + "\x01" + cfg.BrokerClusterName + "\x02",
		kicks:        make(map[*remoting.Conn]struct{}),
	}
	so := cfg.StoreOptions()
	so.Logger = b.log
	so.OnCompletions = b.kickQueued
	st, err := store.Open(so)
	if err != nil {
		return nil, err
	}
	b.store = st
	if b.acl, err = loadACL(&cfg); err != nil {
		_ = st.Close()
		return nil, err
	}
	levels, _ := schedule.ParseLevels(cfg.MessageDelayLevel) // validated
	b.sched = newScheduler(b, levels)
	if err := b.openTables(so.FS); err != nil {
		_ = st.Close()
		return nil, err
	}
	b.store.SetArrivalListener(func(topic string, queueID int32, maxOffset int64) {
		b.holds.arrived(topic, queueID, maxOffset)
		b.sched.arrived(topic, queueID)
	})
	b.srv = remoting.NewServer(brokerHandler{b}, remoting.ServerOptions{
		Logger: b.log,
		Conn:   remoting.ConnOptions{OnClose: b.connClosed},
	})
	b.ns = remoting.NewClient(remoting.ClientOptions{DialTimeout: 3 * time.Second})
	return b, nil
}

// openTables loads the broker's metadata, creates the system topics and,
// in a Raft group, prepares the broker's membership.
func (b *Broker) openTables(fs vfs.FS) error {
	tables, err := meta.Open(fs, b.cfg.StorePathRootDir)
	if err != nil {
		return err
	}
	b.topics, b.groups, b.offsets, b.locks = tables.Topics, tables.Groups, tables.Offsets, tables.Locks
	if err := b.systemTopics(); err != nil {
		return err
	}
	b.group = standalone{b.store}
	if !b.cfg.EnableDLegerCommitLog {
		return nil
	}
	m, err := b.newMember(tables)
	if err != nil {
		return err
	}
	b.member, b.group = m, m
	return nil
}

// systemTopics creates the topics every broker has.
func (b *Broker) systemTopics() error {
	topics := []protocol.TopicConfig{
		{TopicName: SelfTestTopic, ReadQueueNums: 1, WriteQueueNums: 1, Perm: protocol.PermRead | protocol.PermWrite},
		{TopicName: OffsetMovedTopic, ReadQueueNums: 1, WriteQueueNums: 1, Perm: protocol.PermRead | protocol.PermWrite},
		{TopicName: b.cfg.BrokerClusterName, ReadQueueNums: 16, WriteQueueNums: 16, Perm: b.cfg.BrokerPermission},
		{TopicName: b.cfg.BrokerName, ReadQueueNums: 1, WriteQueueNums: 1, Perm: b.cfg.BrokerPermission},
		{TopicName: b.cfg.BrokerClusterName + ReplyTopicSuffix, ReadQueueNums: 1, WriteQueueNums: 1, Perm: protocol.PermRead | protocol.PermWrite},
		{TopicName: TraceTopic, ReadQueueNums: 1, WriteQueueNums: 1, Perm: protocol.PermRead | protocol.PermWrite},
	}
	topics = append(topics, b.sched.topics()...)
	topics = append(topics, transactionTopics()...)
	if b.cfg.AutoCreateTopicEnable {
		n := b.cfg.DefaultTopicQueueNums
		topics = append(topics, protocol.TopicConfig{TopicName: DefaultTopic, ReadQueueNums: n, WriteQueueNums: n, Perm: protocol.PermRead | protocol.PermWrite | protocol.PermInherit})
	} else if _, err := b.topics.Delete(DefaultTopic); err != nil {
		return err
	}
	for _, tc := range topics {
		if _, _, err := b.topics.Ensure(tc); err != nil {
			return err
		}
	}
	return nil
}

// Start listens on the configured port and starts the background loops:
// NameServer registration, client housekeeping and offset persistence.
func (b *Broker) Start() error {
	if err := b.srv.Listen(net.JoinHostPort("0.0.0.0", strconv.Itoa(b.cfg.ListenPort))); err != nil {
		return fmt.Errorf("broker: listen on port %d: %w", b.cfg.ListenPort, err)
	}
	_, port, _ := net.SplitHostPort(b.srv.Addr().String())
	b.addr = net.JoinHostPort(b.cfg.advertisedIP(), port)
	b.storeHost = netip.MustParseAddrPort(b.addr)
	b.uniq = message.NewUniqIDGenerator(b.storeHost.Addr())
	b.startedAt = time.Now()
	if b.member != nil {
		if err := b.member.Start(b.addr); err != nil {
			b.srv.Close()
			return err
		}
	}
	b.registerAll() // as Java: clients can route to the broker once Start returns
	b.wg.Add(4)
	// Registration runs every registerNameServerPeriod and whenever the
	// topic table changes.
	go b.every(b.cfg.RegisterNameServerPeriod, b.registerWake, b.registerAll)
	go b.every(min(10*time.Second, b.cfg.ChannelExpiredTimeout/2), nil, b.expireClients)
	go b.every(b.cfg.FlushConsumerOffsetInterval, nil, b.persistOffsets)
	go b.every(b.cfg.TransactionCheckInterval, nil, b.checkTransactions)
	b.sched.start()
	if b.acl != nil {
		b.wg.Add(1)
		go b.every(aclReloadInterval, nil, b.reloadACL)
	}
	b.log.Info("broker started", "addr", b.addr, "cluster", b.cfg.BrokerClusterName, "namesrv", b.cfg.NamesrvAddr, "flush", b.cfg.FlushDiskType)
	return nil
}

// aclReloadInterval is how often the broker looks for a changed
// plain_acl.yml.
const aclReloadInterval = 5 * time.Second

// Addr is the advertised ip:port, once started.
func (b *Broker) Addr() string { return b.addr }

// Store gives tests and tools access to the message store.
func (b *Broker) Store() *store.Store { return b.store }

// Close shuts the broker down in order: stop accepting connections,
// unregister from the NameServers, stop the loops, close client
// connections (held pulls end), persist offsets, close the store. It is
// idempotent.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		var errs []error
		if b.member != nil {
			b.member.HandOver()
		}
		b.srv.CloseListener()
		if b.member != nil {
			errs = append(errs, b.member.Close())
		}
		b.unregisterAll()
		close(b.stop)
		b.wg.Wait()
		_ = b.srv.Close()
		errs = append(errs, b.offsets.Flush())
		errs = append(errs, b.store.Close())
		errs = append(errs, b.ns.Close())
		b.closeErr = errors.Join(errs...)
		b.log.Info("broker stopped", "err", b.closeErr)
	})
	return b.closeErr
}

// brokerHandler serves the broker's requests; sends run inline on the
// connection's reader goroutine (they only queue work for the store).
type brokerHandler struct{ b *Broker }

func (h brokerHandler) ServeRemoting(ctx context.Context, c *remoting.Conn, req *remoting.Command) *remoting.Command {
	return h.b.serve(ctx, c, req)
}

// Inline reports whether a code is served on the connection's reader
// goroutine.
func (h brokerHandler) Inline(code int32) bool {
	r := requestFor(code)
	return r != nil && r.inline
}

// connClosed forgets a closed client connection and tells the groups it
// left to rebalance.
func (b *Broker) connClosed(c *remoting.Conn) {
	b.tx.connClosed(c)
	for _, g := range b.clients.removeConn(c.ID()) {
		b.notifyGroup(g)
	}
}

// every runs fn every d, and whenever wake fires (nil: never), until the
// broker stops.
func (b *Broker) every(d time.Duration, wake <-chan struct{}, fn func()) {
	defer b.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		case <-wake:
		}
		fn()
	}
}

// expireClients drops clients whose heartbeats stopped, and expired locks.
func (b *Broker) expireClients() {
	for _, c := range b.clients.expired(time.Now().Add(-b.cfg.ChannelExpiredTimeout)) {
		b.log.Warn("client heartbeats stopped; closing its connection", "remote", c.RemoteAddr().String())
		_ = c.Close() // OnClose removes it and notifies its groups
	}
	b.locks.Expire(time.Now())
}

// persistOffsets writes the consumer offsets.
func (b *Broker) persistOffsets() {
	if err := b.offsets.Flush(); err != nil {
		b.log.Error("persisting consumer offsets failed", "err", err)
	}
}

// bornHost converts a connection's peer address.
func bornHost(c *remoting.Conn) netip.AddrPort {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
