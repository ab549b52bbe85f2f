package client

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/stretchr/testify/require"

	"qianlang.io/mq/broker"
	"qianlang.io/mq/mqtest"
)

// arrivals records when each body was first received.
type arrivals struct {
	mu   sync.Mutex
	at   map[string]time.Time
	msgs map[string]*primitive.MessageExt
}

func newArrivals() *arrivals {
	return &arrivals{at: map[string]time.Time{}, msgs: map[string]*primitive.MessageExt{}}
}

func (a *arrivals) handler(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range msgs {
		if _, ok := a.at[string(m.Body)]; !ok {
			a.at[string(m.Body)], a.msgs[string(m.Body)] = now, m
		}
	}
	return consumer.ConsumeSuccess, nil
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.at)
}

func (a *arrivals) get(body string) (time.Time, *primitive.MessageExt, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.at[body]
	return at, a.msgs[body], ok
}

// lateness reports the median and the maximum of how late each message
// arrived after due[body]; it fails the test for a message that arrived
// early.
func (a *arrivals) lateness(t *testing.T, due map[string]time.Time) (p50, maxLate time.Duration) {
	t.Helper()
	var late []time.Duration
	for body, d := range due {
		at, _, ok := a.get(body)
		require.True(t, ok, "%s never arrived", body)
		// The consumer's clock is the broker's here; allow for the
		// millisecond rounding of store times.
		require.False(t, at.Before(d.Add(-2*time.Millisecond)), "%s arrived %v before it was due", body, d.Sub(at))
		late = append(late, at.Sub(d))
	}
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	return late[len(late)/2], late[len(late)-1]
}

func TestDelayLevelsDeliverNoEarlierThanDue(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3})
	c.CreateTopic("DelayT", 4)
	a := newArrivals()
	startPushConsumerFunc(t, c, unique("cg"), "DelayT", a.handler)
	p := startProducer(t, c)
	due := map[string]time.Time{}
	ids := map[string]string{}
	for i := range 60 {
		level := 1 + i%2 // 1 s and 5 s
		body := fmt.Sprintf("delay-%d-L%d", i, level)
		m := primitive.NewMessage("DelayT", []byte(body))
		m.WithDelayTimeLevel(level)
		sent := time.Now()
		r, err := p.SendSync(context.Background(), m)
		require.NoError(t, err)
		require.Equal(t, primitive.SendOK, r.Status)
		due[body] = sent.Add(map[int]time.Duration{1: time.Second, 2: 5 * time.Second}[level])
		ids[body] = r.MsgID
	}
	require.Eventually(t, func() bool { return a.count() == len(due) }, 30*time.Second, 20*time.Millisecond, "received %d of %d", a.count(), len(due))
	p50, worst := a.lateness(t, due)
	t.Logf("lateness after due: median %v, max %v", p50, worst)
	for body, id := range ids {
		_, m, _ := a.get(body)
		require.Equal(t, id, m.MsgId, "the consumer sees the producer's message id")
		require.Equal(t, "DelayT", m.Topic)
		require.Empty(t, m.GetProperty(primitive.PropertyDelayTimeLevel), "DELAY is removed at delivery")
	}
	c.CheckGroup(0)
}

func TestTimerMessagesDeliverAtTheirTime(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3})
	c.CreateTopic("TimerT", 2)
	a := newArrivals()
	startPushConsumerFunc(t, c, unique("cg"), "TimerT", a.handler)
	p := startProducer(t, c)
	due := map[string]time.Time{}
	now := time.Now()
	for i := range 40 {
		body := fmt.Sprintf("timer-%d", i)
		m := primitive.NewMessage("TimerT", []byte(body))
		switch i % 3 {
		case 0: // absolute time
			at := now.Add(time.Duration(300+97*i) * time.Millisecond)
			m.WithProperty("TIMER_DELIVER_MS", strconv.FormatInt(at.UnixMilli(), 10))
			due[body] = at.Truncate(time.Millisecond)
		case 1:
			m.WithProperty("TIMER_DELAY_MS", strconv.Itoa(1234+31*i))
			due[body] = time.Now().Add(time.Duration(1234+31*i) * time.Millisecond)
		default:
			m.WithProperty("TIMER_DELAY_SEC", "2")
			due[body] = time.Now().Add(2 * time.Second)
		}
		_, err := p.SendSync(context.Background(), m)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return a.count() == len(due) }, 30*time.Second, 20*time.Millisecond, "received %d of %d", a.count(), len(due))
	p50, worst := a.lateness(t, due)
	t.Logf("timer lateness: median %v, max %v", p50, worst)

	m := primitive.NewMessage("TimerT", []byte("too-far"))
	m.WithProperty("TIMER_DELAY_SEC", strconv.Itoa(4*24*3600))
	_, err := p.SendSync(context.Background(), m)
	require.ErrorContains(t, err, "timerMaxDelaySec", "a delivery time beyond the maximum is refused with a clear error")
}

