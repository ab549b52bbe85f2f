package broker

import (
	"context"
	"strconv"
	"sync"

	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
)

// requestRegister asks the loop to register now.
func (b *Broker) requestRegister() { wake(b.registerWake) }

// registerAll sends REGISTER_BROKER to every NameServer in parallel.
func (b *Broker) registerAll() {
	b.registerMu.Lock()
	defer b.registerMu.Unlock()
	id := b.registeredID()
	if id < 0 {
		return // a group member that does not know its role yet
	}
	topics, version := b.topics.Snapshot()
	body := protocol.Encode(protocol.RegisterBrokerBody{
		TopicConfigSerializeWrapper: protocol.TopicConfigWrapper{TopicConfigTable: topics, DataVersion: version},
		FilterServerList:            []string{},
	})
	fields := remoting.Fields{
		{Key: "brokerName", Value: b.cfg.BrokerName},
		{Key: "brokerAddr", Value: b.addr},
		{Key: "clusterName", Value: b.cfg.BrokerClusterName},
		{Key: "haServerAddr", Value: b.addr},
		{Key: "brokerId", Value: strconv.FormatInt(id, 10)},
		{Key: "compressed", Value: "false"},
		{Key: "bodyCrc32", Value: "0"},
	}
	if b.member != nil {
		fields = append(fields, remoting.Field{Key: "raftTerm", Value: strconv.FormatUint(b.member.Term(), 10)})
	}
	b.eachNamesrv(func(ctx context.Context, addr string) {
		resp, err := b.ns.Invoke(ctx, addr, remoting.NewRequest(remoting.RegisterBroker, append(remoting.Fields(nil), fields...), body))
		if err == nil {
			err = resp.AsError()
		}
		if err != nil {
			b.stats.registerFail.Add(1)
			b.log.Warn("register with name server failed", "namesrv", addr, "err", err)
			return
		}
		b.stats.registerOK.Add(1)
	})
}

// unregisterAll sends UNREGISTER_BROKER to every NameServer.
func (b *Broker) unregisterAll() {
	if b.addr == "" {
		return
	}
	b.registerMu.Lock()
	defer b.registerMu.Unlock()
	b.eachNamesrv(func(ctx context.Context, addr string) {
		req := remoting.NewRequest(remoting.UnregisterBroker, remoting.Fields{
			{Key: "brokerName", Value: b.cfg.BrokerName}, {Key: "brokerAddr", Value: b.addr},
			{Key: "clusterName", Value: b.cfg.BrokerClusterName}, {Key: "brokerId", Value: strconv.FormatInt(max(b.registeredID(), 0), 10)},
		}, nil)
		if _, err := b.ns.Invoke(ctx, addr, req); err != nil {
			b.log.Warn("unregister from name server failed", "namesrv", addr, "err", err)
		}
	})
}

func (b *Broker) eachNamesrv(fn func(ctx context.Context, addr string)) {
	var wg sync.WaitGroup
	for _, addr := range splitAddrs(b.cfg.NamesrvAddr) {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), b.cfg.RegisterBrokerTimeout)
			defer cancel()
			fn(ctx, addr)
		})
	}
	wg.Wait()
}
