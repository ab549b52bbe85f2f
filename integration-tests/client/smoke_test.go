package client

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	"github.com/stretchr/testify/require"

	"qianlang.io/mq/mqtest"
)

func TestMain(m *testing.M) {
	rlog.SetLogLevel("error")
	os.Exit(m.Run())
}

func TestSmokeSendAndConsume(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{})
	c.CreateTopic("Smoke", 4)
	p, err := rocketmq.NewProducer(producer.WithNameServer(c.NamesrvAddrs()), producer.WithGroupName("pg"))
	require.NoError(t, err)
	require.NoError(t, p.Start())
	defer p.Shutdown()
	for i := range 10 {
		r, err := p.SendSync(context.Background(), primitive.NewMessage("Smoke", []byte{byte(i)}))
		require.NoError(t, err)
		require.Equal(t, primitive.SendOK, r.Status)
	}
	var mu sync.Mutex
	got := map[byte]bool{}
	pc, err := rocketmq.NewPushConsumer(consumer.WithNameServer(c.NamesrvAddrs()), consumer.WithGroupName("cg"),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	require.NoError(t, err)
	require.NoError(t, pc.Subscribe("Smoke", consumer.MessageSelector{}, func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			got[m.Body[0]] = true
		}
		return consumer.ConsumeSuccess, nil
	}))
	require.NoError(t, pc.Start())
	defer pc.Shutdown()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 10 }, 20*time.Second, 50*time.Millisecond)
}
