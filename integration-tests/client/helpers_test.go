package client

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/stretchr/testify/require"

	"qianlang.io/mq/mqtest"
)

// unique makes group names unique per run: broadcasting consumers keep
// offsets in local files keyed by group.
func unique(name string) string { return fmt.Sprintf("%s_%d", name, time.Now().UnixNano()) }

func startProducer(t *testing.T, c *mqtest.Cluster, opts ...producer.Option) rocketmq.Producer {
	t.Helper()
	opts = append([]producer.Option{
		producer.WithNameServer(c.NamesrvAddrs()),
		producer.WithGroupName(unique("pg")),
		producer.WithInstanceName(unique("p")),
	}, opts...)
	p, err := rocketmq.NewProducer(opts...)
	require.NoError(t, err)
	require.NoError(t, p.Start())
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// collector records what a consumer received.
type collector struct {
	mu     sync.Mutex
	bodies map[string]int
	queues map[int]int
	msgs   []*primitive.MessageExt
}

func newCollector() *collector {
	return &collector{bodies: map[string]int{}, queues: map[int]int{}}
}

func (c *collector) add(msgs ...*primitive.MessageExt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		c.bodies[string(m.Body)]++
		c.queues[m.Queue.QueueId]++
		c.msgs = append(c.msgs, m)
	}
}

func (c *collector) handler(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	c.add(msgs...)
	return consumer.ConsumeSuccess, nil
}

func (c *collector) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.bodies)
}

func (c *collector) has(body string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bodies[body] > 0
}

func (c *collector) queueSet() map[int]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[int]bool{}
	for q := range c.queues {
		out[q] = true
	}
	return out
}

// receivedAll reports whether every body in want reached one of cs.
func receivedAll(want []string, cs ...*collector) bool {
	for _, b := range want {
		got := false
		for _, c := range cs {
			got = got || c.has(b)
		}
		if !got {
			return false
		}
	}
	return true
}

// forgetQueues clears the record of which queues messages came from.
func (c *collector) forgetQueues() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.queues)
}

// waitAll waits until every body in want was received.
func (c *collector) waitAll(t *testing.T, want []string, timeout time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, b := range want {
			if !c.has(b) {
				return false
			}
		}
		return true
	}, timeout, 20*time.Millisecond, "received %d distinct of %d", c.distinct(), len(want))
}

type handlerFunc = func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error)

func startPushConsumer(t *testing.T, c *mqtest.Cluster, group, topic string, sel consumer.MessageSelector, col *collector, opts ...consumer.Option) rocketmq.PushConsumer {
	t.Helper()
	return startPushConsumerSel(t, c, group, topic, sel, col.handler, opts...)
}

func startPushConsumerFunc(t *testing.T, c *mqtest.Cluster, group, topic string, h handlerFunc, opts ...consumer.Option) rocketmq.PushConsumer {
	t.Helper()
	return startPushConsumerSel(t, c, group, topic, consumer.MessageSelector{}, h, opts...)
}

func startPushConsumerSel(t *testing.T, c *mqtest.Cluster, group, topic string, sel consumer.MessageSelector, h handlerFunc, opts ...consumer.Option) rocketmq.PushConsumer {
	t.Helper()
	opts = append([]consumer.Option{
		consumer.WithNameServer(c.NamesrvAddrs()),
		consumer.WithGroupName(group),
		consumer.WithInstance(unique("c")),
	}, opts...)
	pc, err := rocketmq.NewPushConsumer(opts...)
	require.NoError(t, err)
	require.NoError(t, pc.Subscribe(topic, sel, h))
	require.NoError(t, pc.Start())
	t.Cleanup(func() { _ = pc.Shutdown() })
	return pc
}

func bodies(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func sendAll(t *testing.T, p rocketmq.Producer, topic string, bs []string, tag string) {
	t.Helper()
	for _, b := range bs {
		m := primitive.NewMessage(topic, []byte(b))
		if tag != "" {
			m.WithTag(tag)
		}
		r, err := p.SendSync(context.Background(), m)
		require.NoError(t, err)
		require.Equal(t, primitive.SendOK, r.Status)
	}
}

func (c *collector) count(body string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bodies[body]
}
