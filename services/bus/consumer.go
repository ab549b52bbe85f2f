package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"qianlang.io/services/events"
)

// Message is one delivered message.
type Message struct {
	Topic     string
	Key       string
	EventID   string // the publisher's event id; the message id when it set none
	Body      []byte
	Reconsume int32 // earlier deliveries that failed
	ext       *primitive.MessageExt
}

// Decode decodes the JSON body into v.
func (m *Message) Decode(v any) error {
	if err := json.Unmarshal(m.Body, v); err != nil {
		return fmt.Errorf("decode %s %s: %w", m.Topic, m.EventID, err)
	}
	return nil
}

// Handler applies a message. An error asks the queue to deliver it again
// later (with RocketMQ's growing delay); after MaxReconsume failures it goes
// to the group's dead-letter queue.
type Handler func(ctx context.Context, m *Message) error

// Responder answers a request-reply request; its value is the reply.
type Responder func(ctx context.Context, m *Message) (any, error)

// ConsumerOptions configure a Consumer.
type ConsumerOptions struct {
	NameServers  []string
	Group        string
	MaxReconsume int32 // 0: 16, RocketMQ's default
	Goroutines   int   // 0: 20
	// Attempts is how often a failing handler is tried in place, with a
	// backoff from 100 ms doubling, before the message goes back to the
	// queue for a later redelivery (0: 3). Third parties that fail now and
	// then are ridden over here; ones that stay down are felt through
	// RocketMQ's growing delays and, after MaxReconsume, the DLQ.
	Attempts int
	Metrics  *Metrics
	Log      *slog.Logger
	// Replies sends request-reply answers; required when Respond is used.
	Replies *Producer
	// Redeliver is fault injection: every delivery is handled twice in a
	// row, as if the queue had delivered it again, to prove the handlers
	// idempotent. daemon turns it on when QIANLANG_FAULTS has "redeliver".
	Redeliver bool
}

// Consumer is one consumer group's push consumer: every topic it handles is
// subscribed in the group.
type Consumer struct {
	o        ConsumerOptions
	instance string // the client instance of its own
	c        rocketmq.PushConsumer
	handlers map[string]Handler
	close    sync.Once
}

// NewConsumer creates a consumer; add handlers, then Start.
func NewConsumer(o ConsumerOptions) (*Consumer, error) {
	Quiet()
	if o.MaxReconsume == 0 {
		o.MaxReconsume = 16
	}
	if o.Goroutines == 0 {
		o.Goroutines = 20
	}
	if o.Attempts == 0 {
		o.Attempts = 3
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	instance := InstanceName(o.Group)
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNameServer(o.NameServers),
		consumer.WithGroupName(o.Group),
		// A client of its own: consumers sharing one race each other in the
		// official client when one starts while the other rebalances.
		consumer.WithInstance(instance),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
		consumer.WithMaxReconsumeTimes(o.MaxReconsume),
		consumer.WithConsumeGoroutineNums(o.Goroutines),
		consumer.WithConsumeMessageBatchMaxSize(1),
	)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", o.Group, err)
	}
	return &Consumer{o: o, instance: instance, c: c, handlers: map[string]Handler{}}, nil
}

// Handle subscribes topic with h.
func (c *Consumer) Handle(topic string, h Handler) error {
	c.handlers[topic] = h
	return c.c.Subscribe(topic, consumer.MessageSelector{}, c.consume)
}

// Respond subscribes a request topic whose answers go back to the requester.
func (c *Consumer) Respond(topic string, r Responder) error {
	if c.o.Replies == nil {
		return fmt.Errorf("consumer %s: Respond needs Replies", c.o.Group)
	}
	return c.Handle(topic, func(ctx context.Context, m *Message) error {
		v, err := r(ctx, m)
		if err != nil {
			return err
		}
		body, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode reply: %w", err)
		}
		reply, err := consumer.CreateReplyMessage(m.ext, nil)
		if err != nil {
			// A request without reply properties (sent as a plain message)
			// has nobody waiting: nothing to answer.
			c.o.Log.Warn("request has no reply address", "topic", m.Topic, "err", err)
			return nil
		}
		reply.Body = body
		return c.o.Replies.SendMessage(ctx, reply)
	})
}

// instanceWarmUp is how long a client instance runs before a consumer
// joins it. The client polls routes 10 ms after its instance starts, and
// that poll reads the consumers' subscriptions while a rebalance the
// broker triggers writes them (a data race inside the client); joining
// after the first poll keeps the two apart.
const instanceWarmUp = 100 * time.Millisecond

// Start starts consuming.
//
// The official client's instance polls topic routes 10 ms after it starts,
// reading its consumers' subscriptions without a lock, while the broker's
// "consumer ids changed" notice that answers a consumer's first heartbeat
// rebalances it and writes them: a data race whenever the consumer starts
// the instance itself. So a producer of the same instance starts it first,
// and the consumer joins once that first poll is over.
func (c *Consumer) Start() error {
	warm, err := rocketmq.NewProducer(
		producer.WithNameServer(c.o.NameServers),
		producer.WithGroupName(c.o.Group+"_instance"),
		producer.WithInstanceName(c.instance),
	)
	if err == nil {
		err = warm.Start()
	}
	if err != nil {
		return fmt.Errorf("consumer %s: start client: %w", c.o.Group, err)
	}
	// Shut down after the consumer holds the instance, which would
	// otherwise stop with the producer.
	defer func() { _ = warm.Shutdown() }()
	time.Sleep(instanceWarmUp)
	if err := c.c.Start(); err != nil {
		return fmt.Errorf("consumer %s: start: %w", c.o.Group, err)
	}
	return nil
}

// Close stops consuming and persists the group's offsets; later calls do
// nothing.
func (c *Consumer) Close() error {
	var err error
	c.close.Do(func() { err = c.c.Shutdown() })
	return err
}

func originalTopic(m *primitive.MessageExt) string {
	if strings.HasPrefix(m.Topic, "%RETRY%") {
		if t := m.GetProperty(primitive.PropertyRetryTopic); t != "" {
			return t
		}
	}
	return m.Topic
}

func (c *Consumer) consume(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	for _, ext := range msgs {
		topic := originalTopic(ext)
		m := &Message{Topic: topic, Key: ext.GetKeys(), EventID: ext.GetProperty(events.EventIDProperty),
			Body: ext.Body, Reconsume: ext.ReconsumeTimes, ext: ext}
		if m.EventID == "" {
			m.EventID = ext.MsgId
		}
		start := time.Now()
		err := c.attempt(ctx, m)
		if err == nil && c.o.Redeliver {
			err = c.attempt(ctx, m)
		}
		c.o.Metrics.consumed(c.o.Group, topic, m.Reconsume, start, err)
		if err != nil {
			c.o.Log.Warn("consume failed; the queue will redeliver", "group", c.o.Group, "topic", topic,
				"key", m.Key, "event", m.EventID, "reconsume", m.Reconsume, "err", err)
			return consumer.ConsumeRetryLater, nil
		}
	}
	return consumer.ConsumeSuccess, nil
}

// attempt runs m's handler up to Attempts times, backing off between tries.
func (c *Consumer) attempt(ctx context.Context, m *Message) error {
	h := c.handlers[m.Topic]
	if h == nil {
		return fmt.Errorf("no handler for topic %s", m.Topic)
	}
	backoff := 100 * time.Millisecond
	var err error
	for i := 0; i < c.o.Attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(backoff):
			}
			backoff *= 2
		}
		if err = h(ctx, m); err == nil {
			return nil
		}
	}
	return err
}
