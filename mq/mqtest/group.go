package mqtest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"qianlang.io/mq/replica"
	"qianlang.io/mq/store"
)

// freePeers returns a dLegerPeers value with n free loopback ports.
func freePeers(t testing.TB, n int) string {
	var parts []string
	for k := range n {
		parts = append(parts, fmt.Sprintf("n%d-127.0.0.1:%d", k, peerPort(t)))
	}
	return strings.Join(parts, ";")
}

// peerPorts hands out the members' replication ports. They come from below
// Linux's default ephemeral range (32768–60999), so no outgoing connection
// of any test can take one between the check here and the member's bind,
// and none is handed out twice in one process.
var peerPorts struct {
	mu   sync.Mutex
	next int
}

const peerPortLow, peerPortHigh = 20000, 32000

func peerPort(t testing.TB) int {
	peerPorts.mu.Lock()
	defer peerPorts.mu.Unlock()
	if peerPorts.next == 0 {
		// Test binaries of several packages may run at once.
		peerPorts.next = peerPortLow + rand.IntN(peerPortHigh-peerPortLow)
	}
	for range peerPortHigh - peerPortLow {
		p := peerPorts.next
		if peerPorts.next++; peerPorts.next >= peerPortHigh {
			peerPorts.next = peerPortLow
		}
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			_ = ln.Close()
			return p
		}
	}
	t.Fatalf("mqtest: no free port in %d–%d", peerPortLow, peerPortHigh)
	return 0
}

// Replicas is the number of members per broker group.
func (c *Cluster) Replicas() int { return max(c.opts.Replicas, 1) }

// Members lists the broker indexes of group g.
func (c *Cluster) Members(g int) []int {
	r := c.Replicas()
	out := make([]int, r)
	for k := range r {
		out[k] = g*r + k
	}
	return out
}

// Leader waits until a running member of group g leads it and returns its
// broker index. For a single-broker group it is that broker.
func (c *Cluster) Leader(g int) int {
	c.t.Helper()
	if c.Replicas() == 1 {
		return g
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, i := range c.Members(g) {
			if b := c.Brokers[i]; b != nil {
				if s, ok := b.GroupStatus(); ok && s.Role == replica.Leader {
					return i
				}
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("mqtest: group %d has no leader", g)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Isolate cuts (or, with false, restores) the replication network of
// broker i: it neither sends to nor hears from the rest of its group.
// Its client port stays up.
func (c *Cluster) Isolate(i int, cut bool) {
	if cut {
		c.DropReplication(i, func(replica.Message) bool { return true })
	} else {
		c.DropReplication(i, nil)
	}
}

// DropReplication drops the Raft messages broker i sends or receives for
// which drop is true (nil: none). Member ids are 1-based positions in
// the group (Members(g)[k] is id k+1).
func (c *Cluster) DropReplication(i int, drop replica.Filter) {
	if b := c.Brokers[i]; b != nil {
		b.SetReplicationFilter(drop)
	}
}

// CheckGroup waits for the running members of group g to apply the same
// entries and compares their CommitLogs byte for byte up to there. It
// returns the index compared up to.
func (c *Cluster) CheckGroup(g int) uint64 {
	c.t.Helper()
	var stores []*store.Store
	var running []int
	for _, i := range c.Members(g) {
		if b := c.Brokers[i]; b != nil {
			stores = append(stores, b.Store())
			running = append(running, i)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var commit, low uint64
		low = ^uint64(0)
		for _, i := range running {
			s, _ := c.Brokers[i].GroupStatus()
			commit = max(commit, s.Commit)
			low = min(low, c.Brokers[i].Store().AppliedIndex())
		}
		if commit > 0 && low >= commit {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("mqtest: group %d members did not converge (commit %d, lowest applied %d)", g, commit, low)
		}
		time.Sleep(10 * time.Millisecond)
	}
	upTo, err := replica.CheckLogs(stores...)
	if err != nil {
		c.t.Fatalf("mqtest: group %d: %v", g, err)
	}
	return upTo
}