// Delivery progress is replicated: after the leader stops mid-way, the
// new leader delivers every parked message that was acknowledged.
func TestDelayedMessagesSurviveLeaderChange(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3})
	c.CreateTopic("DelayFail", 4)
	a := newArrivals()
	startPushConsumerFunc(t, c, unique("cg"), "DelayFail", a.handler)
	p := startProducer(t, c)
	due := map[string]time.Time{}
	send := func(prefix string, n int) {
		for i := range n {
			body := fmt.Sprintf("%s-%d", prefix, i)
			m := primitive.NewMessage("DelayFail", []byte(body))
			m.WithDelayTimeLevel(2) // 5 s
			// The client's route may still name the stopped leader for
			// up to 30 s: it retries on the others.
			var sent time.Time
			require.Eventually(t, func() bool {
				sent = time.Now()
				_, err := p.SendSync(context.Background(), m)
				return err == nil
			}, 40*time.Second, 100*time.Millisecond)
			due[body] = sent.Add(5 * time.Second)
		}
	}
	send("before", 100)
	time.Sleep(time.Second)
	old := c.Leader(0)
	c.StopBroker(old)
	send("during", 50)
	require.Eventually(t, func() bool { return a.count() == len(due) }, 60*time.Second, 50*time.Millisecond, "received %d of %d", a.count(), len(due))
	p50, worst := a.lateness(t, due)
	t.Logf("lateness across the leader change: median %v, max %v", p50, worst)
	c.StartBroker(old)
	c.CheckGroup(0)
}

// A consumer that fails gets the message again after the retry delay,
// with its reconsume count; past maxReconsumeTimes it lands in the
// group's dead-letter queue.
func TestRetryThenDeadLetter(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3, Broker: func(_ int, cfg *broker.Config) {
		cfg.MessageDelayLevel = "1s 1s 1s 1s 1s 2s"
	}})
	c.CreateTopic("RetryT", 2)
	group := unique("cg")
	var mu sync.Mutex
	seen := map[string][]time.Time{}
	times := map[string][]int32{}
	startPushConsumerFunc(t, c, group, "RetryT", func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			b := string(m.Body)
			seen[b] = append(seen[b], time.Now())
			times[b] = append(times[b], m.ReconsumeTimes)
			require.Equal(t, "RetryT", m.Topic, "the client restores the real topic")
		}
		for _, m := range msgs {
			if string(m.Body) == "ok-after-2" && m.ReconsumeTimes >= 2 {
				return consumer.ConsumeSuccess, nil
			}
		}
		return consumer.ConsumeRetryLater, nil
	}, consumer.WithMaxReconsumeTimes(3), consumer.WithConsumeMessageBatchMaxSize(1))
	p := startProducer(t, c)
	sendAll(t, p, "RetryT", []string{"ok-after-2", "always-fails"}, "")

	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(times["always-fails"]) >= 4
	}, 60*time.Second, 50*time.Millisecond)
	c.WaitRoute("%DLQ%"+group, 1)
	dlq := newArrivals()
	startPushConsumerFunc(t, c, unique("dlqreader"), "%DLQ%"+group, dlq.handler)
	require.Eventually(t, func() bool { _, _, ok := dlq.get("always-fails"); return ok }, 60*time.Second, 50*time.Millisecond)

	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []int32{0, 1, 2}, times["ok-after-2"])
	require.Equal(t, []int32{0, 1, 2, 3}, times["always-fails"], "delivered once and retried maxReconsumeTimes times")
	for b, ts := range seen {
		for i := 1; i < len(ts); i++ {
			require.GreaterOrEqual(t, ts[i].Sub(ts[i-1]), 900*time.Millisecond, "%s retried before its delay", b)
		}
	}
	_, m, _ := dlq.get("always-fails")
	require.Equal(t, "RetryT", m.GetProperty("RETRY_TOPIC"))
	require.NotEmpty(t, m.GetProperty("ORIGIN_MESSAGE_ID"))
	_, dead, _ := dlq.get("ok-after-2")
	require.Nil(t, dead, "a message that succeeded is not a dead letter")
}
