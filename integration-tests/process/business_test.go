package process

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/stretchr/testify/require"

	"qianlang.io/mq/admin"
)

// checkLater commits a transaction only when the broker checks back.
type checkLater struct{}

func (checkLater) ExecuteLocalTransaction(*primitive.Message) primitive.LocalTransactionState {
	return primitive.UnknowState
}
func (checkLater) CheckLocalTransaction(*primitive.MessageExt) primitive.LocalTransactionState {
	return primitive.CommitMessageState
}

// kill -9 of the leader while delayed messages wait, transactions await
// their check-back and failed messages wait for their retry: the new
// leader delivers every delayed message (never early), checks and commits
// every transaction, and redelivers every retry.
func TestGroupKill9LeaderWithPendingBusinessMessages(t *testing.T) {
	g := startGroup(t, "messageDelayLevel=3s 6s 8s", "transactionTimeOut=1500", "transactionCheckInterval=500", "flushConsumerOffsetInterval=1000")
	a, err := admin.New(g.nsAddr)
	require.NoError(t, err)
	defer a.Close()
	lead := g.createTopics(t, a, 2, "BizDelay", "BizTx", "BizRetry")

	// Consumers first, so that the retry consumer sees the first delivery.
	delayed := &receipts{first: map[string]time.Time{}, count: map[string]int{}}
	committed := &receipts{first: map[string]time.Time{}, count: map[string]int{}}
	var mu sync.Mutex
	retried := map[string]int32{}
	start := func(topic string, h func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error)) {
		pc, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{g.nsAddr}), consumer.WithGroupName("biz_"+strings.ToLower(topic)),
			consumer.WithConsumeMessageBatchMaxSize(1))
		require.NoError(t, err)
		require.NoError(t, pc.Subscribe(topic, consumer.MessageSelector{}, h))
		require.NoError(t, pc.Start())
		t.Cleanup(func() { _ = pc.Shutdown() })
	}
	start("BizDelay", func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		delayed.add(msgs...)
		return consumer.ConsumeSuccess, nil
	})
	start("BizTx", func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		committed.add(msgs...)
		return consumer.ConsumeSuccess, nil
	})
	start("BizRetry", func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			retried[string(m.Body)] = max(retried[string(m.Body)], m.ReconsumeTimes)
			if m.ReconsumeTimes == 0 {
				return consumer.ConsumeRetryLater, nil
			}
		}
		return consumer.ConsumeSuccess, nil
	})
	time.Sleep(2 * time.Second) // the consumers' first rebalance

	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{g.nsAddr}), producer.WithGroupName("biz_pg"), producer.WithRetry(2))
	require.NoError(t, err)
	require.NoError(t, p.Start())
	defer p.Shutdown()
	// Its own instance: the Go client shares one client per instance name,
	// and that client answers check-backs only for the first producer group
	// created in it.
	tp, err := rocketmq.NewTransactionProducer(checkLater{}, producer.WithNameServer([]string{g.nsAddr}), producer.WithGroupName("biz_txpg"),
		producer.WithInstanceName("biz_tx"), producer.WithRetry(2))
	require.NoError(t, err)
	require.NoError(t, tp.Start())
	defer tp.Shutdown()

	due := map[string]time.Time{}
	var txs, retries []string
	for i := range 60 {
		body := fmt.Sprintf("delay-%d", i)
		m := primitive.NewMessage("BizDelay", []byte(body))
		m.WithDelayTimeLevel(2) // 6 s
		sent := time.Now()
		_, err := p.SendSync(context.Background(), m)
		require.NoError(t, err)
		due[body] = sent.Add(6 * time.Second)
	}
	for i := range 30 {
		body := fmt.Sprintf("tx-%d", i)
		_, err := tp.SendMessageInTransaction(context.Background(), primitive.NewMessage("BizTx", []byte(body)))
		require.NoError(t, err)
		txs = append(txs, body)
		body = fmt.Sprintf("retry-%d", i)
		_, err = p.SendSync(context.Background(), primitive.NewMessage("BizRetry", []byte(body)))
		require.NoError(t, err)
		retries = append(retries, body)
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(retried) == len(retries)
	}, 30*time.Second, 20*time.Millisecond, "first deliveries of the retry messages")

	killAt := time.Now()
	g.members[lead].kill9()
	t.Logf("leader n%d killed with delayed, half and retry messages pending", lead)
	g.leader(t, a, "BizDelay", g.addrs[lead])
	g.members[lead].restart()

	var want []string
	for b := range due {
		want = append(want, b)
	}
	require.Eventually(t, func() bool { return len(delayed.missing(want)) == 0 }, 120*time.Second, 100*time.Millisecond,
		"delayed messages missing: %v", head(delayed.missing(want), 5))
	delayed.mu.Lock()
	for b, d := range due {
		require.False(t, delayed.first[b].Before(d.Add(-2*time.Millisecond)), "%s delivered %v early", b, d.Sub(delayed.first[b]))
	}
	delayed.mu.Unlock()
	require.Eventually(t, func() bool { return len(committed.missing(txs)) == 0 }, 120*time.Second, 100*time.Millisecond,
		"transactions never committed: %v", head(committed.missing(txs), 5))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range retries {
			if retried[b] < 1 {
				return false
			}
		}
		return true
	}, 120*time.Second, 100*time.Millisecond, "retries not redelivered")
	t.Logf("everything pending at the kill was delivered within %v", time.Since(killAt))
	g.checkStores(t)
}

