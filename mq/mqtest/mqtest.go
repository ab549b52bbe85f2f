// Package mqtest starts in-process queue clusters for tests: NameServers
// and brokers on ephemeral loopback ports with temporary store
// directories, with helpers to stop, restart and wait for routes.
package mqtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"qianlang.io/mq/admin"
	"qianlang.io/mq/broker"
	"qianlang.io/mq/namesrv"
	"qianlang.io/mq/protocol"
)

// Options shape a cluster.
type Options struct {
	// Namesrvs is the number of NameServers (1 when 0).
	Namesrvs int
	// Brokers is the number of broker groups (1 when 0).
	Brokers int
	// Replicas is the number of members of each group: 0 or 1 for a
	// single broker, 3 for a Raft group (enableDLegerCommitLog). Brokers
	// are numbered group by group: broker i is member i%Replicas of group
	// i/Replicas.
	Replicas int
	// Broker adjusts each broker's config (i is its index).
	Broker func(i int, c *broker.Config)
	// Namesrv adjusts each NameServer's options.
	Namesrv func(i int, o *namesrv.Options)
	// Logger receives every daemon's logs; discarded when nil unless
	// MQTEST_LOG=1.
	Logger *slog.Logger
}

// Cluster is a running test cluster.
type Cluster struct {
	t        testing.TB
	opts     Options
	log      *slog.Logger
	Namesrvs []*namesrv.Server
	Brokers  []*broker.Broker
	configs  []broker.Config
	nsAddrs  []string
}

// Start starts a cluster and stops it when the test ends.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Namesrvs <= 0 {
		opts.Namesrvs = 1
	}
	if opts.Brokers <= 0 {
		opts.Brokers = 1
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
		if os.Getenv("MQTEST_LOG") == "1" {
			log = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
	}
	root := t.TempDir() // before Close is registered: cleanups run last-in first-out
	var peers string
	c := &Cluster{t: t, opts: opts, log: log}
	t.Cleanup(c.Close)
	for i := range opts.Namesrvs {
		o := namesrv.DefaultOptions()
		o.ListenPort, o.BindAddress, o.Logger = 0, "127.0.0.1", log
		if opts.Namesrv != nil {
			opts.Namesrv(i, &o)
		}
		s, err := namesrv.New(o)
		if err != nil {
			t.Fatalf("mqtest: namesrv: %v", err)
		}
		if err := s.Start(); err != nil {
			t.Fatalf("mqtest: namesrv: %v", err)
		}
		c.Namesrvs = append(c.Namesrvs, s)
		c.nsAddrs = append(c.nsAddrs, s.Addr())
	}
	replicas := max(opts.Replicas, 1)
	for i := range opts.Brokers * replicas {
		group, member := i/replicas, i%replicas
		cfg := broker.DefaultConfig()
		cfg.BrokerName = fmt.Sprintf("broker-%c", 'a'+group)
		cfg.ListenPort = 0
		cfg.BrokerIP1 = "127.0.0.1"
		cfg.NamesrvAddr = c.NamesrvAddr()
		cfg.StorePathRootDir = filepath.Join(root, cfg.BrokerName)
		if replicas > 1 {
			if member == 0 {
				peers = freePeers(t, replicas)
			}
			cfg.StorePathRootDir = filepath.Join(root, fmt.Sprintf("%s-n%d", cfg.BrokerName, member))
			cfg.EnableDLegerCommitLog = true
			cfg.DLegerGroup = cfg.BrokerName
			cfg.DLegerPeers = peers
			cfg.DLegerSelfID = fmt.Sprintf("n%d", member)
			cfg.DLegerHeartbeatInterval = 50 * time.Millisecond
			cfg.DLegerElectionTimeout = 500 * time.Millisecond
			cfg.DLegerShutdownDrain = 0 // tests that need clients to move set it
		}
		cfg.MappedFileSizeCommitLog = 64 << 20
		cfg.MaxHashSlotNum = 50_000
		cfg.MaxIndexNum = 200_000
		cfg.TailCacheSize = 16 << 20
		cfg.Logger = log.With("node", filepath.Base(cfg.StorePathRootDir))
		if opts.Broker != nil {
			opts.Broker(i, &cfg)
		}
		c.configs = append(c.configs, cfg)
		c.Brokers = append(c.Brokers, nil)
		c.StartBroker(i)
	}
	return c
}

