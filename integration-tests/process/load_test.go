package process

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/stretchr/testify/require"
)

// load is producers sending numbered messages with SendSync without pause,
// recording which were acknowledged.
type load struct {
	mu       sync.Mutex
	acked    []string
	ackedAt  []time.Time    // guarded by mu: when each of acked was acknowledged
	byBroker map[string]int // guarded by mu: acknowledgements per broker name
	failed   atomic.Int64
	marked   atomic.Bool  // set by mark
	resumed  atomic.Int64 // unix ns of the first acknowledgement after mark
	stop     chan struct{}
	wg       sync.WaitGroup
}

// startLoad starts workers goroutines sending to topic through p.
func startLoad(p rocketmq.Producer, topic string, workers int) *load {
	l := &load{stop: make(chan struct{}), byBroker: map[string]int{}}
	for w := range workers {
		l.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				b := fmt.Sprintf("w%d-%d", w, i)
				r, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(b)))
				if err != nil || r.Status != primitive.SendOK {
					l.failed.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				l.mu.Lock()
				l.acked = append(l.acked, b)
				l.ackedAt = append(l.ackedAt, time.Now())
				l.byBroker[r.MessageQueue.BrokerName]++
				l.mu.Unlock()
				if l.marked.Load() {
					l.resumed.CompareAndSwap(0, time.Now().UnixNano())
				}
			}
		})
	}
	return l
}

func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// brokerCount is how many sends brokerName acknowledged so far.
func (l *load) brokerCount(brokerName string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byBroker[brokerName]
}

// longestPause is the longest time between two acknowledgements (or
// between from and the first one) from from to to.
func (l *load) longestPause(from, to time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var longest time.Duration
	prev := from
	for _, at := range l.ackedAt {
		if at.Before(from) {
			continue
		}
		if at.After(to) {
			break
		}
		longest = max(longest, at.Sub(prev))
		prev = at
	}
	return max(longest, to.Sub(prev))
}

// mark notes a fault: resumedAfter then tells when the first send after it
// was acknowledged.
func (l *load) mark() { l.marked.Store(true) }

func (l *load) resumedAfter(at time.Time) time.Duration {
	return time.Unix(0, l.resumed.Load()).Sub(at)
}

// finish stops the senders and returns every acknowledged body.
func (l *load) finish() []string {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.acked...)
}

// consumeFromFirst starts a clustering push consumer of a new group on
// topic, from the first offset, recording what it receives. nsAddrs is the
// whole NameServer list: the client refuses a second instance in the same
// process that names a different list.
func consumeFromFirst(t *testing.T, nsAddrs []string, topic, group string) (*receipts, rocketmq.PushConsumer) {
	t.Helper()
	rc := &receipts{first: map[string]time.Time{}, count: map[string]int{}}
	pc, err := rocketmq.NewPushConsumer(consumer.WithNameServer(nsAddrs), consumer.WithGroupName(fmt.Sprint(group, "_", time.Now().UnixNano())),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	require.NoError(t, err)
	require.NoError(t, pc.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		rc.add(msgs...)
		return consumer.ConsumeSuccess, nil
	}))
	require.NoError(t, pc.Start())
	return rc, pc
}