// kill -9 of the leader while an orderly consumer group consumes orders
// sent by order id: every order's steps are first delivered in order, and
// none is lost.
func TestGroupKill9LeaderOrderedConsumption(t *testing.T) {
	g := startGroup(t, "flushConsumerOffsetInterval=1000")
	a, err := admin.New(g.nsAddr)
	require.NoError(t, err)
	defer a.Close()
	lead := g.createTopics(t, a, 4, "BizOrder")

	var mu sync.Mutex
	first := map[string][]int{}
	seen := map[string]bool{}
	for k := range 2 {
		pc, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{g.nsAddr}), consumer.WithGroupName("biz_order"),
			consumer.WithInstance(fmt.Sprintf("order-%d", k)), consumer.WithConsumerOrder(true))
		require.NoError(t, err)
		require.NoError(t, pc.Subscribe("BizOrder", consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				if seen[string(m.Body)] {
					continue
				}
				seen[string(m.Body)] = true
				order, step, _ := strings.Cut(string(m.Body), "/")
				var n int
				fmt.Sscan(step, &n)
				first[order] = append(first[order], n)
			}
			return consumer.ConsumeSuccess, nil
		}))
		require.NoError(t, pc.Start())
		t.Cleanup(func() { _ = pc.Shutdown() })
	}
	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{g.nsAddr}), producer.WithGroupName("biz_order_pg"),
		producer.WithQueueSelector(producer.NewHashQueueSelector()), producer.WithRetry(2))
	require.NoError(t, err)
	require.NoError(t, p.Start())
	defer p.Shutdown()
	const orders, steps = 20, 30
	send := func(step int) {
		for o := range orders {
			m := primitive.NewMessage("BizOrder", []byte(fmt.Sprintf("o%d/%d", o, step)))
			m.WithShardingKey(fmt.Sprintf("o%d", o))
			require.Eventually(t, func() bool {
				_, err := p.SendSync(context.Background(), m)
				return err == nil
			}, 60*time.Second, 100*time.Millisecond)
		}
	}
	for s := range steps / 2 {
		send(s)
	}
	g.members[lead].kill9()
	for s := steps / 2; s < steps; s++ {
		send(s)
	}
	g.members[lead].restart()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == orders*steps
	}, 120*time.Second, 100*time.Millisecond, "consumed %d of %d", len(seen), orders*steps)
	mu.Lock()
	for o, got := range first {
		for i := range got {
			require.Equal(t, i, got[i], "order %s out of order: %v", o, got)
		}
	}
	mu.Unlock()
	g.checkStores(t)
}
