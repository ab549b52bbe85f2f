package namesrv

import (
	"sort"
	"sync"
	"time"

	"qianlang.io/mq/protocol"
)

// registration is what a broker tells the NameServer about itself.
type registration struct {
	Cluster      string
	BrokerName   string
	BrokerAddr   string
	BrokerID     int64
	HAServerAddr string
	Timeout      time.Duration // 0: the NameServer's default
	Topics       map[string]protocol.TopicConfig
	DataVersion  protocol.DataVersion
	ConnID       uint64 // connection it arrived on
	// Term is the Raft term of a replicated group's member (0 for a
	// broker outside a group). A leader (brokerId 0) registering with a
	// term older than the group's newest leader is stale: it has not yet
	// noticed that it was replaced, and must not take the master slot back.
	Term uint64
}

// liveBroker is the liveness record of one broker address.
type liveBroker struct {
	cluster     string
	brokerName  string
	lastSeen    time.Time
	timeout     time.Duration
	connID      uint64
	dataVersion protocol.DataVersion
	haAddr      string
}

// routes is the NameServer's table of clusters, brokers and topics, kept
// under one lock. The master (brokerId 0) of a broker group is the
// authority on the group's topics: each of its registrations replaces the
// group's queue data.
type routes struct {
	mu       sync.RWMutex
	topics   map[string]map[string]protocol.QueueData // topic → brokerName → queues
	brokers  map[string]*protocol.BrokerData          // brokerName → addresses
	clusters map[string]map[string]struct{}           // cluster → brokerNames
	live     map[string]*liveBroker                   // brokerAddr → liveness
	terms    map[string]uint64                        // brokerName → term of its newest leader
}

func newRoutes() *routes {
	return &routes{
		topics:   make(map[string]map[string]protocol.QueueData),
		brokers:  make(map[string]*protocol.BrokerData),
		clusters: make(map[string]map[string]struct{}),
		live:     make(map[string]*liveBroker),
		terms:    make(map[string]uint64),
	}
}

// register records a broker registration at now and reports whether it was
// new or changed the broker's address or role.
func (r *routes) register(reg registration, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clusters[reg.Cluster] == nil {
		r.clusters[reg.Cluster] = make(map[string]struct{})
	}
	r.clusters[reg.Cluster][reg.BrokerName] = struct{}{}
	bd := r.brokers[reg.BrokerName]
	if bd == nil {
		bd = &protocol.BrokerData{Cluster: reg.Cluster, BrokerName: reg.BrokerName, BrokerAddrs: make(map[int64]string)}
		r.brokers[reg.BrokerName] = bd
	}
	if reg.BrokerID == 0 && reg.Term > 0 {
		// Only a master that still holds the slot can keep a stale one
		// out: a group rebuilt from empty stores starts again at term 1.
		holder, held := bd.BrokerAddrs[0]
		if held && holder != reg.BrokerAddr && reg.Term < r.terms[reg.BrokerName] {
			if lb := r.live[reg.BrokerAddr]; lb != nil {
				lb.lastSeen = now
			}
			return false
		}
		r.terms[reg.BrokerName] = reg.Term
	}
	changed := bd.BrokerAddrs[reg.BrokerID] != reg.BrokerAddr
	for id, addr := range bd.BrokerAddrs {
		// An address re-registered under a new id (a role change) replaces
		// its old id; so does a new address under an old id.
		if addr == reg.BrokerAddr && id != reg.BrokerID {
			delete(bd.BrokerAddrs, id)
		}
	}
	if old, ok := bd.BrokerAddrs[reg.BrokerID]; ok && old != reg.BrokerAddr {
		delete(r.live, old)
	}
	bd.BrokerAddrs[reg.BrokerID] = reg.BrokerAddr
	if reg.BrokerID == 0 {
		r.replaceTopicsLocked(reg.BrokerName, reg.Topics)
	}
	r.live[reg.BrokerAddr] = &liveBroker{
		cluster: reg.Cluster, brokerName: reg.BrokerName, lastSeen: now, timeout: reg.Timeout,
		connID: reg.ConnID, dataVersion: reg.DataVersion, haAddr: reg.HAServerAddr,
	}
	return changed
}

func (r *routes) replaceTopicsLocked(brokerName string, topics map[string]protocol.TopicConfig) {
	for topic, byBroker := range r.topics {
		if _, ok := topics[topic]; !ok {
			delete(byBroker, brokerName)
			if len(byBroker) == 0 {
				delete(r.topics, topic)
			}
		}
	}
	for name, tc := range topics {
		if r.topics[name] == nil {
			r.topics[name] = make(map[string]protocol.QueueData)
		}
		r.topics[name][brokerName] = protocol.QueueData{
			BrokerName: brokerName, ReadQueueNums: tc.ReadQueueNums, WriteQueueNums: tc.WriteQueueNums,
			Perm: tc.Perm, TopicSysFlag: tc.TopicSysFlag,
		}
	}
}

