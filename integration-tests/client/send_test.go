package client

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/stretchr/testify/require"

	"qianlang.io/mq/message"
	"qianlang.io/mq/mqtest"
)

// TestSendModes sends with every mode of the official client (sync, async,
// oneway, batch) and consumes everything back.
func TestSendModes(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{})
	c.CreateTopic("SendModes", 4)
	p := startProducer(t, c)
	ctx := context.Background()
	var want []string

	syncBodies := bodies("sync", 40)
	for _, b := range syncBodies {
		m := primitive.NewMessage("SendModes", []byte(b))
		m.WithKeys([]string{"key-" + b})
		r, err := p.SendSync(ctx, m)
		require.NoError(t, err)
		require.Equal(t, primitive.SendOK, r.Status)
		require.Len(t, r.MsgID, 32, "MsgID is the client's UNIQ_KEY")
		_, off, err := message.ParseOffsetMsgID(r.OffsetMsgID)
		require.NoError(t, err, "OffsetMsgID %q", r.OffsetMsgID)
		require.Positive(t, off)
	}
	want = append(want, syncBodies...)

	asyncBodies := bodies("async", 40)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var asyncErrs []error
	for _, b := range asyncBodies {
		wg.Add(1)
		err := p.SendAsync(ctx, func(_ context.Context, r *primitive.SendResult, err error) {
			defer wg.Done()
			if err == nil && r.Status != primitive.SendOK {
				err = fmt.Errorf("status %v", r.Status)
			}
			if err != nil {
				mu.Lock()
				asyncErrs = append(asyncErrs, err)
				mu.Unlock()
			}
		}, primitive.NewMessage("SendModes", []byte(b)))
		require.NoError(t, err)
	}
	wg.Wait()
	require.Empty(t, asyncErrs)
	want = append(want, asyncBodies...)

	onewayBodies := bodies("oneway", 40)
	for _, b := range onewayBodies {
		require.NoError(t, p.SendOneWay(ctx, primitive.NewMessage("SendModes", []byte(b))))
	}
	want = append(want, onewayBodies...)

	for i := range 5 {
		batch := bodies(fmt.Sprintf("batch%d", i), 10)
		msgs := make([]*primitive.Message, len(batch))
		for j, b := range batch {
			msgs[j] = primitive.NewMessage("SendModes", []byte(b))
		}
		r, err := p.SendSync(ctx, msgs...)
		require.NoError(t, err)
		require.Equal(t, primitive.SendOK, r.Status)
		want = append(want, batch...)
	}

	col := newCollector()
	startPushConsumer(t, c, unique("cg"), "SendModes", consumer.MessageSelector{}, col, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	col.waitAll(t, want, 30*time.Second)
	require.Equal(t, len(want), col.distinct())
}

// TestSendToUnknownTopicAutoCreates sends to a topic nobody created: the
// client falls back to TBW102's route and the broker creates the topic.
func TestSendToUnknownTopicAutoCreates(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{})
	p := startProducer(t, c)
	r, err := p.SendSync(context.Background(), primitive.NewMessage("AutoCreated", []byte("x")))
	require.NoError(t, err)
	require.Equal(t, primitive.SendOK, r.Status)
	c.WaitRoute("AutoCreated", 1)
	rd, err := c.Admin().Route(context.Background(), "AutoCreated")
	require.NoError(t, err)
	require.Equal(t, 4, rd.QueueDatas[0].WriteQueueNums, "the Go client asks for 4 queues")
}
