// Package demo is the program behind `make demo`: it drives a running
// NameServer and broker with the official RocketMQ Go client — sync, async
// and batch sends, then a push consumer — and reports what happened.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"qianlang.io/mq/admin"
	"qianlang.io/mq/protocol"
)

// Options configure a demo run.
type Options struct {
	Namesrv  string // ip:port
	Topic    string
	Messages int
	Queues   int
	Out      io.Writer
}

// Run creates the topic, produces Messages messages three ways, consumes
// them with a push consumer and prints a report.
func Run(ctx context.Context, o Options) error {
	if o.Messages <= 0 || o.Queues <= 0 || o.Topic == "" || o.Namesrv == "" {
		return errors.New("demo: Namesrv, Topic, Messages and Queues are required")
	}
	out := o.Out
	brokerAddr, err := createTopic(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "topic %s: %d queues on broker %s\n", o.Topic, o.Queues, brokerAddr)

	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{o.Namesrv}), producer.WithGroupName("demo_producer"))
	if err != nil {
		return err
	}
	if err := p.Start(); err != nil {
		return err
	}
	defer p.Shutdown()
	start := time.Now()
	sent, err := produce(ctx, p, o)
	if err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(out, "produced %d messages (sync, async and batches of 10) in %v: %.0f msgs/s\n", sent, took.Round(time.Millisecond), float64(sent)/took.Seconds())

	perQueue, took, err := consume(ctx, o, sent)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "consumed %d messages with a push consumer (group demo_consumer) in %v\n", sent, took.Round(time.Millisecond))
	qs := make([]int, 0, len(perQueue))
	for q := range perQueue {
		qs = append(qs, q)
	}
	sort.Ints(qs)
	for _, q := range qs {
		fmt.Fprintf(out, "  queue %d: %d messages\n", q, perQueue[q])
	}
	return nil
}

func createTopic(ctx context.Context, o Options) (string, error) {
	a, err := admin.New(o.Namesrv)
	if err != nil {
		return "", err
	}
	defer a.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		masters, err := a.MasterAddrs(ctx, "")
		if err == nil && len(masters) > 0 {
			addr := masters[0].MasterAddr()
			tc := protocol.TopicConfig{TopicName: o.Topic, ReadQueueNums: o.Queues, WriteQueueNums: o.Queues, Perm: 6}
			if err := a.CreateTopic(ctx, addr, tc); err != nil {
				return "", err
			}
			return addr, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("demo: no broker registered with %s: %v", o.Namesrv, err)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func message(o Options, i int) *primitive.Message {
	m := primitive.NewMessage(o.Topic, []byte(fmt.Sprintf("order-%06d paid", i)))
	m.WithTag([]string{"TagA", "TagB"}[i%2])
	m.WithKeys([]string{fmt.Sprintf("order-%06d", i)})
	return m
}

// produce sends a third synchronously, a third asynchronously and the rest
// in batches of 10.
func produce(ctx context.Context, p rocketmq.Producer, o Options) (int, error) {
	third := o.Messages / 3
	i := 0
	for ; i < third; i++ {
		if _, err := p.SendSync(ctx, message(o, i)); err != nil {
			return i, fmt.Errorf("demo: sync send: %w", err)
		}
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	sem := make(chan struct{}, 64)
	for ; i < 2*third; i++ {
		sem <- struct{}{}
		wg.Add(1)
		err := p.SendAsync(ctx, func(_ context.Context, _ *primitive.SendResult, err error) {
			if err != nil {
				failed.Add(1)
			}
			<-sem
			wg.Done()
		}, message(o, i))
		if err != nil {
			return i, fmt.Errorf("demo: async send: %w", err)
		}
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return i, fmt.Errorf("demo: %d async sends failed", n)
	}
	for i < o.Messages {
		var batch []*primitive.Message
		for ; i < o.Messages && len(batch) < 10; i++ {
			batch = append(batch, message(o, i))
		}
		if _, err := p.SendSync(ctx, batch...); err != nil {
			return i, fmt.Errorf("demo: batch send: %w", err)
		}
	}
	return i, nil
}

func consume(ctx context.Context, o Options, want int) (map[int]int, time.Duration, error) {
	var mu sync.Mutex
	seen := map[string]bool{}
	perQueue := map[int]int{}
	done := make(chan struct{})
	pc, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{o.Namesrv}), consumer.WithGroupName("demo_consumer"),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err != nil {
		return nil, 0, err
	}
	err = pc.Subscribe(o.Topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			if !seen[string(m.Body)] {
				seen[string(m.Body)] = true
				perQueue[m.Queue.QueueId]++
				if len(seen) == want {
					close(done)
				}
			}
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	if err := pc.Start(); err != nil {
		return nil, 0, err
	}
	defer pc.Shutdown()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		return nil, 0, fmt.Errorf("demo: consumed %d of %d messages in 2 minutes", len(seen), want)
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	return perQueue, time.Since(start), nil
}
