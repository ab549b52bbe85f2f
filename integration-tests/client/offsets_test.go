package client

import (
	"context"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/stretchr/testify/require"

	"qianlang.io/mq/mqtest"
)

// consumed is the sum of a group's consumer offsets on topic as one member
// holds them.
func consumed(t *testing.T, c *mqtest.Cluster, member int, group, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := c.Admin().ConsumeStats(ctx, c.Brokers[member].Addr(), group, topic)
	if err != nil {
		return -1
	}
	var sum int64
	for _, q := range st.Queues {
		sum += q.ConsumerOffset
	}
	return sum
}

// A group's leader replicates consumer offsets as the changes since it last
// did: commits reach every member, a deleted group's offsets leave every
// member, and a new leader serves the offsets the old one held.
func TestGroupReplicatesConsumerOffsetChanges(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3})
	const topic = "GroupOffsets"
	c.CreateTopic(topic, 4)
	p := startProducer(t, c)
	want := bodies("off", 200)
	sendAll(t, p, topic, want, "")

	keep, drop := unique("cgkeep"), unique("cgdrop")
	col := newCollector()
	startPushConsumer(t, c, keep, topic, consumer.MessageSelector{}, col, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	col.waitAll(t, want, 30*time.Second)
	dcol := newCollector()
	dc, err := rocketmq.NewPushConsumer(consumer.WithNameServer(c.NamesrvAddrs()), consumer.WithGroupName(drop),
		consumer.WithInstance(unique("c")), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	require.NoError(t, err)
	require.NoError(t, dc.Subscribe(topic, consumer.MessageSelector{}, dcol.handler))
	require.NoError(t, dc.Start())
	dcol.waitAll(t, want, 30*time.Second)

	members := c.Members(0)
	for _, g := range []string{keep, drop} {
		require.Eventually(t, func() bool {
			for _, i := range members {
				if consumed(t, c, i, g, topic) != int64(len(want)) {
					return false
				}
			}
			return true
		}, 30*time.Second, 100*time.Millisecond, "group %s's offsets did not reach every member", g)
	}

	require.NoError(t, dc.Shutdown())
	lead := c.Leader(0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Admin().DeleteSubGroup(ctx, c.Brokers[lead].Addr(), drop, true))
	require.Eventually(t, func() bool {
		for _, i := range members {
			if consumed(t, c, i, drop, topic) != 0 {
				return false
			}
		}
		return true
	}, 10*time.Second, 100*time.Millisecond, "the deleted group's offsets stayed on a member")

	c.StopBroker(lead)
	next := c.Leader(0)
	require.NotEqual(t, lead, next)
	require.Equal(t, int64(len(want)), consumed(t, c, next, keep, topic), "the new leader lost the group's offsets")
	require.Zero(t, consumed(t, c, next, drop, topic), "the new leader brought the deleted group's offsets back")
}
