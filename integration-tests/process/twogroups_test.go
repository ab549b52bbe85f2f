package process

import (
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/stretchr/testify/require"

	"qianlang.io/mq/admin"
)

// The production layout: two NameServers and two groups of three, every
// member its own process. kill -9 of one group's leader under continuous
// sync sends through the official producer: the producer's retries carry
// its sends to the other group at once, the killed group's queues come
// back once the producer refreshes its route, and every acknowledged
// message is consumed.
func TestTwoGroupsKill9LeaderOfficialProducerKeepsSending(t *testing.T) {
	ns := startNamesrvs(t, 2)
	ga := startGroupOn(t, ns, "broker-a")
	gb := startGroupOn(t, ns, "broker-b")
	a, err := admin.New(ns[0])
	require.NoError(t, err)
	defer a.Close()
	lead := ga.createTopics(t, a, 4, "TwoGroupsCrash")
	gb.createTopics(t, a, 4, "TwoGroupsCrash")

	// Four retries: the Go client's round robin skips one queue per try and
	// does not skip the broker that failed, so a send can meet all four of
	// the dead group's queues before one of the other's.
	p, err := rocketmq.NewProducer(producer.WithNameServer(ns), producer.WithGroupName("twogroups_pg"), producer.WithRetry(4))
	require.NoError(t, err)
	require.NoError(t, p.Start())
	defer p.Shutdown()

	l := startLoad(p, "TwoGroupsCrash", 4)
	require.Eventually(t, func() bool { return l.brokerCount("broker-a") > 500 && l.brokerCount("broker-b") > 500 },
		30*time.Second, 20*time.Millisecond, "the producer does not reach both groups")

	killAt := time.Now()
	failedBefore := l.failed.Load()
	bBefore := l.brokerCount("broker-b")
	ga.members[lead].kill9()
	l.mark()
	newLead := ga.leader(t, a, "TwoGroupsCrash", ga.addrs[lead])
	t.Logf("group a: leader n%d killed; n%d routed as its leader %v later", lead, newLead, time.Since(killAt))

	// Group b takes the sends while group a elects and while the producer
	// still routes to a's dead address.
	require.Eventually(t, func() bool { return l.brokerCount("broker-b") > bBefore+500 }, 10*time.Second, 20*time.Millisecond,
		"group b stopped taking sends")
	window := time.Now()
	// Acknowledgements the dead leader sent before it died have arrived
	// by now; any later one for group a comes from its new leader.
	aBefore := l.brokerCount("broker-a")
	t.Logf("after the kill: first acknowledged send %v later; longest pause between acknowledgements %v (first %v)",
		l.resumedAfter(killAt), l.longestPause(killAt, window), window.Sub(killAt))

	// The producer routes to a's new leader after its next route poll
	// (every 30 s).
	require.Eventually(t, func() bool { return l.brokerCount("broker-a") > aBefore }, 60*time.Second, 50*time.Millisecond,
		"the official producer never sent to group a's new leader")
	t.Logf("group a acknowledged the producer's sends again %v after the kill", time.Since(killAt))
	ga.members[lead].restart()
	all := l.finish()
	t.Logf("%d acknowledged; %d sends failed after the producer's retries (%d before the kill)",
		len(all), l.failed.Load()-failedBefore, failedBefore)

	rc, pc := consumeFromFirst(t, ns, "TwoGroupsCrash", "twogroups_cg")
	require.Eventually(t, func() bool { return len(rc.missing(all)) == 0 }, 90*time.Second, 200*time.Millisecond,
		"acknowledged messages not consumed: %d, e.g. %v", len(rc.missing(all)), head(rc.missing(all), 5))
	_ = pc.Shutdown()
	ga.checkStores(t)
	gb.checkStores(t)
}