// NamesrvAddr is the ';'-joined NameServer list.
func (c *Cluster) NamesrvAddr() string { return strings.Join(c.nsAddrs, ";") }

// NamesrvAddrs lists the NameServer addresses.
func (c *Cluster) NamesrvAddrs() []string { return append([]string(nil), c.nsAddrs...) }

// Config returns broker i's config.
func (c *Cluster) Config(i int) broker.Config { return c.configs[i] }

// StartBroker (re)starts broker i with its config, keeping its store and,
// after the first start, its port.
func (c *Cluster) StartBroker(i int) *broker.Broker {
	c.t.Helper()
	b, err := broker.New(c.configs[i])
	if err != nil {
		c.t.Fatalf("mqtest: broker %d: %v", i, err)
	}
	if err := b.Start(); err != nil {
		c.t.Fatalf("mqtest: broker %d: %v", i, err)
	}
	if c.configs[i].ListenPort == 0 {
		var port int
		_, _ = fmt.Sscanf(b.Addr()[strings.LastIndexByte(b.Addr(), ':')+1:], "%d", &port)
		c.configs[i].ListenPort = port
	}
	c.Brokers[i] = b
	return b
}

// StopBroker shuts broker i down cleanly.
func (c *Cluster) StopBroker(i int) {
	if b := c.Brokers[i]; b != nil {
		if err := b.Close(); err != nil {
			c.t.Errorf("mqtest: stop broker %d: %v", i, err)
		}
		c.Brokers[i] = nil
	}
}

// StopNamesrv stops NameServer i.
func (c *Cluster) StopNamesrv(i int) {
	if s := c.Namesrvs[i]; s != nil {
		_ = s.Close()
		c.Namesrvs[i] = nil
	}
}

// Close stops everything; it runs at test end.
func (c *Cluster) Close() {
	for i := range c.Brokers {
		c.StopBroker(i)
	}
	for i := range c.Namesrvs {
		c.StopNamesrv(i)
	}
}

// Admin returns an admin client for the cluster, closed at test end.
func (c *Cluster) Admin() *admin.Client {
	a, err := admin.New(c.NamesrvAddr())
	if err != nil {
		c.t.Fatalf("mqtest: %v", err)
	}
	c.t.Cleanup(func() { _ = a.Close() })
	return a
}

// CreateTopic creates a topic with queues queues on every broker group
// (on the leader of a Raft group, which replicates it) and waits until
// every NameServer routes it.
func (c *Cluster) CreateTopic(topic string, queues int) {
	c.t.Helper()
	a := c.Admin()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for g := range c.opts.Brokers {
		i := c.Leader(g)
		// A follower forwards the request to its leader; the retry covers
		// a group between leaders.
		var err error
		for attempt := 0; attempt < 50; attempt++ {
			if err = a.CreateTopic(ctx, c.Brokers[i].Addr(), topicConfig(topic, queues)); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
			i = c.Leader(g)
		}
		if err != nil {
			c.t.Fatalf("mqtest: create topic %s: %v", topic, err)
		}
	}
	c.WaitRoute(topic, c.opts.Brokers)
}

// WaitRoute waits until every running NameServer routes topic to brokers
// broker groups.
func (c *Cluster) WaitRoute(topic string, brokers int) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range c.Namesrvs {
		if s == nil {
			continue
		}
		a, err := admin.New(s.Addr())
		if err != nil {
			c.t.Fatalf("mqtest: %v", err)
		}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			rd, err := a.Route(ctx, topic)
			cancel()
			if err == nil && len(rd.QueueDatas) >= brokers {
				break
			}
			if time.Now().After(deadline) {
				_ = a.Close()
				c.t.Fatalf("mqtest: topic %s not routed by %s to %d brokers: %v", topic, s.Addr(), brokers, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		_ = a.Close()
	}
}

func topicConfig(topic string, queues int) protocol.TopicConfig {
	return protocol.TopicConfig{TopicName: topic, ReadQueueNums: queues, WriteQueueNums: queues, Perm: protocol.PermRead | protocol.PermWrite, TopicFilterType: "SINGLE_TAG"}
}
