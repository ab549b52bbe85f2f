// Package bus is how a service sends and consumes the platform's events on
// the queue, through the official RocketMQ Go client: JSON payloads, event
// ids for deduplication, timer messages, request-reply, and Prometheus
// counts of what was sent and consumed.
package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"qianlang.io/services/events"
)

var quietOnce sync.Once

// Quiet turns the client's own logging down to fatal errors (it logs
// every rolled-back transaction as an error; the services log what
// matters to them through slog) and recovers panics in the client's
// goroutines (see recoverClientPanic).
func Quiet() {
	quietOnce.Do(func() {
		rlog.SetLogLevel("fatal")
		primitive.PanicHandler = recoverClientPanic
	})
}

// ClientPanics counts panics recovered in the official client's
// goroutines.
var ClientPanics atomic.Int64

// recoverClientPanic is the client's PanicHandler. The client's
// asynchronous send (used by Request) dereferences a nil response when
// the send fails (the broker's connection closed, or no answer within
// 3 s): without a handler that panic kills the process. The failure has
// already been handed to the caller when it happens, so the request just
// fails and is retried.
func recoverClientPanic(v any) {
	ClientPanics.Add(1)
	fmt.Fprintf(os.Stderr, "{\"time\":%q,\"level\":\"WARN\",\"msg\":\"recovered a panic in the RocketMQ client\",\"panic\":%q}\n",
		time.Now().UTC().Format(time.RFC3339Nano), fmt.Sprint(v))
}

// ParseNameServers splits "host:port;host:port" and checks each address.
func ParseNameServers(s string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(s, ";") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		i := strings.LastIndexByte(a, ':')
		if i <= 0 {
			return nil, fmt.Errorf("name server %q: want host:port", a)
		}
		if p, err := strconv.Atoi(a[i+1:]); err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("name server %q: bad port", a)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, errors.New("no name server")
	}
	return out, nil
}

// NewMessage encodes ev as a message of topic with the given key and event id.
func NewMessage(topic, key, eventID string, ev any) (*primitive.Message, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", topic, err)
	}
	m := primitive.NewMessage(topic, body)
	if key != "" {
		m.WithKeys([]string{key})
	}
	if eventID != "" {
		m.WithProperty(events.EventIDProperty, eventID)
	}
	return m, nil
}

// InstanceName names a producer's client instance uniquely. Producers of
// one process with the same name share one client, and that client
// delivers transaction check-backs only to the producer that created it.
func InstanceName(group string) string {
	return fmt.Sprintf("%s#%d#%d", group, os.Getpid(), time.Now().UnixNano())
}

// Producer sends events. It is safe for concurrent use.
type Producer struct {
	p       rocketmq.Producer
	anchor  rocketmq.PushConsumer // see ProducerOptions.RequestTopics
	metrics *Metrics
	log     *slog.Logger
	close   sync.Once
}

// ProducerOptions configure a Producer.
type ProducerOptions struct {
	NameServers []string
	Group       string
	Metrics     *Metrics
	Log         *slog.Logger
	// RequestTopics are the topics the producer sends request-reply
	// requests to. A reply reaches its requester through whichever broker
	// stores it, and a broker knows the requester by its heartbeats; the
	// Go client's producer heartbeats only every 30 s (and at a first
	// request only for a topic the NameServers do not know). So a
	// producer with request topics shares its client with a push consumer
	// of them (group <Group>_requester, selecting a tag no message has):
	// starting it heartbeats the producer to every broker of those topics
	// at once.
	RequestTopics []string
}

// NewProducer starts a producer.
func NewProducer(o ProducerOptions) (*Producer, error) {
	Quiet()
	instance := InstanceName(o.Group)
	p, err := rocketmq.NewProducer(
		producer.WithNameServer(o.NameServers),
		producer.WithGroupName(o.Group),
		producer.WithInstanceName(instance),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(3*time.Second),
	)
	if err != nil {
		return nil, fmt.Errorf("producer %s: %w", o.Group, err)
	}
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("producer %s: start: %w", o.Group, err)
	}
	pr := &Producer{p: p, metrics: o.Metrics, log: o.Log}
	if len(o.RequestTopics) > 0 {
		time.Sleep(instanceWarmUp)
		if pr.anchor, err = startAnchor(o, instance); err != nil {
			_ = p.Shutdown()
			return nil, err
		}
	}
	return pr, nil
}

