package client

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/stretchr/testify/require"

	"qianlang.io/mq/mqtest"
)

// orderLog records, per order, the steps in the order they were first
// consumed, and which consumer took them.
type orderLog struct {
	mu    sync.Mutex
	first map[string][]int // order → steps, first deliveries only
	seen  map[string]bool  // "order/step"
	by    map[string]map[string]bool
}

func newOrderLog() *orderLog {
	return &orderLog{first: map[string][]int{}, seen: map[string]bool{}, by: map[string]map[string]bool{}}
}

func (o *orderLog) handler(name string) func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	return func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, m := range msgs {
			order, step, _ := strings.Cut(string(m.Body), "/")
			n, _ := strconv.Atoi(step)
			if o.by[order] == nil {
				o.by[order] = map[string]bool{}
			}
			o.by[order][name] = true
			if o.seen[string(m.Body)] {
				continue // a redelivery (at-least-once) is not a reordering
			}
			o.seen[string(m.Body)] = true
			o.first[order] = append(o.first[order], n)
		}
		time.Sleep(time.Millisecond) // keep the queue busy across the rebalance
		return consumer.ConsumeSuccess, nil
	}
}

func (o *orderLog) total() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.seen)
}

// Orders are sent to queues by order id; orderly consumers see each
// order's steps strictly in order while a second consumer joins (a
// rebalance moves queues between them under the broker's queue locks) and
// while the group's leader changes.
func TestOrderedMessagesAcrossRebalanceAndLeaderChange(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3})
	c.CreateTopic("OrderT", 8)
	const orders, steps = 40, 30
	log := newOrderLog()
	group := unique("cg")
	startPushConsumerFunc(t, c, group, "OrderT", log.handler("a"), consumer.WithConsumerOrder(true))
	p := startProducer(t, c, producer.WithQueueSelector(producer.NewHashQueueSelector()), producer.WithRetry(2))
	send := func(step int) {
		for o := range orders {
			m := primitive.NewMessage("OrderT", []byte(fmt.Sprintf("order%d/%d", o, step)))
			m.WithShardingKey(fmt.Sprintf("order%d", o))
			require.Eventually(t, func() bool {
				r, err := p.SendSync(context.Background(), m)
				return err == nil && r.Status == primitive.SendOK
			}, 40*time.Second, 50*time.Millisecond)
		}
	}
	for s := range steps / 3 {
		send(s)
	}
	require.Eventually(t, func() bool { return log.total() == orders*(steps/3) }, 60*time.Second, 20*time.Millisecond)
	startPushConsumerFunc(t, c, group, "OrderT", log.handler("b"), consumer.WithConsumerOrder(true))
	for s := steps / 3; s < 2*steps/3; s++ {
		send(s)
	}
	old := c.Leader(0)
	c.StopBroker(old)
	for s := 2 * steps / 3; s < steps; s++ {
		send(s)
	}
	require.Eventually(t, func() bool { return log.total() == orders*steps }, 120*time.Second, 50*time.Millisecond,
		"consumed %d of %d", log.total(), orders*steps)
	log.mu.Lock()
	defer log.mu.Unlock()
	both := 0
	for o, got := range log.first {
		for i := range got {
			require.Equal(t, i, got[i], "order %s: steps out of order: %v", o, got)
		}
		if len(log.by[o]) == 2 {
			both++
		}
	}
	per := map[string]int{}
	for _, names := range log.by {
		for n := range names {
			per[n]++
		}
	}
	t.Logf("%d of %d orders moved between consumers; orders per consumer %v", both, orders, per)
	c.StartBroker(old)
	c.CheckGroup(0)
}
