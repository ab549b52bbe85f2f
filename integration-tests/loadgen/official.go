package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// officialSender sends through the official RocketMQ Go client.
type officialSender struct {
	p     rocketmq.Producer
	topic string
}

// NewOfficialSenders starts n official-client producers (each its own
// client instance, so its own connections).
func NewOfficialSenders(namesrv, topic string, n int) ([]Sender, error) {
	out := make([]Sender, n)
	for i := range out {
		p, err := rocketmq.NewProducer(producer.WithNameServer([]string{namesrv}), producer.WithGroupName("qlbench_official"),
			producer.WithInstanceName(fmt.Sprintf("qlbench-%d-%d", i, time.Now().UnixNano())), producer.WithRetry(0),
			producer.WithSendMsgTimeout(10*time.Second))
		if err != nil {
			return nil, err
		}
		if err := p.Start(); err != nil {
			return nil, err
		}
		out[i] = &officialSender{p: p, topic: topic}
	}
	return out, nil
}

func (s *officialSender) Send(bodies [][]byte, done func(error)) error {
	msgs := make([]*primitive.Message, len(bodies))
	for i, b := range bodies {
		msgs[i] = primitive.NewMessage(s.topic, b)
	}
	return s.p.SendAsync(context.Background(), func(_ context.Context, r *primitive.SendResult, err error) {
		if err == nil && r.Status != primitive.SendOK {
			err = fmt.Errorf("loadgen: send status %v", r.Status)
		}
		done(err)
	}, msgs...)
}

func (s *officialSender) Close() error { return s.p.Shutdown() }

// ConsumeOfficial drains want messages of a topic with the official push
// consumer (a new group, from the first offset) and reports throughput and
// end-to-end latency.
func ConsumeOfficial(ctx context.Context, namesrv, topic string, want int64) (Result, error) {
	var (
		mu    sync.Mutex
		hist  = NewHistogram()
		msgs  atomic.Int64
		bytes atomic.Int64
		done  = make(chan struct{})
		once  sync.Once
	)
	pc, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{namesrv}), consumer.WithGroupName(fmt.Sprint("qlbench_official_", time.Now().UnixNano())),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset), consumer.WithConsumeMessageBatchMaxSize(32), consumer.WithPullBatchSize(32))
	if err != nil {
		return Result{}, err
	}
	err = pc.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, ms ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		now := time.Now()
		mu.Lock()
		for _, m := range ms {
			_ = hist.RecordValue(max(1, now.Sub(Stamp(m.Body)).Microseconds()))
			bytes.Add(int64(len(m.Body)))
		}
		mu.Unlock()
		if msgs.Add(int64(len(ms))) >= want {
			once.Do(func() { close(done) })
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	if err := pc.Start(); err != nil {
		return Result{}, err
	}
	defer pc.Shutdown()
	select {
	case <-done:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("loadgen: consumed %d of %d: %w", msgs.Load(), want, ctx.Err())
	}
	mu.Lock()
	defer mu.Unlock()
	return summarize(hist, msgs.Load(), bytes.Load(), 0, time.Since(start)), nil
}
