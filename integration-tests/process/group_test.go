package process

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/stretchr/testify/require"

	"qianlang.io/mq/admin"
	"qianlang.io/mq/broker"
	"qianlang.io/mq/protocol"
	"qianlang.io/mq/replica"
	"qianlang.io/mq/store"
)

// groupCluster is a three-member Raft broker group, every member a
// process of its own, and the NameServers it registers with.
type groupCluster struct {
	nsAddr  string   // the first NameServer
	name    string   // brokerName and dLegerGroup
	addrs   []string // client addresses of the members
	confs   []string
	members []*proc
}

func startGroup(t *testing.T, extra ...string) *groupCluster {
	t.Helper()
	return startGroupOn(t, startNamesrvs(t, 1), "broker-a", extra...)
}

// startNamesrvs starts n NameServers and returns their addresses.
func startNamesrvs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for k := range n {
		port := freePort(t)
		start(t, fmt.Sprintf("mqnamesrv %d", k), "-c", writeConf(t, fmt.Sprintf("namesrv%d.conf", k), fmt.Sprintf("listenPort=%d", port)))
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	for _, a := range addrs {
		waitListening(t, a)
	}
	return addrs
}

// startGroupOn starts a three-member group named name that registers with
// the NameServers at nsAddrs.
func startGroupOn(t *testing.T, nsAddrs []string, name string, extra ...string) *groupCluster {
	t.Helper()
	g := &groupCluster{nsAddr: nsAddrs[0], name: name}
	peers := fmt.Sprintf("n0-127.0.0.1:%d;n1-127.0.0.1:%d;n2-127.0.0.1:%d", freePort(t), freePort(t), freePort(t))
	root := t.TempDir()
	if d := os.Getenv("QIANLANG_TEST_KEEP"); d != "" { // keep the stores there, to look at after a failure
		root = filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_"))
	}
	for k := range 3 {
		port := freePort(t)
		g.addrs = append(g.addrs, fmt.Sprintf("127.0.0.1:%d", port))
		conf := writeConf(t, fmt.Sprintf("%s-n%d.conf", name, k), append([]string{
			"brokerClusterName=ProcCluster", "brokerName=" + name,
			fmt.Sprintf("listenPort=%d", port), "brokerIP1=127.0.0.1",
			"namesrvAddr=" + strings.Join(nsAddrs, ";"), "storePathRootDir=" + filepath.Join(root, name, fmt.Sprintf("n%d", k)),
			"mappedFileSizeCommitLog=67108864", "maxHashSlotNum=100000", "maxIndexNum=400000",
			"enableDLegerCommitLog=true", "dLegerGroup=" + name, "dLegerPeers=" + peers, fmt.Sprintf("dLegerSelfId=n%d", k),
			"dLegerShutdownDrainMs=0",
		}, extra...)...)
		g.confs = append(g.confs, conf)
		g.members = append(g.members, start(t, fmt.Sprintf("mqbroker %s n%d", name, k), "-c", conf))
	}
	for _, a := range g.addrs {
		waitListening(t, a)
	}
	return g
}

