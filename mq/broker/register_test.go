package broker

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
)

// slowNamesrv answers REGISTER_BROKER after a pause and records how many
// registrations were in flight at once and the topics of the last one.
type slowNamesrv struct {
	inFlight, most atomic.Int32
	mu             sync.Mutex
	last           map[string]protocol.TopicConfig
}

func (n *slowNamesrv) ServeRemoting(_ context.Context, _ *remoting.Conn, req *remoting.Command) *remoting.Command {
	if req.Code != remoting.RegisterBroker {
		return req.Response(remoting.Success, "")
	}
	now := n.inFlight.Add(1)
	defer n.inFlight.Add(-1)
	for {
		m := n.most.Load()
		if now <= m || n.most.CompareAndSwap(m, now) {
			break
		}
	}
	var body protocol.RegisterBrokerBody
	if err := protocol.Decode(req.Body, "register body", &body); err != nil {
		return req.Errorf(remoting.SystemError, "%v", err)
	}
	time.Sleep(30 * time.Millisecond)
	n.mu.Lock()
	n.last = body.TopicConfigSerializeWrapper.TopicConfigTable
	n.mu.Unlock()
	return req.Response(remoting.Success, "")
}

// Registrations from the periodic loop and from a topic change never
// overlap, so the NameServer's last word is the newest topic table.
func TestRegistrationsAreOrdered(t *testing.T) {
	ns := &slowNamesrv{}
	srv := remoting.NewServer(ns, remoting.ServerOptions{})
	require.NoError(t, srv.Listen("127.0.0.1:0"))
	t.Cleanup(func() { _ = srv.Close() })

	cfg := DefaultConfig()
	cfg.BrokerName = "broker-a"
	cfg.BrokerIP1 = "127.0.0.1"
	cfg.ListenPort = 0
	cfg.StorePathRootDir = t.TempDir()
	cfg.NamesrvAddr = srv.Addr().String()
	b, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, b.Start())
	t.Cleanup(func() { _ = b.Close() })

	var wg sync.WaitGroup
	for range 3 {
		wg.Go(b.registerAll) // the periodic loop's snapshots, without the topic
	}
	wg.Go(func() {
		_, err := b.topics.Put(protocol.TopicConfig{TopicName: "Ordered", ReadQueueNums: 4, WriteQueueNums: 4, Perm: protocol.PermRead | protocol.PermWrite})
		require.NoError(t, err)
		b.registerAll()
	})
	wg.Wait()
	require.EqualValues(t, 1, ns.most.Load(), "registrations overlapped")
	ns.mu.Lock()
	defer ns.mu.Unlock()
	require.Contains(t, ns.last, "Ordered", "an older topic table landed after the newer one")
}
