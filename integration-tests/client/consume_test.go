package client

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/stretchr/testify/require"

	"qianlang.io/mq/broker"
	"qianlang.io/mq/mqtest"
)

// TestClusteringSplitsQueuesAndRebalances runs two push consumers of one
// group: each gets part of the queues; when one stops, the other takes
// over every queue and nothing sent is lost.
func TestClusteringSplitsQueuesAndRebalances(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{})
	c.CreateTopic("Clustered", 8)
	p := startProducer(t, c)
	group := unique("cg")
	a, b := newCollector(), newCollector()
	startPushConsumer(t, c, group, "Clustered", consumer.MessageSelector{}, a, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	pcB := startPushConsumer(t, c, group, "Clustered", consumer.MessageSelector{}, b, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))

	// Both members share the queues once they have seen each other. Until
	// the first one has rebalanced it may still take messages from every
	// queue, so rounds of one message per queue go out until a whole
	// round splits four and four.
	deadline := time.Now().Add(30 * time.Second)
	for round := 0; ; round++ {
		a.forgetQueues()
		b.forgetQueues()
		want := bodies(fmt.Sprintf("first%d", round), 8)
		sendAll(t, p, "Clustered", want, "")
		require.Eventually(t, func() bool { return receivedAll(want, a, b) },
			10*time.Second, 20*time.Millisecond, "round %d was not consumed", round)
		qa, qb := a.queueSet(), b.queueSet()
		if splitApart(qa, qb) && len(qa) == 4 && len(qb) == 4 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the queues never split: a=%v b=%v", qa, qb)
		time.Sleep(100 * time.Millisecond)
	}

	require.NoError(t, pcB.Shutdown())
	second := bodies("second", 200)
	sendAll(t, p, "Clustered", second, "")
	a.waitAll(t, second, 40*time.Second)
	require.Len(t, a.queueSet(), 8, "the survivor holds every queue")
}

// splitApart reports whether no queue is in both sets.
func splitApart(x, y map[int]bool) bool {
	for q := range x {
		if y[q] {
			return false
		}
	}
	return true
}

// TestBroadcastingDeliversToEveryMember checks that each member of a
// broadcasting group receives every message.
func TestBroadcastingDeliversToEveryMember(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{})
	c.CreateTopic("Broadcast", 4)
	group := unique("bg")
	cols := []*collector{newCollector(), newCollector(), newCollector()}
	for _, col := range cols {
		startPushConsumer(t, c, group, "Broadcast", consumer.MessageSelector{}, col,
			consumer.WithConsumerModel(consumer.BroadCasting), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	}
	p := startProducer(t, c)
	want := bodies("bc", 120)
	sendAll(t, p, "Broadcast", want, "")
	for _, col := range cols {
		col.waitAll(t, want, 30*time.Second)
	}
}

// TestLitePullConsumer polls with the client's lite-pull consumer and
// commits through ACK.
func TestLitePullConsumer(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{})
	c.CreateTopic("LitePull", 4)
	p := startProducer(t, c)
	want := bodies("lp", 100)
	sendAll(t, p, "LitePull", want, "")

	pc, err := rocketmq.NewPullConsumer(consumer.WithNameServer(c.NamesrvAddrs()), consumer.WithGroupName(unique("lpg")),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset), consumer.WithPullBatchSize(16))
	require.NoError(t, err)
	require.NoError(t, pc.Subscribe("LitePull", consumer.MessageSelector{}))
	require.NoError(t, pc.Start())
	defer pc.Shutdown()
	col := newCollector()
	deadline := time.Now().Add(30 * time.Second)
	for col.distinct() < len(want) && time.Now().Before(deadline) {
		cr, err := pc.Poll(context.Background(), time.Second)
		if err != nil {
			continue
		}
		col.add(cr.GetMsgList()...)
		pc.ACK(context.Background(), cr, consumer.ConsumeSuccess)
	}
	col.waitAll(t, want, time.Second)
}

// TestPullFrom reads a queue at chosen offsets with the pull API.
func TestPullFrom(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{})
	c.CreateTopic("PullFrom", 1)
	p := startProducer(t, c)
	sendAll(t, p, "PullFrom", bodies("pf", 30), "")
	require.Eventually(t, func() bool { return c.Brokers[0].Store().MaxOffset("PullFrom", 0) == 30 }, 5*time.Second, 5*time.Millisecond)
	pc, err := rocketmq.NewPullConsumer(consumer.WithNameServer(c.NamesrvAddrs()), consumer.WithGroupName(unique("pfg")))
	require.NoError(t, err)
	require.NoError(t, pc.Subscribe("PullFrom", consumer.MessageSelector{}))
	require.NoError(t, pc.Start())
	defer pc.Shutdown()
	mq := &primitive.MessageQueue{Topic: "PullFrom", BrokerName: c.Config(0).BrokerName, QueueId: 0}
	r, err := pc.PullFrom(context.Background(), mq, 10, 5)
	require.NoError(t, err)
	require.Equal(t, primitive.PullFound, r.Status)
	require.Len(t, r.GetMessageExts(), 5)
	require.Equal(t, "pf-10", string(r.GetMessageExts()[0].Body))
	require.Equal(t, int64(15), r.NextBeginOffset)
	require.Equal(t, int64(30), r.MaxOffset)
	r, err = pc.PullFrom(context.Background(), mq, 25, 10)
	require.NoError(t, err)
	require.Equal(t, primitive.PullFound, r.Status)
	require.Len(t, r.GetMessageExts(), 5, "stops at the end of the queue")
}