// heartbeat refreshes a registered broker's liveness; it reports false for
// an unknown address.
func (r *routes) heartbeat(addr string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	lb := r.live[addr]
	if lb == nil {
		return false
	}
	lb.lastSeen = now
	return true
}

// unregister removes one broker address.
func (r *routes) unregister(brokerName, addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removeLocked(brokerName, addr)
}

// removeLocked drops addr from brokerName; a broker group left without
// addresses disappears with its queue data, and so do topics left empty.
func (r *routes) removeLocked(brokerName, addr string) {
	delete(r.live, addr)
	bd := r.brokers[brokerName]
	if bd == nil {
		return
	}
	for id, a := range bd.BrokerAddrs {
		if a == addr {
			delete(bd.BrokerAddrs, id)
		}
	}
	if len(bd.BrokerAddrs) > 0 {
		return
	}
	delete(r.brokers, brokerName)
	if names := r.clusters[bd.Cluster]; names != nil {
		delete(names, brokerName)
		if len(names) == 0 {
			delete(r.clusters, bd.Cluster)
		}
	}
	for topic, byBroker := range r.topics {
		delete(byBroker, brokerName)
		if len(byBroker) == 0 {
			delete(r.topics, topic)
		}
	}
}

// expire removes the brokers silent for longer than their timeout (def when
// they gave none) and returns their addresses.
func (r *routes) expire(now time.Time, def time.Duration) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var gone []string
	for addr, lb := range r.live {
		timeout := lb.timeout
		if timeout <= 0 {
			timeout = def
		}
		if now.Sub(lb.lastSeen) > timeout {
			gone = append(gone, addr)
			r.removeLocked(lb.brokerName, addr)
		}
	}
	return gone
}

// dropConn removes the brokers that registered over connection id.
func (r *routes) dropConn(id uint64) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var gone []string
	for addr, lb := range r.live {
		if lb.connID == id {
			gone = append(gone, addr)
			r.removeLocked(lb.brokerName, addr)
		}
	}
	return gone
}

// route builds a topic's route; ok is false when the topic has no queue
// data or none of its brokers is known.
func (r *routes) route(topic string) (protocol.TopicRouteData, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rd := protocol.TopicRouteData{QueueDatas: []protocol.QueueData{}, BrokerDatas: []protocol.BrokerData{}, FilterServerTable: map[string][]string{}}
	for name, qd := range r.topics[topic] {
		bd := r.brokers[name]
		if bd == nil {
			continue
		}
		rd.QueueDatas = append(rd.QueueDatas, qd)
		rd.BrokerDatas = append(rd.BrokerDatas, copyBroker(bd))
	}
	sort.Slice(rd.QueueDatas, func(i, j int) bool { return rd.QueueDatas[i].BrokerName < rd.QueueDatas[j].BrokerName })
	sort.Slice(rd.BrokerDatas, func(i, j int) bool { return rd.BrokerDatas[i].BrokerName < rd.BrokerDatas[j].BrokerName })
	return rd, len(rd.QueueDatas) > 0 && len(rd.BrokerDatas) > 0
}

func copyBroker(bd *protocol.BrokerData) protocol.BrokerData {
	c := *bd
	c.BrokerAddrs = make(map[int64]string, len(bd.BrokerAddrs))
	for id, a := range bd.BrokerAddrs {
		c.BrokerAddrs[id] = a
	}
	return c
}

// clusterInfo returns every cluster and broker group.
func (r *routes) clusterInfo() protocol.ClusterInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ci := protocol.ClusterInfo{BrokerAddrTable: make(map[string]protocol.BrokerData), ClusterAddrTable: make(map[string][]string)}
	for name, bd := range r.brokers {
		ci.BrokerAddrTable[name] = copyBroker(bd)
	}
	for cluster, names := range r.clusters {
		list := make([]string, 0, len(names))
		for n := range names {
			list = append(list, n)
		}
		sort.Strings(list)
		ci.ClusterAddrTable[cluster] = list
	}
	return ci
}

// topicList returns every topic, or those of one cluster, sorted.
func (r *routes) topicList(cluster string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := []string{}
	for topic, byBroker := range r.topics {
		if cluster != "" {
			found := false
			for name := range byBroker {
				if _, ok := r.clusters[cluster][name]; ok {
					found = true
				}
			}
			if !found {
				continue
			}
		}
		out = append(out, topic)
	}
	sort.Strings(out)
	return out
}

// deleteTopic removes a topic, from one cluster's brokers or everywhere.
func (r *routes) deleteTopic(topic, cluster string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cluster == "" {
		delete(r.topics, topic)
		return
	}
	for name := range r.clusters[cluster] {
		delete(r.topics[topic], name)
	}
	if len(r.topics[topic]) == 0 {
		delete(r.topics, topic)
	}
}

// masterHA returns the HA address and master address of a broker group.
func (r *routes) masterHA(brokerName string) (ha, master string) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	bd := r.brokers[brokerName]
	if bd == nil {
		return "", ""
	}
	master = bd.BrokerAddrs[0]
	if lb := r.live[master]; lb != nil {
		ha = lb.haAddr
	}
	return ha, master
}
