// Package txmsg publishes an event and changes the database as one atomic
// step, with RocketMQ's transactional messages: the half message is sent
// first, the local transaction then runs and records the event id in
// tx_events beside its own writes, and the message is committed or rolled
// back with it. When the commit is lost (the process dies after its local
// transaction, or the end-transaction call fails), the broker asks back and
// the answer is read from tx_events: the event happened exactly when its row
// exists.
package txmsg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"gorm.io/gorm"

	"qianlang.io/services/bus"
	"qianlang.io/services/events"
	"qianlang.io/services/idempotent"
)

// Schema creates the table of published events; services list it in a
// migration.
const Schema = `CREATE TABLE IF NOT EXISTS tx_events (
  event_id VARCHAR(191) NOT NULL PRIMARY KEY,
  topic VARCHAR(128) NOT NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB`

// ErrNoEvent may be returned by a local transaction that committed its
// writes but has no event to publish; Publish then rolls the half message
// back and returns nil.
var ErrNoEvent = errors.New("no event")

// Options configure a Publisher.
type Options struct {
	NameServers []string
	Group       string // producer group; the broker's check-backs go to it
	DB          *gorm.DB
	Log         *slog.Logger
	Metrics     *bus.Metrics
	// Topics the publisher will send to. At start it sends each one a
	// half message that it rolls back at once: the client then knows the
	// topic's brokers and heartbeats to them as a member of the producer
	// group, so check-backs of transactions left open by an earlier run of
	// the service reach it before its first real send.
	Topics []string
}

// Publisher sends transactional messages.
type Publisher struct {
	o       Options
	p       rocketmq.TransactionProducer
	pending sync.Map // event id -> *call
	close   sync.Once
	stop    chan struct{}
	warmed  chan struct{}
}

type call struct {
	ctx   context.Context
	local func(tx *gorm.DB) error
	err   error
	ran   bool
}

// New starts a transactional producer.
func New(o Options) (*Publisher, error) {
	bus.Quiet()
	pub := &Publisher{o: o}
	p, err := rocketmq.NewTransactionProducer(listener{pub},
		producer.WithNameServer(o.NameServers),
		producer.WithGroupName(o.Group),
		producer.WithInstanceName(bus.InstanceName(o.Group)),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(3*time.Second),
	)
	if err != nil {
		return nil, fmt.Errorf("transactional producer %s: %w", o.Group, err)
	}
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("transactional producer %s: start: %w", o.Group, err)
	}
	pub.p = p
	if pub.o.Log == nil {
		pub.o.Log = slog.New(slog.DiscardHandler)
	}
	pub.stop = make(chan struct{})
	pub.warmed = make(chan struct{})
	go pub.warm()
	return pub, nil
}

// warm introduces the producer group to the brokers of every topic (see
// Options.Topics), retrying each second until it succeeds or Close.
func (p *Publisher) warm() {
	defer close(p.warmed)
	id := bus.InstanceName("warmup")
	for _, topic := range p.o.Topics {
		for {
			err := p.Publish(context.Background(), topic, "", id+"-"+topic, struct{}{}, func(*gorm.DB) error { return ErrNoEvent })
			if err == nil {
				break
			}
			p.o.Log.Warn("transactional producer warm-up failed; retrying", "topic", topic, "err", err)
			select {
			case <-p.stop:
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// Publish sends ev as a half message, runs local in a database transaction
// that also records eventID, and commits the message if and only if that
// transaction commits. local's error is returned as it is (wrapped errors
// kept); ErrNoEvent from local commits local's writes, rolls the message
// back and returns nil. An event id that was already published makes local
// run again with nothing recorded twice: the insert into tx_events fails and
// the whole transaction rolls back with ErrDuplicate.
func (p *Publisher) Publish(ctx context.Context, topic, key, eventID string, ev any, local func(tx *gorm.DB) error) error {
	m, err := bus.NewMessage(topic, key, eventID, ev)
	if err != nil {
		return err
	}
	c := &call{ctx: ctx, local: local}
	if _, loaded := p.pending.LoadOrStore(eventID, c); loaded {
		return fmt.Errorf("txmsg: event %s is being published already", eventID)
	}
	defer p.pending.Delete(eventID)
	start := time.Now()
	_, err = p.p.SendMessageInTransaction(ctx, m)
	if err != nil {
		p.o.Metrics.Sent(topic, start, err)
		return fmt.Errorf("txmsg: half message %s: %w", topic, err)
	}
	p.o.Metrics.Sent(topic, start, c.err)
	if !c.ran {
		return fmt.Errorf("txmsg: %s: local transaction did not run", topic)
	}
	if errors.Is(c.err, ErrNoEvent) {
		return nil
	}
	return c.err
}

// ErrDuplicate is returned by Publish when the event id was published before.
var ErrDuplicate = errors.New("event already published")

func (p *Publisher) execute(m *primitive.Message) primitive.LocalTransactionState {
	id := m.GetProperty(events.EventIDProperty)
	v, ok := p.pending.Load(id)
	if !ok {
		return primitive.RollbackMessageState
	}
	c := v.(*call)
	c.ran = true
	noEvent := false
	c.err = p.o.DB.WithContext(c.ctx).Transaction(func(tx *gorm.DB) error {
		if err := c.local(tx); err != nil {
			if errors.Is(err, ErrNoEvent) {
				noEvent = true
				return nil
			}
			return err
		}
		err := tx.Exec("INSERT INTO tx_events (event_id, topic) VALUES (?, ?)", id, m.Topic).Error
		if idempotent.IsDuplicateKey(err) {
			return ErrDuplicate
		}
		return err
	})
	switch {
	case noEvent && c.err == nil:
		c.err = ErrNoEvent
		return primitive.RollbackMessageState
	case c.err != nil:
		return primitive.RollbackMessageState
	}
	return primitive.CommitMessageState
}

// check answers the broker's check-back from tx_events.
func (p *Publisher) check(m *primitive.MessageExt) primitive.LocalTransactionState {
	id := m.GetProperty(events.EventIDProperty)
	if id == "" {
		return primitive.RollbackMessageState
	}
	if _, inFlight := p.pending.Load(id); inFlight {
		return primitive.UnknowState
	}
	var n int64
	if err := p.o.DB.Raw("SELECT COUNT(*) FROM tx_events WHERE event_id = ?", id).Scan(&n).Error; err != nil {
		p.o.Log.Warn("transaction check-back: database", "event", id, "err", err)
		return primitive.UnknowState
	}
	if n > 0 {
		return primitive.CommitMessageState
	}
	return primitive.RollbackMessageState
}

// Close shuts the producer down; later calls do nothing.
func (p *Publisher) Close() error {
	var err error
	p.close.Do(func() {
		close(p.stop)
		<-p.warmed
		err = p.p.Shutdown()
	})
	return err
}

type listener struct{ p *Publisher }

func (l listener) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	return l.p.execute(m)
}

func (l listener) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	return l.p.check(m)
}