// leader returns the member index the NameServer routes as brokerId 0.
func (g *groupCluster) leader(t *testing.T, a *admin.Client, topic string, not string) int {
	t.Helper()
	var idx int
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		rd, err := a.Route(ctx, topic)
		if err != nil {
			return false
		}
		for _, bd := range rd.BrokerDatas {
			if bd.BrokerName != g.name {
				continue
			}
			for i, x := range g.addrs {
				if x == bd.MasterAddr() && x != not {
					idx = i
					return true
				}
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "no leader routed")
	return idx
}

// createTopics creates topics with queues queues on the group's leader,
// once the NameServer knows one, waits until they are routed, and
// returns the leader's member index.
func (g *groupCluster) createTopics(t *testing.T, a *admin.Client, queues int, topics ...string) int {
	t.Helper()
	lead := -1
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		ci, err := a.ClusterInfo(ctx)
		if err != nil {
			return false
		}
		bd, ok := ci.BrokerAddrTable[g.name]
		if !ok || bd.BrokerAddrs[0] == "" {
			return false
		}
		for i, x := range g.addrs {
			if x == bd.BrokerAddrs[0] {
				lead = i
			}
		}
		for _, topic := range topics {
			if a.CreateTopic(ctx, bd.BrokerAddrs[0], protocol.TopicConfig{TopicName: topic, ReadQueueNums: queues, WriteQueueNums: queues, Perm: 6}) != nil {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond)
	for _, topic := range topics {
		g.leader(t, a, topic, "")
	}
	return lead
}

// checkStores stops every member and compares their CommitLogs.
func (g *groupCluster) checkStores(t *testing.T) {
	t.Helper()
	for _, m := range g.members {
		m.stop()
	}
	var stores []*store.Store
	for _, conf := range g.confs {
		cfg, err := broker.LoadConfig(conf)
		require.NoError(t, err)
		st, err := store.Open(cfg.StoreOptions())
		require.NoError(t, err)
		defer st.Close()
		stores = append(stores, st)
	}
	upTo, err := replica.CheckLogs(stores...)
	require.NoError(t, err)
	t.Logf("replicas identical up to entry %d", upTo)
}

// kill -9 of the leader under continuous sync sends: every acknowledged
// message is consumed, and the group serves again after an election.
func TestGroupKill9LeaderLosesNoAcknowledgedMessage(t *testing.T) {
	for _, flush := range []string{"ASYNC_FLUSH", "SYNC_FLUSH"} {
		t.Run(flush, func(t *testing.T) {
			g := startGroup(t, "flushDiskType="+flush, "flushConsumerOffsetInterval=1000")
			a, err := admin.New(g.nsAddr)
			require.NoError(t, err)
			defer a.Close()
			lead := g.createTopics(t, a, 4, "GroupCrash")

			p, err := rocketmq.NewProducer(producer.WithNameServer([]string{g.nsAddr}), producer.WithGroupName("gcrash_pg"), producer.WithRetry(2))
			require.NoError(t, err)
			require.NoError(t, p.Start())
			defer p.Shutdown()

			l := startLoad(p, "GroupCrash", 4)
			require.Eventually(t, func() bool { return l.count() > 1000 }, 30*time.Second, 20*time.Millisecond)

			killAt := time.Now()
			g.members[lead].kill9()
			l.mark()
			before := l.count()
			// A route-aware client: the first send acknowledged by the new
			// leader as soon as the NameServer routes it.
			newLead := g.leader(t, a, "GroupCrash", g.addrs[lead])
			require.Eventually(t, func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				_, err := a.SendMessage(ctx, g.addrs[newLead], "GroupCrash", []byte("probe"))
				return err == nil
			}, 30*time.Second, 5*time.Millisecond)
			t.Logf("%s: leader n%d killed; n%d acknowledged the first send %v later", flush, lead, newLead, time.Since(killAt))

			// The official producer resumes once it refreshes its route
			// (every 30 s): the old address is dead.
			require.Eventually(t, func() bool { return l.count() > before+300 }, 60*time.Second, 50*time.Millisecond, "official producer never resumed")
			t.Logf("%s: the official producer's first acknowledged send came %v after the kill", flush, l.resumedAfter(killAt))
			g.members[lead].restart()
			require.Eventually(t, func() bool { return l.count() > before+600 }, 60*time.Second, 50*time.Millisecond)
			all := l.finish()
			t.Logf("%s: %d acknowledged, %d failed attempts", flush, len(all), l.failed.Load())

			rc, pc := consumeFromFirst(t, []string{g.nsAddr}, "GroupCrash", "gcrash_cg")
			require.Eventually(t, func() bool { return len(rc.missing(all)) == 0 }, 90*time.Second, 200*time.Millisecond,
				"acknowledged messages not consumed: %d, e.g. %v", len(rc.missing(all)), head(rc.missing(all), 5))
			_ = pc.Shutdown()
			g.checkStores(t)
		})
	}
}

// kill -9 of all three members at once under load, then all restarted: the
// group comes back with the same committed state on every member and
// every acknowledged message is consumed.
func TestGroupKill9AllMembersAtOnce(t *testing.T) {
	g := startGroup(t, "flushDiskType=SYNC_FLUSH")
	a, err := admin.New(g.nsAddr)
	require.NoError(t, err)
	defer a.Close()
	g.createTopics(t, a, 4, "GroupAll")

	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{g.nsAddr}), producer.WithGroupName("gall_pg"), producer.WithRetry(2))
	require.NoError(t, err)
	require.NoError(t, p.Start())
	defer p.Shutdown()
	l := startLoad(p, "GroupAll", 4)
	require.Eventually(t, func() bool { return l.count() > 1000 }, 30*time.Second, 20*time.Millisecond)
	for _, m := range g.members {
		m.kill9()
	}
	before := l.count()
	for _, m := range g.members {
		m.restart()
	}
	for _, addr := range g.addrs {
		waitListening(t, addr)
	}
	require.Eventually(t, func() bool { return l.count() > before+300 }, 60*time.Second, 50*time.Millisecond, "sends resume after the restart")
	all := l.finish()
	t.Logf("%d acknowledged (%d before the kill), %d failed attempts", len(all), before, l.failed.Load())

	rc, pc := consumeFromFirst(t, []string{g.nsAddr}, "GroupAll", "gall_cg")
	require.Eventually(t, func() bool { return len(rc.missing(all)) == 0 }, 90*time.Second, 200*time.Millisecond,
		"acknowledged messages not consumed: %d, e.g. %v", len(rc.missing(all)), head(rc.missing(all), 5))
	_ = pc.Shutdown()
	g.checkStores(t)
}