// anchorTag is a tag no message carries: the anchor consumer receives
// nothing.
const anchorTag = "QL_REQUESTER_ANCHOR"

func startAnchor(o ProducerOptions, instance string) (rocketmq.PushConsumer, error) {
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNameServer(o.NameServers),
		consumer.WithGroupName(o.Group+"_requester"),
		consumer.WithInstance(instance),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromLastOffset),
	)
	if err != nil {
		return nil, fmt.Errorf("producer %s: requester anchor: %w", o.Group, err)
	}
	sel := consumer.MessageSelector{Type: consumer.TAG, Expression: anchorTag}
	for _, t := range o.RequestTopics {
		if err := c.Subscribe(t, sel, func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			return consumer.ConsumeSuccess, nil
		}); err != nil {
			return nil, fmt.Errorf("producer %s: requester anchor: %w", o.Group, err)
		}
	}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("producer %s: requester anchor: %w", o.Group, err)
	}
	return c, nil
}

// Send sends ev synchronously: nil means the queue acknowledged it.
func (p *Producer) Send(ctx context.Context, topic, key, eventID string, ev any) error {
	m, err := NewMessage(topic, key, eventID, ev)
	if err != nil {
		return err
	}
	return p.SendMessage(ctx, m)
}

// SendAt sends ev to be delivered at the given time (a timer message).
func (p *Producer) SendAt(ctx context.Context, topic, key, eventID string, ev any, at time.Time) error {
	m, err := NewMessage(topic, key, eventID, ev)
	if err != nil {
		return err
	}
	m.WithProperty("TIMER_DELIVER_MS", strconv.FormatInt(at.UnixMilli(), 10))
	return p.SendMessage(ctx, m)
}

// SendMessage sends m synchronously.
func (p *Producer) SendMessage(ctx context.Context, m *primitive.Message) error {
	start := time.Now()
	r, err := p.p.SendSync(ctx, m)
	if err == nil && r.Status != primitive.SendOK {
		err = fmt.Errorf("send status %d", r.Status)
	}
	p.metrics.Sent(m.Topic, start, err)
	if err != nil {
		return fmt.Errorf("send %s: %w", m.Topic, err)
	}
	return nil
}

// ErrRequestTimeout is returned by Request when no reply came in time; the
// responder may still act on the request.
var ErrRequestTimeout = errors.New("request timed out")

// Request sends req to topic and decodes the reply into resp
// (RocketMQ request-reply): the responder's consumer group answers
// through the broker. A send that fails is retried until timeout.
func (p *Producer) Request(ctx context.Context, topic, key string, req, resp any, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		m, err := NewMessage(topic, key, "", req)
		if err != nil {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%s: %w", topic, ErrRequestTimeout)
		}
		start := time.Now()
		reply, err := p.p.Request(ctx, left, m)
		p.metrics.Sent(topic, start, err)
		if err == nil {
			if err := json.Unmarshal(reply.Body, resp); err != nil {
				return fmt.Errorf("%s: decode reply: %w", topic, err)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Until(deadline) <= 50*time.Millisecond {
			return fmt.Errorf("%s: %w: %v", topic, ErrRequestTimeout, err)
		}
		if p.log != nil {
			p.log.Warn("request failed, retrying", "topic", topic, "key", key, "err", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close shuts the producer down; later calls do nothing.
func (p *Producer) Close() error {
	var err error
	p.close.Do(func() {
		if p.anchor != nil {
			err = p.anchor.Shutdown()
		}
		err = errors.Join(err, p.p.Shutdown())
	})
	return err
}