// TestTagFilter subscribes with "TagA || TagB" and receives exactly those
// tags, including a non-ASCII tag whose hash differs between Go and Java.
func TestTagFilter(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{})
	c.CreateTopic("Tagged", 2)
	p := startProducer(t, c)
	var want []string
	for i := range 90 {
		tag := []string{"TagA", "TagB", "TagC"}[i%3]
		if i%10 == 9 {
			tag = "标签"
		}
		b := fmt.Sprintf("%s-%d", tag, i)
		sendAll(t, p, "Tagged", []string{b}, tag)
		if tag == "TagA" || tag == "TagB" {
			want = append(want, b)
		}
	}
	col := newCollector()
	startPushConsumer(t, c, unique("tg"), "Tagged", consumer.MessageSelector{Type: consumer.TAG, Expression: "TagA || TagB"}, col,
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	col.waitAll(t, want, 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, len(want), col.distinct(), "only TagA and TagB arrive")

	cn := newCollector()
	startPushConsumer(t, c, unique("tg2"), "Tagged", consumer.MessageSelector{Type: consumer.TAG, Expression: "标签"}, cn,
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	require.Eventually(t, func() bool { return cn.distinct() == 9 }, 30*time.Second, 20*time.Millisecond)
	for b := range cn.bodies {
		require.True(t, strings.HasPrefix(b, "标签"), b)
	}
}

// TestConsumeFromWhere starts new groups at the first offset, at the last
// offset and at a timestamp.
func TestConsumeFromWhere(t *testing.T) {
	// With accessMessageInMemoryMaxRatio=0 no message counts as hot, so a
	// new group is never started at 0 by the broker (Java's rule for young
	// topics) and the client's own policy decides.
	c := mqtest.Start(t, mqtest.Options{Broker: func(_ int, cfg *broker.Config) { cfg.AccessMessageInMemoryMax = 0 }})
	c.CreateTopic("FromWhere", 2)
	p := startProducer(t, c)
	old := bodies("old", 20)
	sendAll(t, p, "FromWhere", old, "")
	time.Sleep(1100 * time.Millisecond)
	cut := time.Now().UTC()
	time.Sleep(1100 * time.Millisecond)
	mid := bodies("mid", 20)
	sendAll(t, p, "FromWhere", mid, "")

	first, last, stamp := newCollector(), newCollector(), newCollector()
	startPushConsumer(t, c, unique("first"), "FromWhere", consumer.MessageSelector{}, first, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	startPushConsumer(t, c, unique("last"), "FromWhere", consumer.MessageSelector{}, last, consumer.WithConsumeFromWhere(consumer.ConsumeFromLastOffset))
	startPushConsumer(t, c, unique("stamp"), "FromWhere", consumer.MessageSelector{}, stamp,
		consumer.WithConsumeFromWhere(consumer.ConsumeFromTimestamp), consumer.WithConsumeTimestamp(cut.Format("20060102150405")))
	first.waitAll(t, append(append([]string{}, old...), mid...), 30*time.Second)
	waitPulling(t, p, "FromWhere", first, last, stamp)

	fresh := bodies("new", 20)
	sendAll(t, p, "FromWhere", fresh, "")
	for _, col := range []*collector{first, last, stamp} {
		col.waitAll(t, fresh, 30*time.Second)
	}
	stamp.waitAll(t, mid, 30*time.Second)
	require.Equal(t, fresh, nonProbes(last), "last skips history")
	require.Equal(t, append(append([]string{}, mid...), fresh...), nonProbes(stamp), "timestamp skips what came before it")
	require.Equal(t, append(append(append([]string{}, old...), mid...), fresh...), nonProbes(first))
}

// waitPulling sends probe pairs (one per queue of a two-queue topic) until
// every collector has both probes of a pair: then every consumer holds its
// queues and pulls.
func waitPulling(t *testing.T, p rocketmq.Producer, topic string, cols ...*collector) {
	t.Helper()
	for round := 0; round < 30; round++ {
		pair := bodies(fmt.Sprintf("probe%d", round), 2)
		sendAll(t, p, topic, pair, "")
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			all := true
			for _, col := range cols {
				all = all && col.has(pair[0]) && col.has(pair[1])
			}
			if all {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Fatal("consumers never started pulling")
}

// nonProbes lists the received bodies other than probes, in the order
// they were sent (bodies are "<prefix>-<n>").
func nonProbes(c *collector) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for k := range c.bodies {
		if !strings.HasPrefix(k, "probe") {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return sentOrder(out[i]) < sentOrder(out[j]) })
	return out
}

func sentOrder(b string) int {
	var n int
	prefix, num, _ := strings.Cut(b, "-")
	fmt.Sscan(num, &n)
	return map[string]int{"old": 0, "mid": 1000, "new": 2000}[prefix] + n
}
