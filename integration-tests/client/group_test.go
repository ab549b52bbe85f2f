package client

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/stretchr/testify/require"

	"qianlang.io/mq/broker"
	"qianlang.io/mq/mqtest"
	"qianlang.io/mq/replica"
	"qianlang.io/mq/vfs"
)

// sender sends numbered messages with SendSync until stopped and records
// which were acknowledged.
type sender struct {
	mu     sync.Mutex
	acked  []string
	failed atomic.Int64
	errs   []string // the first failures, for the log; guarded by mu
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
				s.mu.Lock()
				if len(s.errs) < 5 {
					s.errs = append(s.errs, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
				}
				s.mu.Unlock()
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

// finishLogged stops the sender and returns what was acknowledged.
func (s *sender) finishLogged(t *testing.T) []string {
	t.Helper()
	acked := s.finish()
	t.Logf("acknowledged %d, failed attempts %d", len(acked), s.failed.Load())
	return acked
}

// consumeAcked consumes topic with a new consumer group until every
// acknowledged body has arrived.
func consumeAcked(t *testing.T, c *mqtest.Cluster, topic string, acked []string) {
	t.Helper()
	col := newCollector()
	startPushConsumer(t, c, unique("cg"), topic, consumer.MessageSelector{}, col)
	col.waitAll(t, acked, 60*time.Second)
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
	consumeAcked(t, c, "GroupPart", s.finishLogged(t))
	c.CheckGroup(0)
}

// A graceful stop of the leader hands leadership over first and keeps
// forwarding until clients have moved (the Go client refreshes routes
// every 30 s): a rolling restart of the whole group fails no send and
// loses nothing acknowledged.
func TestGroupRollingRestart(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3, Broker: func(i int, cfg *broker.Config) {
		cfg.DLegerShutdownDrain = 31 * time.Second
	}})
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
	acked := s.finishLogged(t)
	require.Zero(t, s.failed.Load(), "sends failed after the client's retries during the rolling restart: %v", s.errs)
	consumeAcked(t, c, "GroupRoll", acked)
	c.CheckGroup(0)
}

// A follower down while 100,000 messages are written comes back, catches
// up by itself, and its CommitLog is byte-identical to the others'.
func TestGroupFollowerCatchesUpAfter100k(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	c := mqtest.Start(t, mqtest.Options{Replicas: 3})
	c.CreateTopic("GroupCatch", 4)
	lead := c.Leader(0)
	down := c.Members(0)[0]
	if down == lead {
		down = c.Members(0)[1]
	}
	c.StopBroker(down)
	p := startProducer(t, c)
	const batch = 100
	for i := 0; i < n; i += batch {
		msgs := make([]*primitive.Message, batch)
		for k := range msgs {
			msgs[k] = primitive.NewMessage("GroupCatch", []byte(fmt.Sprintf("catch-%06d", i+k)))
		}
		_, err := p.SendSync(context.Background(), msgs...)
		require.NoError(t, err)
	}
	start := time.Now()
	c.StartBroker(down)
	upTo := c.CheckGroup(0)
	t.Logf("the follower caught up %d entries in %v; replicas identical up to entry %d", n/batch, time.Since(start), upTo)
	var total int64
	for q := int32(0); q < 4; q++ {
		total += c.Brokers[down].Store().MaxOffset("GroupCatch", q)
	}
	require.EqualValues(t, n, total, "every message is in the follower's queues")
}

// A member whose disk starts failing leaves the group and never
// acknowledges what it did not store; the others elect and go on.
func TestGroupMemberDiskFailure(t *testing.T) {
	fss := map[int]*vfs.ErrorFS{}
	c := mqtest.Start(t, mqtest.Options{Replicas: 3, Broker: func(i int, cfg *broker.Config) {
		fss[i] = vfs.NewErrorFS(vfs.Default)
		cfg.FS = fss[i]
	}})
	c.CreateTopic("GroupDisk", 4)
	p := startProducer(t, c, producer.WithRetry(2))
	s := startSender(t, p, "GroupDisk", "disk")
	s.waitMore(t, 200)

	bad := c.Leader(0)
	fss[bad].Inject(vfs.OpWrite, func(path string) bool { return strings.Contains(path, "commitlog") }, syscall.EIO)
	require.Eventually(t, func() bool {
		st, _ := c.Brokers[bad].GroupStatus()
		return st.Role == replica.Stopped
	}, 15*time.Second, 10*time.Millisecond, "the member with the failing disk stops")
	newLead := c.Leader(0)
	require.NotEqual(t, bad, newLead)
	s.waitMore(t, 200)
	consumeAcked(t, c, "GroupDisk", s.finishLogged(t))
	fss[bad].Clear()
}

