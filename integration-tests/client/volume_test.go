package client

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/stretchr/testify/require"

	"qianlang.io/mq/mqtest"
)

// volumeCount is the number of messages of TestVolumeMixedSizes (100,000;
// VOLUME_MESSAGES overrides it for a quick local run).
func volumeCount() int {
	if n, err := strconv.Atoi(os.Getenv("VOLUME_MESSAGES")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// volumeBody builds message i: an 8-byte index, then pseudo-random bytes
// whose length (16 B to 64 KiB, most of them small) and content derive from
// i, so the consumer can rebuild and compare every body.
func volumeBody(i int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), 99))
	var size int
	switch x := r.IntN(100); {
	case x < 70:
		size = 16 + r.IntN(1024)
	case x < 95:
		size = 1024 + r.IntN(8*1024)
	default:
		size = 8*1024 + r.IntN(56*1024)
	}
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b, uint64(i))
	for j := 8; j < size; j++ {
		b[j] = byte(r.Uint32())
	}
	return b
}

// TestVolumeMixedSizes produces 100,000 messages of 16 B to 64 KiB (bodies
// of 4 KiB and more are zlib-compressed by the client) and consumes them
// all, checking every body byte for byte: nothing lost, nothing corrupted.
func TestVolumeMixedSizes(t *testing.T) {
	n := volumeCount()
	c := mqtest.Start(t, mqtest.Options{})
	c.CreateTopic("Volume", 8)
	p := startProducer(t, c)

	var (
		mu       sync.Mutex
		seen     = make([]bool, n)
		dups     atomic.Int64
		bad      atomic.Int64
		received atomic.Int64
	)
	handler := func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			if len(m.Body) < 8 {
				bad.Add(1)
				continue
			}
			i := int(binary.BigEndian.Uint64(m.Body))
			if i < 0 || i >= n || sha256.Sum256(m.Body) != sha256.Sum256(volumeBody(i)) {
				bad.Add(1)
				continue
			}
			mu.Lock()
			if seen[i] {
				dups.Add(1)
			} else {
				seen[i] = true
				received.Add(1)
			}
			mu.Unlock()
		}
		return consumer.ConsumeSuccess, nil
	}
	startPushConsumerFunc(t, c, unique("vol"), "Volume", handler, consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset), consumer.WithConsumeMessageBatchMaxSize(32))

	start := time.Now()
	const window = 256
	sem := make(chan struct{}, window)
	var sendErrs atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		err := p.SendAsync(context.Background(), func(_ context.Context, r *primitive.SendResult, err error) {
			defer func() { <-sem; wg.Done() }()
			if err != nil || r.Status != primitive.SendOK {
				sendErrs.Add(1)
			}
		}, primitive.NewMessage("Volume", volumeBody(i)))
		require.NoError(t, err)
	}
	wg.Wait()
	require.Zero(t, sendErrs.Load(), "sends failed")
	t.Logf("produced %d messages in %v", n, time.Since(start))

	require.Eventually(t, func() bool { return received.Load() == int64(n) || bad.Load() > 0 }, 5*time.Minute, 100*time.Millisecond,
		"received %d of %d", received.Load(), n)
	require.Zero(t, bad.Load(), "corrupted messages")
	t.Logf("consumed %d messages (%d redelivered) in %v", n, dups.Load(), time.Since(start))
	for i, ok := range seen {
		require.True(t, ok, fmt.Sprint("message ", i, " lost"))
	}
}
