package broker

import (
	"sort"
	"sync"
	"time"

	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
)

// clientChannel is one client connection of a group.
type clientChannel struct {
	clientID string
	conn     *remoting.Conn
	language string
	version  int32
	lastSeen time.Time
}

// consumerGroup is the live membership and subscriptions of a group.
type consumerGroup struct {
	name             string
	consumeType      string
	messageModel     string
	consumeFromWhere string
	channels         map[uint64]*clientChannel // by connection id
	subs             map[string]protocol.SubscriptionData
}

// clientTable tracks the producer and consumer groups of live client
// connections, from their heartbeats. A client leaves when its connection
// closes or its heartbeats stop for the channel expiry time; the Go client
// never unregisters.
type clientTable struct {
	mu        sync.RWMutex
	consumers map[string]*consumerGroup            // group → members
	producers map[string]map[uint64]*clientChannel // group → conn id → channel
	byConn    map[uint64]map[string]bool           // conn id → groups (consumer: "c:"+g, producer "p:"+g)
	// requesters maps the client id of a request-reply requester to the
	// connection its requests came in on ("r:"+id in byConn), so a reply
	// reaches it before its first heartbeat. The Go client heartbeats on a
	// first request only for a topic the NameServers do not know yet, so
	// without this its replies are lost until the periodic heartbeat, up to
	// 30 s later.
	requesters map[string]*remoting.Conn
}

func newClientTable() *clientTable {
	return &clientTable{
		consumers:  make(map[string]*consumerGroup),
		producers:  make(map[string]map[uint64]*clientChannel),
		byConn:     make(map[uint64]map[string]bool),
		requesters: make(map[string]*remoting.Conn),
	}
}

// noteRequester records the connection a request message came in on.
func (t *clientTable) noteRequester(clientID string, c *remoting.Conn) {
	t.mu.RLock()
	known := t.requesters[clientID] == c
	t.mu.RUnlock()
	if known {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requesters[clientID] = c
	t.linkLocked(c.ID(), "r:"+clientID)
}

// consumerHeartbeat registers or refreshes a consumer and reports whether
// the group changed in a way its members must rebalance for: a new member
// or a changed set of subscribed topics.
func (t *clientTable) consumerHeartbeat(ch *clientChannel, cd protocol.ConsumerData) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.consumers[cd.GroupName]
	if g == nil {
		g = &consumerGroup{name: cd.GroupName, channels: make(map[uint64]*clientChannel), subs: make(map[string]protocol.SubscriptionData)}
		t.consumers[cd.GroupName] = g
	}
	g.consumeType, g.messageModel, g.consumeFromWhere = cd.ConsumeType, cd.MessageModel, cd.ConsumeFromWhere
	changed := false
	if old, ok := g.channels[ch.conn.ID()]; ok && old.clientID == ch.clientID {
		old.lastSeen = ch.lastSeen
	} else {
		g.channels[ch.conn.ID()] = ch
		changed = true
	}
	newSubs := make(map[string]protocol.SubscriptionData, len(cd.SubscriptionDataSet))
	for _, s := range cd.SubscriptionDataSet {
		newSubs[s.Topic] = s
	}
	if !sameTopics(g.subs, newSubs) {
		changed = true
	}
	g.subs = newSubs
	t.linkLocked(ch.conn.ID(), "c:"+cd.GroupName)
	return changed
}

func sameTopics(a, b map[string]protocol.SubscriptionData) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

func (t *clientTable) producerHeartbeat(ch *clientChannel, group string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.producers[group]
	if m == nil {
		m = make(map[uint64]*clientChannel)
		t.producers[group] = m
	}
	if old, ok := m[ch.conn.ID()]; ok {
		old.lastSeen = ch.lastSeen
	} else {
		m[ch.conn.ID()] = ch
	}
	t.linkLocked(ch.conn.ID(), "p:"+group)
}

// keepProducers drops the producer groups registered on connection connID
// that are not in groups. A heartbeat lists every producer group of its
// client; the Go client never unregisters a producer it shut down, so a
// group left out of a heartbeat is gone, and left in the table it would
// expire later and take the connection, which the client's other
// producers and consumers share, down with it.
func (t *clientTable) keepProducers(connID uint64, groups map[string]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for key := range t.byConn[connID] {
		if key[:2] != "p:" || groups[key[2:]] {
			continue
		}
		group := key[2:]
		delete(t.producers[group], connID)
		if len(t.producers[group]) == 0 {
			delete(t.producers, group)
		}
		delete(t.byConn[connID], key)
	}
}

func (t *clientTable) linkLocked(connID uint64, key string) {
	m := t.byConn[connID]
	if m == nil {
		m = make(map[string]bool)
		t.byConn[connID] = m
	}
	m[key] = true
}

// removeConn drops a closed connection and returns the consumer groups it
// left.
func (t *clientTable) removeConn(connID uint64) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var left []string
	for key := range t.byConn[connID] {
		kind, group := key[:2], key[2:]
		if kind == "r:" {
			if c := t.requesters[group]; c != nil && c.ID() == connID {
				delete(t.requesters, group)
			}
			continue
		}
		if kind == "p:" {
			delete(t.producers[group], connID)
			if len(t.producers[group]) == 0 {
				delete(t.producers, group)
			}
			continue
		}
		if g := t.consumers[group]; g != nil {
			delete(g.channels, connID)
			left = append(left, group)
			if len(g.channels) == 0 {
				delete(t.consumers, group)
			}
		}
	}
	delete(t.byConn, connID)
	return left
}

