package replica

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// roleOf is the part of a status that OnStatus reports changes of.
type roleOf struct {
	Role    Role
	Term    uint64
	Leader  uint64
	Settled bool
}

func roleOfStatus(s Status) roleOf {
	return roleOf{Role: s.Role, Term: s.Term, Leader: s.Leader, Settled: s.Settled}
}

// A slow OnStatus misses nothing final: while it blocks, fifty leadership
// transfers change every member's term and leader well over a hundred
// times; once it runs again it is called with each member's final status,
// and it never saw an older status after a newer one.
func TestSlowOnStatusGetsTheFinalStatus(t *testing.T) {
	const transfers = 50
	gate := make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	var mu sync.Mutex
	seen := map[uint64][]Status{}
	g := newTestGroup(t, false, func(g *testGroup) {
		g.onStatus = func(id uint64, s Status) {
			<-gate
			mu.Lock()
			defer mu.Unlock()
			seen[id] = append(seen[id], s)
		}
	})
	t.Cleanup(release) // runs before the group closes: Close waits for OnStatus

	first := g.leader().Status().Term
	for range transfers {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := g.leader().TransferLeadership(ctx)
		cancel()
		require.NoError(t, err)
	}
	final := g.settledStatuses()
	require.GreaterOrEqual(t, final[1].Term, first+transfers, "every transfer starts a term")
	release()

	last := func(id uint64) (roleOf, bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(seen[id]) == 0 {
			return roleOf{}, false
		}
		return roleOfStatus(seen[id][len(seen[id])-1]), true
	}
	require.Eventually(t, func() bool {
		for id, want := range final {
			if got, ok := last(id); !ok || got != want {
				return false
			}
		}
		return true
	}, 5*time.Second, 10*time.Millisecond, "OnStatus did not get every member's final status %v", final)
	mu.Lock()
	defer mu.Unlock()
	for id, ss := range seen {
		for k := 1; k < len(ss); k++ {
			require.GreaterOrEqual(t, ss[k].Term, ss[k-1].Term, "member %d: OnStatus saw term %d after term %d", id, ss[k].Term, ss[k-1].Term)
		}
	}
}

// settledStatuses waits until a leader has settled and every member
// follows it, and returns each member's status then.
func (g *testGroup) settledStatuses() map[uint64]roleOf {
	var out map[uint64]roleOf
	require.Eventually(g.t, func() bool {
		out = map[uint64]roleOf{}
		var lead, term uint64
		for id, n := range g.nodes {
			s := n.Status()
			if s.Role == Leader && s.Settled {
				lead, term = id, s.Term
			}
			out[id] = roleOfStatus(s)
		}
		if lead == 0 {
			return false
		}
		for id, s := range out {
			if s.Term != term || s.Leader != lead || (id != lead && s.Role != Follower) {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "the group does not settle on a leader")
	return out
}
