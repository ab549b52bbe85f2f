package client

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/stretchr/testify/require"

	"qianlang.io/mq/mqtest"
	"qianlang.io/mq/replica"
)

// sender sends numbered messages with SendSync until stopped and records
// which were acknowledged.
type sender struct {
	mu     sync.Mutex
	acked  []string
	failed atomic.Int64
	stop   chan struct{}
	done   chan struct{}
}

func startSender(t *testing.T, p rocketmq.Producer, topic, prefix string) *sender {
	s := &sender{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for i := 0; ; i++ {
			select {
			case <-s.stop:
				return
			default:
			}
			body := fmt.Sprintf("%s-%d", prefix, i)
			r, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(body)))
			if err != nil || r.Status != primitive.SendOK {
				s.failed.Add(1)
				time.Sleep(20 * time.Millisecond)
				continue
			}
			s.mu.Lock()
			s.acked = append(s.acked, body)
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *sender) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

func (s *sender) finish() []string {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.acked...)
}

func (s *sender) waitMore(t *testing.T, n int) {
	t.Helper()
	start := s.count()
	require.Eventually(t, func() bool { return s.count() >= start+n }, 60*time.Second, 10*time.Millisecond,
		"sends stalled at %d acknowledged", s.count())
}

func TestGroupSendConsumeThroughTheLeader(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3})
	c.CreateTopic("GroupT", 4)
	p := startProducer(t, c)
	want := bodies("g", 300)
	sendAll(t, p, "GroupT", want, "")
	col := newCollector()
	startPushConsumer(t, c, unique("cg"), "GroupT", consumer.MessageSelector{}, col)
	col.waitAll(t, want, 30*time.Second)
	require.NotZero(t, c.CheckGroup(0))
}

// A follower that still gets sends (the client's route is up to 30 s old)
// forwards them to the leader.
func TestGroupFollowerForwardsSends(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3})
	c.CreateTopic("GroupFwd", 4)
	lead := c.Leader(0)
	var follower int
	for _, i := range c.Members(0) {
		if i != lead {
			follower = i
		}
	}
	a := c.Admin()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.Eventually(t, func() bool {
		_, err := a.SendMessage(ctx, c.Brokers[follower].Addr(), "GroupFwd", []byte("via-follower"))
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)
	col := newCollector()
	startPushConsumer(t, c, unique("cg"), "GroupFwd", consumer.MessageSelector{}, col)
	col.waitAll(t, []string{"via-follower"}, 30*time.Second)
}

// The leader is cut off from its followers while a producer sends without
// pause: the old leader stops acknowledging, a new leader is elected, and
// after healing every acknowledged message is consumed.
func TestGroupLeaderPartitionLosesNothingAcknowledged(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3})
	c.CreateTopic("GroupPart", 4)
	p := startProducer(t, c, producer.WithRetry(2))
	s := startSender(t, p, "GroupPart", "part")
	s.waitMore(t, 200)

	old := c.Leader(0)
	c.Isolate(old, true)
	start := time.Now()
	require.Eventually(t, func() bool {
		st, _ := c.Brokers[old].GroupStatus()
		return st.Role != replica.Leader
	}, 10*time.Second, 10*time.Millisecond, "the isolated leader steps down")
	newLead := c.Leader(0)
	for newLead == old {
		newLead = c.Leader(0)
	}
	t.Logf("new leader %d elected %v after the cut", newLead, time.Since(start))
	c.Isolate(old, false)
	s.waitMore(t, 200)
	acked := s.finish()
	t.Logf("acknowledged %d, failed attempts %d", len(acked), s.failed.Load())

	col := newCollector()
	startPushConsumer(t, c, unique("cg"), "GroupPart", consumer.MessageSelector{}, col)
	col.waitAll(t, acked, 60*time.Second)
	c.CheckGroup(0)
}

// A graceful stop of the leader hands leadership over first; a rolling
// restart of the whole group loses nothing acknowledged.
func TestGroupRollingRestart(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3})
	c.CreateTopic("GroupRoll", 4)
	p := startProducer(t, c, producer.WithRetry(2))
	s := startSender(t, p, "GroupRoll", "roll")
	s.waitMore(t, 100)
	for _, i := range c.Members(0) {
		c.StopBroker(i)
		c.StartBroker(i)
		c.Leader(0)
		s.waitMore(t, 100)
	}
	acked := s.finish()
	t.Logf("acknowledged %d, failed attempts %d", len(acked), s.failed.Load())
	col := newCollector()
	startPushConsumer(t, c, unique("cg"), "GroupRoll", consumer.MessageSelector{}, col)
	col.waitAll(t, acked, 60*time.Second)
	c.CheckGroup(0)
}
