package process

import (
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/stretchr/testify/require"
)

// receipts records when each body was first received and how often.
type receipts struct {
	mu    sync.Mutex
	first map[string]time.Time
	count map[string]int
}

func (r *receipts) add(msgs ...*primitive.MessageExt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for _, m := range msgs {
		b := string(m.Body)
		if _, ok := r.first[b]; !ok {
			r.first[b] = now
		}
		r.count[b]++
	}
}

func (r *receipts) missing(want []string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, b := range want {
		if r.count[b] == 0 {
			out = append(out, b)
		}
	}
	return out
}

// TestKill9SyncFlushLosesNoAcknowledgedMessage kills the broker with
// SIGKILL while producers send with SYNC_FLUSH and a consumer consumes,
// restarts it on the same store, and checks that every send that returned
// SEND_OK is consumed, and that the consumer resumed from its committed
// offsets: only messages received shortly before the kill come again.
func TestKill9SyncFlushLosesNoAcknowledgedMessage(t *testing.T) {
	c := startCluster(t, nil, []string{"flushDiskType=SYNC_FLUSH", "flushConsumerOffsetInterval=1000"})
	c.createTopic(t, "Crash", 4)

	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{c.nsAddr}), producer.WithGroupName("crash_pg"), producer.WithRetry(0))
	require.NoError(t, err)
	require.NoError(t, p.Start())
	defer p.Shutdown()

	rc, pc := consumeFromFirst(t, []string{c.nsAddr}, "Crash", "crash_cg")
	defer pc.Shutdown()
	l := startLoad(p, "Crash", 4)

	// Run long enough for several offset commits before the crash.
	time.Sleep(8 * time.Second)
	require.Greater(t, l.count(), 500)
	killAt := time.Now()
	c.broker.kill9()
	ackedAtKill := l.count()
	time.Sleep(500 * time.Millisecond)
	c.broker.restart()
	waitListening(t, c.brokerAddr)
	require.Eventually(t, func() bool { return l.count() > ackedAtKill+500 }, 60*time.Second, 100*time.Millisecond, "sends resume after the restart")
	all := l.finish()
	t.Logf("acknowledged %d sends (%d before the kill), %d failed", len(all), ackedAtKill, l.failed.Load())
	require.Eventually(t, func() bool { return len(rc.missing(all)) == 0 }, 90*time.Second, 200*time.Millisecond,
		"acknowledged messages not consumed: %d, e.g. %v", len(rc.missing(all)), head(rc.missing(all), 5))

	// At-least-once with committed offsets: a message consumed again was
	// first received at most a few offset-commit intervals (client 5 s,
	// broker 1 s) before the kill.
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var dups, early int
	for b, n := range rc.count {
		if n > 1 {
			dups++
			if rc.first[b].Before(killAt.Add(-8 * time.Second)) {
				early++
			}
		}
	}
	t.Logf("%d messages consumed more than once", dups)
	require.Zero(t, early, "messages consumed long before the kill came again: the consumer did not resume from its committed offsets")
}

func head(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// TestBrokerSilenceAndDeath shows the NameServer's two ways of dropping a
// broker: a frozen broker (no heartbeats, connection open) leaves the
// routes after the expiry time and returns when it thaws; a killed broker
// leaves at once, when its connection closes.
func TestBrokerSilenceAndDeath(t *testing.T) {
	c := startCluster(t,
		[]string{"scanNotActiveBrokerInterval=200", "brokerChannelExpiredTime=3000"},
		[]string{"registerNameServerPeriod=500"})
	c.createTopic(t, "Silence", 2)

	c.broker.signal(syscall.SIGSTOP)
	time.Sleep(time.Second)
	c.waitRoute(t, "Silence", true, time.Second) // still routed within the expiry
	c.waitRoute(t, "Silence", false, 15*time.Second)

	c.broker.signal(syscall.SIGCONT)
	c.waitRoute(t, "Silence", true, 10*time.Second)

	c.broker.kill9()
	c.waitRoute(t, "Silence", false, 2*time.Second)
}
