package mqtest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"qianlang.io/mq/admin"
	"qianlang.io/mq/broker"
	"qianlang.io/mq/mqtest"
	"qianlang.io/mq/replica"
)

// A broker whose handling of role changes is held back while its group
// changes leader fifty times still ends registered with the NameServer
// under its real role: brokerId 0 for the leader, 1 and 2 for the
// followers.
//
// Broker 2 (n2, the preferred leader) is cut off while brokers 0 and 1
// pass leadership back and forth, then comes back and takes over. The
// final registration, 0 for broker 2 and 2 for broker 1, is one that
// brokers 0 and 1 never held while their handling was blocked, so a
// broker that acted on a stale role shows in the route.
func TestGroupRegistersItsFinalRoleAfterSlowStatusHandling(t *testing.T) {
	const transfers = 50
	c := mqtest.Start(t, mqtest.Options{Replicas: 3, Broker: func(_ int, cfg *broker.Config) {
		cfg.PreferredLeaderID = "n2"
	}})
	adm := c.Admin()
	c.Isolate(2, true)
	lead := settledLeader(t, c, 0, 1)
	other := 1 - lead
	require.Eventually(t, func() bool {
		addrs := registered(adm)
		return addrs[0] == c.Brokers[lead].Addr() && addrs[1] == c.Brokers[other].Addr()
	}, 15*time.Second, 20*time.Millisecond, "broker %d is not registered as the leader", lead)

	gate := make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	for _, i := range c.Members(0) {
		c.Brokers[i].SetStatusHook(func(replica.Status) { <-gate })
	}
	t.Cleanup(release) // before the brokers close: closing waits for the hook

	for range transfers {
		l := settledLeader(t, c, 0, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.Brokers[l].TransferLeadership(ctx)
		cancel()
		require.NoError(t, err)
	}
	c.Isolate(2, false)
	require.Eventually(t, func() bool { return settled(c, c.Members(0)) == 2 }, 15*time.Second, 10*time.Millisecond,
		"broker 2, the preferred member, does not take over")
	release()

	want := map[int64]string{0: c.Brokers[2].Addr(), 1: c.Brokers[0].Addr(), 2: c.Brokers[1].Addr()}
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		assert.Equal(ct, want, registered(adm), "brokerId → address at the NameServer")
	}, 15*time.Second, 20*time.Millisecond, "the NameServer does not hold the final roles")
}

// settledLeader waits until one of members leads group 0, has settled,
// and the other members follow it; it returns that broker's index.
func settledLeader(t *testing.T, c *mqtest.Cluster, members ...int) int {
	t.Helper()
	lead := -1
	require.Eventually(t, func() bool {
		lead = settled(c, members)
		return lead >= 0
	}, 15*time.Second, 10*time.Millisecond, "none of brokers %v settles as the leader", members)
	return lead
}

// settled is the index of the member that leads and has settled, when
// every one of members follows it; otherwise -1.
func settled(c *mqtest.Cluster, members []int) int {
	lead := -1
	var ls replica.Status
	for _, i := range members {
		if s, _ := c.Brokers[i].GroupStatus(); s.Role == replica.Leader && s.Settled {
			lead, ls = i, s
		}
	}
	if lead < 0 {
		return -1
	}
	for _, i := range members {
		if s, _ := c.Brokers[i].GroupStatus(); s.Term != ls.Term || s.Leader != ls.ID {
			return -1
		}
	}
	return lead
}

// registered is the NameServer's brokerId → address table of broker-a.
func registered(adm *admin.Client) map[int64]string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ci, err := adm.ClusterInfo(ctx)
	if err != nil {
		return nil
	}
	return ci.BrokerAddrTable["broker-a"].BrokerAddrs
}