// unregister removes a client from a group (UNREGISTER_CLIENT) and reports
// whether it was a member.
func (t *clientTable) unregister(connID uint64, consumerGroup, producerGroup string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	found := false
	if g := t.consumers[consumerGroup]; g != nil {
		if _, ok := g.channels[connID]; ok {
			delete(g.channels, connID)
			found = true
		}
		if len(g.channels) == 0 {
			delete(t.consumers, consumerGroup)
		}
	}
	if m := t.producers[producerGroup]; m != nil {
		delete(m, connID)
		if len(m) == 0 {
			delete(t.producers, producerGroup)
		}
	}
	delete(t.byConn[connID], "c:"+consumerGroup)
	delete(t.byConn[connID], "p:"+producerGroup)
	return found
}

// expired returns the connections whose heartbeats stopped before cutoff.
func (t *clientTable) expired(cutoff time.Time) []*remoting.Conn {
	t.mu.RLock()
	defer t.mu.RUnlock()
	seen := make(map[uint64]*remoting.Conn)
	for _, g := range t.consumers {
		for id, ch := range g.channels {
			if ch.lastSeen.Before(cutoff) {
				seen[id] = ch.conn
			}
		}
	}
	for _, m := range t.producers {
		for id, ch := range m {
			if ch.lastSeen.Before(cutoff) {
				seen[id] = ch.conn
			}
		}
	}
	out := make([]*remoting.Conn, 0, len(seen))
	for _, c := range seen {
		out = append(out, c)
	}
	return out
}

// consumerIDs lists the distinct client ids of a group, sorted.
func (t *clientTable) consumerIDs(group string) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	g := t.consumers[group]
	if g == nil {
		return nil
	}
	set := make(map[string]bool)
	for _, ch := range g.channels {
		set[ch.clientID] = true
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// conns returns the connections of a consumer group.
func (t *clientTable) conns(group string) []*remoting.Conn {
	t.mu.RLock()
	defer t.mu.RUnlock()
	g := t.consumers[group]
	if g == nil {
		return nil
	}
	out := make([]*remoting.Conn, 0, len(g.channels))
	for _, ch := range g.channels {
		out = append(out, ch.conn)
	}
	return out
}

// subscription returns a group's heartbeat subscription to topic.
func (t *clientTable) subscription(group, topic string) (protocol.SubscriptionData, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	g := t.consumers[group]
	if g == nil {
		return protocol.SubscriptionData{}, false
	}
	s, ok := g.subs[topic]
	return s, ok
}

// connection returns a group's connection info for admin replies.
func (t *clientTable) connection(group string) (protocol.ConsumerConnection, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	g := t.consumers[group]
	if g == nil {
		return protocol.ConsumerConnection{}, false
	}
	cc := protocol.ConsumerConnection{
		ConnectionSet: []protocol.Connection{}, SubscriptionTable: make(map[string]protocol.SubscriptionData),
		ConsumeType: g.consumeType, MessageModel: g.messageModel, ConsumeFromWhere: g.consumeFromWhere,
	}
	for _, ch := range g.channels {
		cc.ConnectionSet = append(cc.ConnectionSet, protocol.Connection{
			ClientID: ch.clientID, ClientAddr: ch.conn.RemoteAddr().String(), Language: ch.language, Version: int(ch.version),
		})
	}
	sort.Slice(cc.ConnectionSet, func(i, j int) bool { return cc.ConnectionSet[i].ClientID < cc.ConnectionSet[j].ClientID })
	for k, v := range g.subs {
		cc.SubscriptionTable[k] = v
	}
	return cc, true
}

// groupsSubscribedTo returns the online groups subscribed to topic.
func (t *clientTable) groupsSubscribedTo(topic string) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []string
	for name, g := range t.consumers {
		if _, ok := g.subs[topic]; ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// producerConns returns the live connections of a producer group, most
// recently seen first.
func (t *clientTable) producerConns(group string) []*remoting.Conn {
	t.mu.RLock()
	defer t.mu.RUnlock()
	chs := make([]*clientChannel, 0, len(t.producers[group]))
	for _, ch := range t.producers[group] {
		chs = append(chs, ch)
	}
	sort.Slice(chs, func(i, j int) bool { return chs[i].lastSeen.After(chs[j].lastSeen) })
	out := make([]*remoting.Conn, len(chs))
	for i, ch := range chs {
		out[i] = ch.conn
	}
	return out
}

// connByClientID finds a live connection of a client, producer or
// consumer, by its client id.
func (t *clientTable) connByClientID(id string) *remoting.Conn {
	if id == "" {
		return nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, chs := range t.producers {
		for _, ch := range chs {
			if ch.clientID == id {
				return ch.conn
			}
		}
	}
	for _, g := range t.consumers {
		for _, ch := range g.channels {
			if ch.clientID == id {
				return ch.conn
			}
		}
	}
	return t.requesters[id]
}
