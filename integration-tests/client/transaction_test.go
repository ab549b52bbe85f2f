package client

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

	"qianlang.io/mq/broker"
	"qianlang.io/mq/mqtest"
)

// txListener decides each local transaction by the body's prefix: "commit"
// and "rollback" at once, "late-commit" and "late-rollback" only when the
// broker checks back, "never" not at all.
type txListener struct {
	mu     sync.Mutex
	checks map[string]int
}

func outcomeOf(body string, checking bool) primitive.LocalTransactionState {
	switch {
	case strings.HasPrefix(body, "commit"):
		return primitive.CommitMessageState
	case strings.HasPrefix(body, "rollback"):
		return primitive.RollbackMessageState
	case checking && strings.HasPrefix(body, "late-commit"):
		return primitive.CommitMessageState
	case checking && strings.HasPrefix(body, "late-rollback"):
		return primitive.RollbackMessageState
	}
	return primitive.UnknowState
}

func (l *txListener) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	return outcomeOf(string(m.Body), false)
}

func (l *txListener) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	l.mu.Lock()
	l.checks[string(m.Body)]++
	l.mu.Unlock()
	return outcomeOf(string(m.Body), true)
}

func (l *txListener) checked(body string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checks[body]
}

func startTxProducer(t *testing.T, c *mqtest.Cluster, l *txListener) rocketmq.TransactionProducer {
	t.Helper()
	p, err := rocketmq.NewTransactionProducer(l,
		producer.WithNameServer(c.NamesrvAddrs()),
		producer.WithGroupName(unique("txpg")),
		producer.WithInstanceName(unique("txp")),
		producer.WithRetry(2))
	require.NoError(t, err)
	require.NoError(t, p.Start())
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

func fastChecks(_ int, cfg *broker.Config) {
	cfg.TransactionTimeOut = 500 * time.Millisecond
	cfg.TransactionCheckInterval = 300 * time.Millisecond
	cfg.TransactionCheckMax = 3
}

// Committed transactions reach consumers, rolled-back ones never do;
// unresolved ones are checked back and resolved by the producer's answer;
// one the producer never resolves is set aside after transactionCheckMax
// checks.
func TestTransactionalMessages(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3, Broker: fastChecks})
	c.CreateTopic("TxT", 4)
	col := newCollector()
	startPushConsumer(t, c, unique("cg"), "TxT", consumer.MessageSelector{}, col)
	l := &txListener{checks: map[string]int{}}
	p := startTxProducer(t, c, l)
	var committed []string
	for i := range 20 {
		for _, kind := range []string{"commit", "rollback", "late-commit", "late-rollback"} {
			body := fmt.Sprintf("%s-%d", kind, i)
			r, err := p.SendMessageInTransaction(context.Background(), primitive.NewMessage("TxT", []byte(body)))
			require.NoError(t, err)
			require.Equal(t, primitive.SendOK, r.Status)
			if strings.HasSuffix(kind, "commit") {
				committed = append(committed, body)
			}
		}
	}
	r, err := p.SendMessageInTransaction(context.Background(), primitive.NewMessage("TxT", []byte("never")))
	require.NoError(t, err)
	require.NotEmpty(t, r.TransactionID)

	col.waitAll(t, committed, 60*time.Second)
	require.Eventually(t, func() bool { return l.checked("never") >= 3 }, 30*time.Second, 50*time.Millisecond)
	time.Sleep(2 * time.Second) // time for anything wrongly released to arrive
	for _, b := range committed {
		require.Equal(t, 1, col.count(b), "%s delivered once", b)
	}
	require.Equal(t, len(committed), col.distinct(), "nothing rolled back or unresolved is visible")
	for i := range 20 {
		require.Zero(t, l.checked(fmt.Sprintf("commit-%d", i)), "a transaction resolved at once is not checked")
		require.Positive(t, l.checked(fmt.Sprintf("late-commit-%d", i)))
	}
	require.Equal(t, 3, l.checked("never"), "checked transactionCheckMax times, then set aside")

	held := newArrivals()
	c.WaitRoute(broker.TransCheckMax, 1)
	startPushConsumerFunc(t, c, unique("ops"), broker.TransCheckMax, held.handler, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	require.Eventually(t, func() bool { _, _, ok := held.get("never"); return ok }, 30*time.Second, 50*time.Millisecond,
		"the unresolved transaction is kept where an operator can inspect it")
	c.CheckGroup(0)
}

// Half messages and the checker's progress live in the replicated log and
// tables: transactions left open when the leader stops are checked and
// resolved by the new leader.
func TestTransactionsSurviveLeaderChange(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3, Broker: fastChecks})
	c.CreateTopic("TxFail", 4)
	col := newCollector()
	startPushConsumer(t, c, unique("cg"), "TxFail", consumer.MessageSelector{}, col)
	l := &txListener{checks: map[string]int{}}
	p := startTxProducer(t, c, l)
	var want []string
	for i := range 30 {
		body := fmt.Sprintf("late-commit-%d", i)
		_, err := p.SendMessageInTransaction(context.Background(), primitive.NewMessage("TxFail", []byte(body)))
		require.NoError(t, err)
		want = append(want, body)
	}
	old := c.Leader(0)
	c.StopBroker(old)
	col.waitAll(t, want, 90*time.Second)
	c.StartBroker(old)
	c.CheckGroup(0)
}
