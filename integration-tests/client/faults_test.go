package client

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/stretchr/testify/require"

	"qianlang.io/mq/broker"
	"qianlang.io/mq/mqtest"
	"qianlang.io/mq/vfs"
)

// TestDiskFullAndDiskErrors makes the broker's disk full, then failing,
// through the vfs seam: sends get a clear error, nothing stored before is
// damaged, and sending works again once the disk recovers.
func TestDiskFullAndDiskErrors(t *testing.T) {
	efs := vfs.NewErrorFS(vfs.Default)
	c := mqtest.Start(t, mqtest.Options{Broker: func(_ int, cfg *broker.Config) {
		cfg.FS = efs
		cfg.CleanResourceInterval = 100 * time.Millisecond
	}})
	c.CreateTopic("Disk", 2)
	p := startProducer(t, c, producer.WithRetry(1))
	ctx := context.Background()
	before := bodies("before", 50)
	sendAll(t, p, "Disk", before, "")

	efs.Full()
	for i := range 5 {
		_, err := p.SendSync(ctx, primitive.NewMessage("Disk", []byte(fmt.Sprint("full-", i))))
		require.Error(t, err)
		require.Contains(t, err.Error(), "CODE: 14", "SERVICE_NOT_AVAILABLE")
		require.Contains(t, err.Error(), "disk")
	}
	efs.NotFull()
	var middle []string
	require.Eventually(t, func() bool {
		b := fmt.Sprint("middle-", len(middle))
		_, err := p.SendSync(ctx, primitive.NewMessage("Disk", []byte(b)))
		if err == nil {
			middle = append(middle, b)
		}
		return err == nil
	}, 5*time.Second, 50*time.Millisecond, "sends resume when space returns")

	efs.Inject(vfs.OpWrite, func(p string) bool { return strings.Contains(p, "commitlog") }, syscall.EIO)
	_, err := p.SendSync(ctx, primitive.NewMessage("Disk", []byte("eio")))
	require.Error(t, err)
	require.Contains(t, err.Error(), "CODE: 1", "SYSTEM_ERROR")
	efs.Clear()
	after := bodies("after", 50)
	sendAll(t, p, "Disk", after, "")

	col := newCollector()
	startPushConsumer(t, c, unique("disk"), "Disk", consumer.MessageSelector{}, col, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	want := append(append(append([]string{}, before...), middle...), after...)
	col.waitAll(t, want, 30*time.Second)
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, len(want), col.distinct(), "only acknowledged messages were stored")
}

// TestOneOfTwoNamesrvsStopped keeps producing and consuming after one of
// two NameServers stops, and starts new clients against the pair.
func TestOneOfTwoNamesrvsStopped(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Namesrvs: 2})
	c.CreateTopic("TwoNS", 4)
	p := startProducer(t, c)
	col := newCollector()
	startPushConsumer(t, c, unique("ns"), "TwoNS", consumer.MessageSelector{}, col, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	first := bodies("first", 50)
	sendAll(t, p, "TwoNS", first, "")
	col.waitAll(t, first, 30*time.Second)

	c.StopNamesrv(0)
	second := bodies("second", 50)
	sendAll(t, p, "TwoNS", second, "")
	col.waitAll(t, second, 30*time.Second)

	// Clients started now still find routes through the live NameServer.
	p2 := startProducer(t, c)
	third := bodies("third", 50)
	sendAll(t, p2, "TwoNS", third, "")
	col2 := newCollector()
	startPushConsumer(t, c, unique("ns2"), "TwoNS", consumer.MessageSelector{}, col2, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	col2.waitAll(t, append(append(append([]string{}, first...), second...), third...), 30*time.Second)
	col.waitAll(t, third, 30*time.Second)
}

// TestProducerFailsOverToTheOtherBroker stops one of two broker groups:
// the stopped broker leaves the route at once, and sends keep succeeding
// on the other group — through the client's retries for a producer that
// still holds the old route (it refreshes routes every 30 s), and directly
// for a new producer.
func TestProducerFailsOverToTheOtherBroker(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Brokers: 2})
	c.CreateTopic("Failover", 4)
	// Four attempts cover the stopped group's four queues in the client's
	// round-robin selection.
	p := startProducer(t, c, producer.WithRetry(4))
	sendAll(t, p, "Failover", bodies("a", 40), "")
	c.StopBroker(1)
	require.Eventually(t, func() bool {
		rd, err := c.Admin().Route(context.Background(), "Failover")
		return err == nil && len(rd.QueueDatas) == 1
	}, 10*time.Second, 50*time.Millisecond)
	for _, pr := range []rocketmq.Producer{p, startProducer(t, c)} {
		for i := range 40 {
			r, err := pr.SendSync(context.Background(), primitive.NewMessage("Failover", []byte(fmt.Sprint("b-", i))))
			require.NoError(t, err)
			require.Equal(t, "broker-a", r.MessageQueue.BrokerName)
		}
	}
}
