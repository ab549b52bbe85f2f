package txmsg_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"qianlang.io/mq/broker"
	"qianlang.io/mq/mqtest"
	"qianlang.io/services/bus"
	"qianlang.io/services/daemon"
	"qianlang.io/services/dbtest"
	"qianlang.io/services/events"
	"qianlang.io/services/migrate"
	"qianlang.io/services/txmsg"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

type fixture struct {
	c   *mqtest.Cluster
	db  *gorm.DB
	pub *txmsg.Publisher
	got chan string // event ids consumed
}

const topic = "TxT"

func setup(t *testing.T) *fixture {
	c := mqtest.Start(t, mqtest.Options{Broker: func(_ int, cfg *broker.Config) {
		cfg.TransactionCheckInterval = 300 * time.Millisecond
		cfg.TransactionTimeOut = 500 * time.Millisecond
	}})
	c.CreateTopic(topic, 1)
	ctx := context.Background()
	db, err := daemon.OpenDB(ctx, dbtest.DSN(t, "txmsg"))
	require.NoError(t, err)
	require.NoError(t, migrate.Apply(ctx, db, []migrate.Migration{{Version: 1, Name: "init", Statements: []string{
		txmsg.Schema, "CREATE TABLE things (id VARCHAR(64) PRIMARY KEY)"}}}))
	pub, err := txmsg.New(txmsg.Options{NameServers: c.NamesrvAddrs(), Group: "tx_pg", DB: db, Topics: []string{topic}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	f := &fixture{c: c, db: db, pub: pub, got: make(chan string, 100)}
	cons, err := bus.NewConsumer(bus.ConsumerOptions{NameServers: c.NamesrvAddrs(), Group: "tx_cg"})
	require.NoError(t, err)
	require.NoError(t, cons.Handle(topic, func(_ context.Context, m *bus.Message) error {
		f.got <- m.EventID
		return nil
	}))
	require.NoError(t, cons.Start())
	t.Cleanup(func() { _ = cons.Close() })
	return f
}

func insert(id string) func(tx *gorm.DB) error {
	return func(tx *gorm.DB) error { return tx.Exec("INSERT INTO things (id) VALUES (?)", id).Error }
}

func (f *fixture) exists(t *testing.T, table, col, id string) bool {
	var n int64
	require.NoError(t, f.db.Raw("SELECT COUNT(*) FROM "+table+" WHERE "+col+" = ?", id).Scan(&n).Error)
	return n > 0
}

// next waits for the next consumed event id.
func (f *fixture) next(t *testing.T) string {
	select {
	case id := <-f.got:
		return id
	case <-time.After(60 * time.Second):
		t.Fatal("no message consumed")
		return ""
	}
}

// The message is delivered exactly when the local transaction commits; a
// rolled-back or eventless transaction publishes nothing. The topic has one
// queue, so the marker published last is consumed after anything committed
// before it.
func TestPublishCommitsWithTheLocalTransaction(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	require.NoError(t, f.pub.Publish(ctx, topic, "k", "ev-commit", map[string]string{"a": "b"}, insert("commit")))
	require.Equal(t, "ev-commit", f.next(t))
	require.True(t, f.exists(t, "things", "id", "commit"))
	require.True(t, f.exists(t, "tx_events", "event_id", "ev-commit"))

	boom := errors.New("boom")
	err := f.pub.Publish(ctx, topic, "k", "ev-fail", 1, func(tx *gorm.DB) error {
		if err := insert("fail")(tx); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.False(t, f.exists(t, "things", "id", "fail"))

	require.NoError(t, f.pub.Publish(ctx, topic, "k", "ev-none", 1, func(tx *gorm.DB) error {
		if err := insert("none")(tx); err != nil {
			return err
		}
		return txmsg.ErrNoEvent
	}))
	require.True(t, f.exists(t, "things", "id", "none"))
	require.False(t, f.exists(t, "tx_events", "event_id", "ev-none"))

	// The same event id again: the local transaction rolls back.
	require.ErrorIs(t, f.pub.Publish(ctx, topic, "k", "ev-commit", 1, insert("again")), txmsg.ErrDuplicate)
	require.False(t, f.exists(t, "things", "id", "again"))

	require.NoError(t, f.pub.Publish(ctx, topic, "k", "ev-marker", 1, insert("marker")))
	require.Equal(t, "ev-marker", f.next(t), "only the marker follows the first event")
}

// unknownListener commits its local transaction and then "dies" before
// telling the broker: it answers UNKNOWN, as a process killed between its
// commit and the end-transaction call leaves the half message.
type unknownListener struct {
	db *gorm.DB
	mu sync.Mutex
}

func (l *unknownListener) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := m.GetProperty(events.EventIDProperty)
	if l.db.Exec("INSERT INTO tx_events (event_id, topic) VALUES (?, ?)", id, m.Topic).Error != nil {
		return primitive.RollbackMessageState
	}
	return primitive.UnknowState
}

func (l *unknownListener) CheckLocalTransaction(*primitive.MessageExt) primitive.LocalTransactionState {
	return primitive.UnknowState
}

// A lost commit is recovered by the check-back: the broker asks the
// producer group, and the Publisher answers from tx_events — commit for the
// event whose row exists, rollback for the one whose row does not.
func TestCheckBackAnswersFromTheDatabase(t *testing.T) {
	f := setup(t)
	orphan, err := rocketmq.NewTransactionProducer(&unknownListener{db: f.db},
		producer.WithNameServer(f.c.NamesrvAddrs()), producer.WithGroupName("tx_pg"),
		producer.WithInstanceName(bus.InstanceName("tx_pg")))
	require.NoError(t, err)
	require.NoError(t, orphan.Start())
	m, err := bus.NewMessage(topic, "k", "ev-lost-commit", 1)
	require.NoError(t, err)
	_, err = orphan.SendMessageInTransaction(context.Background(), m)
	require.NoError(t, err)
	require.NoError(t, orphan.Shutdown()) // the "dead" process: only the Publisher is left to ask

	// A half message whose local transaction never committed.
	var ghost sync.WaitGroup
	ghost.Add(1)
	orphan2, err := rocketmq.NewTransactionProducer(&ghostListener{done: &ghost},
		producer.WithNameServer(f.c.NamesrvAddrs()), producer.WithGroupName("tx_pg"),
		producer.WithInstanceName(bus.InstanceName("tx_pg")))
	require.NoError(t, err)
	require.NoError(t, orphan2.Start())
	m2, err := bus.NewMessage(topic, "k", "ev-never", 1)
	require.NoError(t, err)
	_, err = orphan2.SendMessageInTransaction(context.Background(), m2)
	require.NoError(t, err)
	ghost.Wait()
	require.NoError(t, orphan2.Shutdown())

	require.Equal(t, "ev-lost-commit", f.next(t))
	require.NoError(t, f.pub.Publish(context.Background(), topic, "k", "ev-marker", 1, insert("marker")))
	require.Equal(t, "ev-marker", f.next(t), "the half message without a row was rolled back")
}

type ghostListener struct{ done *sync.WaitGroup }

func (g *ghostListener) ExecuteLocalTransaction(*primitive.Message) primitive.LocalTransactionState {
	g.done.Done()
	return primitive.UnknowState
}

func (g *ghostListener) CheckLocalTransaction(*primitive.MessageExt) primitive.LocalTransactionState {
	return primitive.UnknowState
}
