package bus_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/mqtest"
	"qianlang.io/services/bus"
)

// Request-reply through two broker groups, and a handler that fails twice
// and succeeds on its third try in place, without going back to the queue.
// A reply is stored on either group; both know the requester from its
// first moments, so every request is answered, the first ones too.
func TestRequestReplyAndAttempts(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Brokers: 2})
	c.CreateTopic("AskT", 2)
	c.CreateTopic("FlakyT", 2)
	replies, err := bus.NewProducer(bus.ProducerOptions{NameServers: c.NamesrvAddrs(), Group: "replies_pg"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = replies.Close() })
	cons, err := bus.NewConsumer(bus.ConsumerOptions{NameServers: c.NamesrvAddrs(), Group: "answer_cg", Replies: replies})
	require.NoError(t, err)
	type q struct{ N int }
	require.NoError(t, cons.Respond("AskT", func(_ context.Context, m *bus.Message) (any, error) {
		var in q
		if err := m.Decode(&in); err != nil {
			return nil, err
		}
		return q{N: in.N * 2}, nil
	}))
	var tries atomic.Int32
	done := make(chan int32, 1)
	require.NoError(t, cons.Handle("FlakyT", func(_ context.Context, m *bus.Message) error {
		if n := tries.Add(1); n < 3 {
			return errors.New("flaky")
		}
		done <- m.Reconsume
		return nil
	}))
	require.NoError(t, cons.Start())
	t.Cleanup(func() { _ = cons.Close() })

	asker, err := bus.NewProducer(bus.ProducerOptions{NameServers: c.NamesrvAddrs(), Group: "ask_pg", RequestTopics: []string{"AskT"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = asker.Close() })
	for i := range 10 {
		var out q
		require.NoError(t, asker.Request(context.Background(), "AskT", "k", q{N: i}, &out, 10*time.Second), "request %d", i)
		require.Equal(t, 2*i, out.N)
	}

	require.NoError(t, asker.Send(context.Background(), "FlakyT", "k", "flaky:1", q{N: 1}))
	select {
	case reconsume := <-done:
		require.Equal(t, int32(0), reconsume, "succeeded in place, not through a redelivery")
		require.Equal(t, int32(3), tries.Load())
	case <-time.After(30 * time.Second):
		t.Fatal("flaky handler never succeeded")
	}
}
