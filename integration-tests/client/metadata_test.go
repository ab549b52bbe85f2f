package client

import (
	"context"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/stretchr/testify/require"

	"qianlang.io/mq/mqtest"
	"qianlang.io/mq/protocol"
	"qianlang.io/mq/replica"
)

// hasTopic reports whether broker i holds topic in its topic table.
func hasTopic(c *mqtest.Cluster, i int, topic string) bool {
	if c.Brokers[i] == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.Admin().TopicStats(ctx, c.Brokers[i].Addr(), topic)
	return err == nil
}

// The old leader answers an admin's new topic once a follower holds its
// entry, and dies before that follower learns the entry committed. The
// follower takes over and applies the entry only as leader, in its own
// term: it must install the topic, not skip it as one of its own, and
// every member and the NameServers must have it. A table change that
// reaches it before it settles waits, so the entry cannot replace it.
// Then the whole group restarts at once: each member delivers the entries
// after its last checkpoint again, and none may go back to an older topic
// table.
func TestGroupNewLeaderKeepsTheAdminChangeItsPredecessorAnswered(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3})
	c.CreateTopic("MetaBefore", 4)
	members := c.Members(0)
	old := c.Leader(0)
	st, _ := c.Brokers[old].GroupStatus()
	oldID, oldTerm := st.ID, st.Term
	var others []int
	for _, i := range members {
		if i != old {
			others = append(others, i)
		}
	}
	f1, f2 := others[0], others[1]
	id1, _ := c.Brokers[f1].GroupStatus()

	// f2 hears nothing; f1 gets every entry but no message saying that
	// anything from e on committed.
	c.Isolate(f2, true)
	e := st.LastIndex + 1
	c.DropReplication(old, func(m replica.Message) bool {
		return m.From == oldID && m.To == id1.ID && m.Commit >= e
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const topic = "MetaAnsweredByTheOldLeader"
	require.NoError(t, c.Admin().CreateTopic(ctx, c.Brokers[old].Addr(),
		protocol.TopicConfig{TopicName: topic, ReadQueueNums: 4, WriteQueueNums: 4, Perm: protocol.PermRead | protocol.PermWrite}),
		"the old leader answers once f1 holds the entry")
	s1, _ := c.Brokers[f1].GroupStatus()
	require.Less(t, s1.Commit, e, "f1 learned that the topic's entry committed")
	require.False(t, hasTopic(c, f1, topic), "f1 applied an entry it did not know committed")

	// The old leader is gone; f1, the only member with the entry, wins
	// f2's vote. f2's acknowledgements do not reach it yet, so it commits
	// nothing and stays unsettled: the entry is still to apply.
	c.Isolate(old, true)
	c.DropReplication(f2, func(m replica.Message) bool { return m.Type == replica.MsgAppResp && m.To == id1.ID })
	require.Eventually(t, func() bool {
		s, _ := c.Brokers[f1].GroupStatus()
		return s.Role == replica.Leader && s.Term > oldTerm
	}, 15*time.Second, 10*time.Millisecond, "f1 did not win the election")

	// A table change reaching the unsettled leader waits: made now, it
	// would be replaced by the older entry still to apply.
	const during = "MetaCreatedDuringTakeover"
	created := make(chan error, 1)
	go func() {
		created <- c.Admin().CreateTopic(ctx, c.Brokers[f1].Addr(),
			protocol.TopicConfig{TopicName: during, ReadQueueNums: 4, WriteQueueNums: 4, Perm: protocol.PermRead | protocol.PermWrite})
	}()
	time.Sleep(300 * time.Millisecond)
	s1, _ = c.Brokers[f1].GroupStatus()
	require.False(t, s1.Settled, "f1 settled without f2's acknowledgements")
	require.False(t, hasTopic(c, f1, during), "the unsettled leader changed its tables")
	c.DropReplication(f2, nil)
	require.NoError(t, <-created, "the change waited for the leader to settle and then went through")
	require.Eventually(t, func() bool {
		s, _ := c.Brokers[f1].GroupStatus()
		return s.Role == replica.Leader && s.Settled
	}, 15*time.Second, 10*time.Millisecond, "f1 did not settle")
	for _, tp := range []string{topic, during} {
		for _, i := range []int{f1, f2} {
			require.Eventually(t, func() bool { return hasTopic(c, i, tp) }, 10*time.Second, 20*time.Millisecond,
				"member %d lost topic %s", i, tp)
		}
		c.WaitRoute(tp, 1)
	}

	// The old leader comes back as a follower and takes the tables.
	c.DropReplication(old, nil)
	require.Eventually(t, func() bool { return hasTopic(c, old, topic) }, 15*time.Second, 20*time.Millisecond,
		"the old leader did not get the topic back")

	// Every member restarts at once and comes back with every topic.
	for _, i := range members {
		c.StopBroker(i)
	}
	for _, i := range members {
		c.StartBroker(i)
	}
	c.Leader(0)
	for _, tp := range []string{"MetaBefore", topic} {
		for _, i := range members {
			require.Eventually(t, func() bool { return hasTopic(c, i, tp) }, 15*time.Second, 20*time.Millisecond,
				"member %d lost topic %s in the restart", i, tp)
		}
		c.WaitRoute(tp, 1)
	}
	p := startProducer(t, c)
	want := bodies("meta", 20)
	sendAll(t, p, topic, want, "")
	col := newCollector()
	startPushConsumer(t, c, unique("cg"), topic, consumer.MessageSelector{}, col, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	col.waitAll(t, want, 30*time.Second)
	c.CheckGroup(0)
}