// Two NameServers and two groups: while one group elects, producers keep
// sending to the other.
func TestTwoGroupsOneElecting(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Namesrvs: 2, Brokers: 2, Replicas: 3})
	c.CreateTopic("TwoGroups", 4)
	p := startProducer(t, c, producer.WithRetry(4))
	byBroker := map[string]*atomic.Int64{"broker-a": {}, "broker-b": {}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := p.SendSync(context.Background(), primitive.NewMessage("TwoGroups", []byte(fmt.Sprint("two-", w, "-", i))))
				if err == nil && r.Status == primitive.SendOK {
					byBroker[r.MessageQueue.BrokerName].Add(1)
				}
			}
		})
	}
	require.Eventually(t, func() bool { return byBroker["broker-a"].Load() > 50 && byBroker["broker-b"].Load() > 50 }, 30*time.Second, 10*time.Millisecond)

	// Group a loses its leader's network and elects again; group b goes
	// on taking sends all the while.
	old := c.Leader(0)
	c.Isolate(old, true)
	cut := time.Now()
	bBefore := byBroker["broker-b"].Load()
	for c.Leader(0) == old {
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Since(cut); d < 2*time.Second {
		time.Sleep(2*time.Second - d)
	}
	bDuring := byBroker["broker-b"].Load() - bBefore
	t.Logf("group a elected a new leader %v after the cut; group b acknowledged %d sends meanwhile", time.Since(cut), bDuring)
	require.Positive(t, bDuring, "the healthy group kept taking sends")
	c.Isolate(old, false)
	close(stop)
	wg.Wait()
	c.CheckGroup(0)
	c.CheckGroup(1)
}

// With slaveReadEnable a consumer far behind (here: any consumer, with the
// in-memory share set to 0) is sent to a follower, which serves its pulls.
func TestGroupSlaveRead(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3, Broker: func(i int, cfg *broker.Config) {
		cfg.SlaveReadEnable = true
		cfg.AccessMessageInMemoryMax = 0
	}})
	c.CreateTopic("GroupSlaveRead", 4)
	p := startProducer(t, c)
	want := bodies("sr", 300)
	sendAll(t, p, "GroupSlaveRead", want, "")
	c.CheckGroup(0)
	col := newCollector()
	startPushConsumer(t, c, unique("cg"), "GroupSlaveRead", consumer.MessageSelector{}, col,
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	col.waitAll(t, want, 30*time.Second)

	a := c.Admin()
	served := map[string]string{}
	for _, i := range c.Members(0) {
		st, _ := c.Brokers[i].GroupStatus()
		rt, err := a.BrokerRuntime(context.Background(), c.Brokers[i].Addr())
		require.NoError(t, err)
		served[st.Role.String()+"-"+c.Brokers[i].Addr()] = rt["msgGetTotalTodayNow"]
	}
	t.Logf("messages served per member: %v", served)
	followerServed := false
	for k, v := range served {
		if strings.HasPrefix(k, "FOLLOWER") && v != "0" {
			followerServed = true
		}
	}
	require.True(t, followerServed, "a follower served pulls: %v", served)
}

// preferredLeaderId places each group's leader on a chosen member, here
// n1 for broker-a and n2 for broker-b, and the route names it brokerId 0.
// A preferred member that was stopped takes over again once it is back and
// caught up, and no acknowledged message is lost on the way.
func TestGroupPreferredLeader(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Brokers: 2, Replicas: 3, Broker: func(i int, cfg *broker.Config) {
		cfg.PreferredLeaderID = []string{"n1", "n2"}[i/3]
		cfg.DLegerShutdownDrain = 2 * time.Second
	}})
	preferred := []int{1, 5} // broker indexes of broker-a/n1 and broker-b/n2
	leads := func(i int) func() bool {
		b := c.Brokers[i]
		return func() bool {
			s, ok := b.GroupStatus()
			return ok && s.Role == replica.Leader && s.Settled
		}
	}
	for _, i := range preferred {
		require.Eventually(t, leads(i), 20*time.Second, 20*time.Millisecond, "broker %d (preferred) does not lead", i)
	}
	c.CreateTopic("Preferred", 4)
	require.Eventually(t, func() bool {
		rd, err := c.Admin().Route(context.Background(), "Preferred")
		if err != nil || len(rd.BrokerDatas) != 2 {
			return false
		}
		for _, bd := range rd.BrokerDatas {
			want := c.Brokers[preferred[0]].Addr()
			if bd.BrokerName == "broker-b" {
				want = c.Brokers[preferred[1]].Addr()
			}
			if bd.BrokerAddrs[0] != want {
				return false
			}
		}
		return true
	}, 20*time.Second, 50*time.Millisecond, "the route does not name the preferred members as brokerId 0")

	p := startProducer(t, c, producer.WithRetry(4))
	s := startSender(t, p, "Preferred", "pref")
	s.waitMore(t, 100)

	// broker-a's preferred member stops: it hands over and, while it
	// drains, does not take leadership back. Another leads meanwhile;
	// back, the preferred member catches up and leads again.
	stopping := c.Brokers[preferred[0]]
	stopped := make(chan struct{})
	go func() { defer close(stopped); c.StopBroker(preferred[0]) }()
	handedOver, reclaimed := false, false
	for done := false; !done; {
		select {
		case <-stopped:
			done = true
		case <-time.After(10 * time.Millisecond):
			st, _ := stopping.GroupStatus()
			handedOver = handedOver || st.Role != replica.Leader
			reclaimed = reclaimed || (handedOver && st.Role == replica.Leader)
		}
	}
	require.True(t, handedOver, "the stopping preferred member never handed over")
	require.False(t, reclaimed, "the draining preferred member took leadership back")
	s.waitMore(t, 100)
	c.StartBroker(preferred[0])
	require.Eventually(t, leads(preferred[0]), 30*time.Second, 20*time.Millisecond, "the restarted preferred member does not lead again")
	s.waitMore(t, 100)
	consumeAcked(t, c, "Preferred", s.finishLogged(t))
	c.CheckGroup(0)
	c.CheckGroup(1)
}
