package replica

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/message"
	"qianlang.io/mq/store"
	"qianlang.io/mq/vfs"
)

// testGroup is three members in one process, each with its own in-memory
// file system and a real TCP transport on loopback.
type testGroup struct {
	t      *testing.T
	sync   bool
	addrs  map[uint64]string
	fs     map[uint64]*vfs.MemFS
	stores map[uint64]*store.Store
	nodes  map[uint64]*Node
	trs    map[uint64]*TCP
	cut    sync.Map // uint64 → true: member isolated
	// loseFn, when set, drops the messages it is true for.
	loseFn atomic.Pointer[Filter]
	// Options for members started from now on.
	putTimeout    time.Duration
	electionTicks int
	preferred     uint64
	onMeta        func(id, index, term uint64, payload []byte)
	onStatus      func(id uint64, s Status)
}

func (g *testGroup) lose(m Message) bool {
	f := g.loseFn.Load()
	return f != nil && (*f)(m)
}

var voters = []uint64{1, 2, 3}

func newTestGroup(t *testing.T, syncFlush bool, opts ...func(*testGroup)) *testGroup {
	g := &testGroup{t: t, sync: syncFlush, addrs: map[uint64]string{}, fs: map[uint64]*vfs.MemFS{},
		stores: map[uint64]*store.Store{}, nodes: map[uint64]*Node{}, trs: map[uint64]*TCP{}}
	for _, o := range opts {
		o(g)
	}
	lns := map[uint64]net.Listener{}
	for _, id := range voters {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		lns[id] = ln
		g.addrs[id] = ln.Addr().String()
		g.fs[id] = vfs.NewMem()
	}
	for _, id := range voters {
		g.start(id, lns[id])
	}
	t.Cleanup(g.close)
	return g
}

func (g *testGroup) storeOptions(id uint64) store.Options {
	o := store.DefaultOptions("/data")
	o.FS = g.fs[id]
	o.Replicated = true
	o.SegmentSize = 1 << 20
	o.MaxMessageSize = 64 << 10
	o.QueueFileEntries = 1024
	o.IndexSlots, o.IndexEntries = 1024, 4096
	o.FlushInterval = 20 * time.Millisecond
	o.CleanInterval = time.Hour // retention runs when a test calls Clean
	o.FileReservedTime = time.Millisecond
	o.DeleteWhen = nil
	if g.sync {
		o.Flush = store.SyncFlush
	}
	return o
}

func (g *testGroup) start(id uint64, ln net.Listener) {
	t := g.t
	if ln == nil {
		var err error
		for i := 0; i < 50; i++ {
			if ln, err = net.Listen("tcp", g.addrs[id]); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		require.NoError(t, err)
	}
	st, err := store.Open(g.storeOptions(id))
	require.NoError(t, err)
	g.stores[id] = st
	n, err := Start(Options{
		ID: id, Voters: voters, Store: st, SyncFlush: g.sync,
		TickInterval: 20 * time.Millisecond, ElectionTicks: cmp.Or(g.electionTicks, 10), PutTimeout: g.putTimeout,
		PreferredLeader: g.preferred,
		OnMeta: func(index, term uint64, payload []byte) {
			if g.onMeta != nil {
				g.onMeta(id, index, term, payload)
			}
		},
		OnStatus: func(s Status) {
			if g.onStatus != nil {
				g.onStatus(id, s)
			}
		},
		NewTransport: TCPTransport(TCPOptions{Self: id, Listener: ln, Peers: g.addrs}, func(tr *TCP) {
			g.trs[id] = tr
			tr.SetFilter(func(m Message) bool { return g.isCut(m.From) || g.isCut(m.To) || g.lose(m) })
		}),
	})
	require.NoError(t, err)
	g.nodes[id] = n
}

func (g *testGroup) isCut(id uint64) bool { _, ok := g.cut.Load(id); return ok }

// crash stops a member as kill -9 would: whatever its files hold at that
// instant (page cache included, as a process crash keeps it) is what a
// restart finds.
func (g *testGroup) crash(id uint64) {
	g.stop(id, g.fs[id].KillClone)
}

// powerLoss stops a member as a power cut would: only what it fsynced
// survives.
func (g *testGroup) powerLoss(id uint64) {
	g.stop(id, g.fs[id].CrashClone)
}

func (g *testGroup) stop(id uint64, clone func() *vfs.MemFS) {
	n := g.nodes[id]
	n.Close()
	after := clone()
	g.stores[id].Close()
	g.fs[id] = after
	delete(g.nodes, id)
	delete(g.stores, id)
}

func (g *testGroup) close() {
	for id, n := range g.nodes {
		n.Close()
		g.stores[id].Close()
	}
}

// leader waits for a member (not in except) that leads.
func (g *testGroup) leader(except ...uint64) *Node {
	var found *Node
	require.Eventually(g.t, func() bool {
		for id, n := range g.nodes {
			skip := g.isCut(id)
			for _, e := range except {
				skip = skip || e == id
			}
			if s := n.Status(); !skip && s.Role == Leader {
				found = n
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "no leader elected")
	return found
}

var (
	born = netip.MustParseAddrPort("10.0.0.5:40000")
	host = netip.MustParseAddrPort("127.0.0.1:10911")
)

func testMsg(i int) *message.Message {
	return &message.Message{
		Topic: "T", QueueID: int32(i % 4), Body: []byte(fmt.Sprintf("message-%06d", i)),
		BornTimestamp: 1, BornHost: born, StoreHost: host,
	}
}

// putAll sends count messages through whichever member leads, retrying on
// ErrNotLeader, and returns the bodies acknowledged.
func (g *testGroup) putAll(from, count int) map[string]bool {
	acked := map[string]bool{}
	for i := from; i < from+count; i++ {
		for attempt := 0; ; attempt++ {
			require.Less(g.t, attempt, 200, "put %d never acknowledged", i)
			m := testMsg(i)
			ch := make(chan error, 1)
			g.leader().Put([]*message.Message{m}, func(err error) { ch <- err })
			if err := <-ch; err == nil {
				acked[string(m.Body)] = true
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return acked
}

// consumed reads every committed message on member id.
func (g *testGroup) consumed(id uint64) map[string]bool {
	st := g.stores[id]
	got := map[string]bool{}
	for q := int32(0); q < 4; q++ {
		off := st.MinOffset("T", q)
		for {
			r, err := st.GetMessages("T", q, off, 64, nil)
			require.NoError(g.t, err)
			if r.Status != store.Found {
				break
			}
			for pos := 0; pos < len(r.Body); {
				m, n, err := message.DecodeRecord(r.Body[pos:])
				require.NoError(g.t, err)
				require.Equal(g.t, off, m.QueueOffset, "queue %d has no gaps", q)
				off++
				got[string(m.Body)] = true
				pos += n
			}
		}
	}
	return got
}

// check waits for every running member to apply the same index, then
// compares their logs.
func (g *testGroup) check() {
	var ss []*store.Store
	for _, st := range g.stores {
		ss = append(ss, st)
	}
	require.Eventually(g.t, func() bool {
		var want uint64
		for _, n := range g.nodes {
			want = max(want, n.Status().Commit)
		}
		if want == 0 {
			return false
		}
		for _, st := range ss {
			if st.AppliedIndex() < want {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "members did not converge")
	upTo, err := CheckLogs(ss...)
	require.NoError(g.t, err)
	require.NotZero(g.t, upTo)
}

func TestGroupReplicatesAndAgrees(t *testing.T) {
	for _, syncFlush := range []bool{false, true} {
		t.Run(fmt.Sprint("sync=", syncFlush), func(t *testing.T) {
			g := newTestGroup(t, syncFlush)
			lead := g.leader()

			// Concurrent puts from many goroutines, batched into entries.
			var wg sync.WaitGroup
			var failed atomic.Int64
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; i < 200; i++ {
						m := testMsg(w*1000 + i)
						ch := make(chan error, 1)
						lead.Put([]*message.Message{m}, func(err error) { ch <- err })
						if <-ch != nil {
							failed.Add(1)
						}
					}
				}(w)
			}
			wg.Wait()
			require.Zero(t, failed.Load())
			g.check()
			for id := range g.nodes {
				require.Len(t, g.consumed(id), 1600, "member %d", id)
			}
		})
	}
}

func TestGroupLeaderCrashLosesNothingAcknowledged(t *testing.T) {
	g := newTestGroup(t, false)
	acked := g.putAll(0, 300)
	old := g.leader()
	oldID := old.Status().ID
	g.crash(oldID)
	start := time.Now()
	g.leader()
	t.Logf("new leader after %v", time.Since(start))
	for k := range g.putAll(300, 300) {
		acked[k] = true
	}
	g.start(oldID, nil)
	for k := range g.putAll(600, 100) {
		acked[k] = true
	}
	g.check()
	for id := range g.nodes {
		got := g.consumed(id)
		t.Logf("member %d: applied %d, consumed %d, min offsets %d %d %d %d", id, g.stores[id].AppliedIndex(), len(got),
			g.stores[id].MinOffset("T", 0), g.stores[id].MinOffset("T", 1), g.stores[id].MinOffset("T", 2), g.stores[id].MinOffset("T", 3))
		for k := range acked {
			require.True(t, got[k], "member %d lost acknowledged %s", id, k)
		}
	}
}

func TestGroupPartitionedLeaderStepsDownAndTailIsDiscarded(t *testing.T) {
	g := newTestGroup(t, false)
	acked := g.putAll(0, 100)
	old := g.leader()
	oldID := old.Status().ID
	g.cut.Store(oldID, true)

	// Puts to the cut-off leader are never acknowledged.
	var late atomic.Int64
	for i := 0; i < 50; i++ {
		old.Put([]*message.Message{testMsg(10_000 + i)}, func(err error) {
			if err == nil {
				late.Add(1)
			}
		})
	}
	lead := g.leader(oldID)
	require.NotEqual(t, oldID, lead.Status().ID)
	for k := range g.putAll(100, 100) {
		acked[k] = true
	}
	require.Eventually(t, func() bool { return old.Status().Role != Leader }, 5*time.Second, 10*time.Millisecond, "the isolated leader steps down (check quorum)")
	require.Zero(t, late.Load(), "an isolated leader acknowledged a put")

	g.cut.Delete(oldID)
	for k := range g.putAll(200, 50) {
		acked[k] = true
	}
	g.check()
	got := g.consumed(oldID)
	for k := range acked {
		require.True(t, got[k], "old leader misses %s after healing", k)
	}
	for i := 0; i < 50; i++ {
		require.False(t, got[string(testMsg(10_000+i).Body)], "uncommitted tail survived")
	}
}

func TestGroupRestartAllComesBackTheSame(t *testing.T) {
	g := newTestGroup(t, true)
	acked := g.putAll(0, 200)
	g.check()
	// SYNC_FLUSH: acknowledged entries survive even a power cut of all.
	for _, id := range voters {
		g.powerLoss(id)
	}
	for _, id := range voters {
		g.start(id, nil)
	}
	g.leader()
	g.check()
	for _, id := range voters {
		got := g.consumed(id)
		for k := range acked {
			require.True(t, got[k], "member %d lost %s across a full restart", id, k)
		}
	}
}

func TestGroupTransferLeadership(t *testing.T) {
	g := newTestGroup(t, false)
	g.putAll(0, 50)
	old := g.leader()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, old.TransferLeadership(ctx))
	require.NotEqual(t, old.Status().ID, g.leader().Status().ID)
	g.putAll(50, 50)
	g.check()
}

// DLedger's preferredLeaderId: whoever leads hands over to the preferred
// member once it is reachable and caught up, also after it was away.
func TestGroupHandsLeadershipToThePreferredMember(t *testing.T) {
	g := newTestGroup(t, false, func(g *testGroup) { g.preferred = 3 })
	leads := func(id uint64) func() bool {
		n := g.nodes[id]
		return func() bool { return n.Status().Role == Leader }
	}
	require.Eventually(t, leads(3), 10*time.Second, 10*time.Millisecond, "the preferred member does not take over")
	acked := g.putAll(0, 50)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, g.nodes[3].TransferLeadership(ctx), "another member takes over for a while")
	maps.Copy(acked, g.putAll(50, 50))
	require.Eventually(t, leads(3), 10*time.Second, 10*time.Millisecond, "leadership does not come back")

	// Without the preferred member another leads; back and caught up, it
	// leads again.
	g.crash(3)
	maps.Copy(acked, g.putAll(100, 100))
	g.start(3, nil)
	require.Eventually(t, leads(3), 10*time.Second, 10*time.Millisecond, "the restarted preferred member does not lead again")
	maps.Copy(acked, g.putAll(200, 50))

	// Stopping, it hands over and does not ask for leadership again.
	g.nodes[3].Retire()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	require.NoError(t, g.nodes[3].TransferLeadership(ctx2))
	time.Sleep(10 * 10 * 20 * time.Millisecond) // ten election timeouts
	require.NotEqual(t, Leader, g.nodes[3].Status().Role, "a retiring member took leadership back")
	maps.Copy(acked, g.putAll(250, 50))
	g.check()
	for id := range g.nodes {
		got := g.consumed(id)
		for body := range acked {
			require.True(t, got[body], "member %d lost acknowledged %q", id, body)
		}
	}
}

// The leader crashes with puts in flight, so its log has an uncommitted
// tail the new leader overwrites when it comes back.
func TestGroupCrashWithUncommittedTail(t *testing.T) {
	for _, syncFlush := range []bool{false, true} {
		t.Run(fmt.Sprint("sync=", syncFlush), func(t *testing.T) {
			g := newTestGroup(t, syncFlush)
			g.putAll(0, 50)
			old := g.leader()
			oldID := old.Status().ID
			// Cut the leader off so its next entries stay uncommitted, then
			// crash it.
			g.cut.Store(oldID, true)
			for i := 0; i < 40; i++ {
				old.Put([]*message.Message{testMsg(50_000 + i)}, func(error) {})
			}
			time.Sleep(50 * time.Millisecond)
			g.crash(oldID)
			g.cut.Delete(oldID)
			g.putAll(100, 100)
			g.start(oldID, nil)
			g.putAll(200, 100)
			g.check()
		})
	}
}

// A follower down while retention removes the segments it misses catches
// up from a snapshot: its log restarts at the leader's log start.
func TestGroupFollowerCatchesUpPastRetention(t *testing.T) {
	g := newTestGroup(t, false)
	g.putAll(0, 20)
	lead := g.leader()
	leadID := lead.Status().ID
	var down uint64
	for _, id := range voters {
		if id != leadID {
			down = id
			break
		}
	}
	g.crash(down)
	big := bytes.Repeat([]byte("x"), 4000)
	for i := 0; i < 1200; i++ {
		m := testMsg(1000 + i)
		m.Body = append([]byte(fmt.Sprintf("big-%06d-", i)), big...)
		ch := make(chan error, 1)
		g.leader().Put([]*message.Message{m}, func(err error) { ch <- err })
		require.NoError(t, <-ch)
	}
	for id, st := range g.stores {
		require.NoError(t, st.Flush())
		n, err := st.Clean(true)
		require.NoError(t, err)
		t.Logf("member %d: retention removed %d segments, log starts at %+v", id, n, st.LogStart())
	}
	require.Positive(t, g.stores[leadID].LogStart().Index)

	g.start(down, nil)
	g.putAll(5000, 20)
	g.check()
	start := g.stores[down].LogStart()
	require.Equal(t, g.stores[leadID].LogStart().Offset, start.Offset, "the follower's log starts where the leader's does")
	got := g.consumed(down)
	for i := 5000; i < 5020; i++ {
		require.True(t, got[string(testMsg(i).Body)], "message %d after the catch-up", i)
	}
}

// An ASYNC_FLUSH member that loses its unflushed tail in a power cut may
// have acknowledged entries it no longer has. Raft cannot take it back;
// it must leave the group cleanly (not crash the broker), and the group
// goes on with the other two.
func TestGroupAsyncPowerLossOfAFollowerLeavesTheGroupGoing(t *testing.T) {
	g := newTestGroup(t, false)
	g.putAll(0, 100)
	leadID := g.leader().Status().ID
	var f uint64
	for _, id := range voters {
		if id != leadID {
			f = id
			break
		}
	}
	g.powerLoss(f)
	g.start(f, nil)
	g.putAll(100, 100)
	require.Eventually(t, func() bool {
		s := g.nodes[f].Status()
		return s.Role == Stopped || s.Applied >= g.nodes[leadID].Status().Applied
	}, 10*time.Second, 10*time.Millisecond)
	t.Logf("after the power cut the follower is %v (err %v)", g.nodes[f].Status().Role, g.nodes[f].Err())
}

func TestGroupPutsWithoutQuorumTimeOut(t *testing.T) {
	// A long election timeout keeps the cut-off leader leading for
	// seconds, so only the put timeout can answer its puts.
	g := newTestGroup(t, false, func(g *testGroup) { g.putTimeout, g.electionTicks = 60*time.Millisecond, 150 })
	g.putAll(0, 10)
	lead := g.leader()
	id := lead.Status().ID
	g.cut.Store(id, true)

	errs := make(chan error, 20)
	for i := range 20 {
		lead.Put([]*message.Message{testMsg(1000 + i)}, func(err error) { errs <- err })
	}
	for range 20 {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrCommitTimeout) && !errors.Is(err, ErrProposeTimeout) {
				t.Fatalf("a put without quorum ended with %v, want a timeout", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a put without quorum was never answered")
		}
	}
	require.Equal(t, Leader, lead.Status().Role, "the leader stepped down before the puts timed out")
	g.cut.Delete(id)
	g.putAll(20, 10)
	g.check()
}

// An entry the old leader committed, with a follower's acknowledgement,
// but whose commit that follower never heard of, commits there only once
// it leads, in its own term: its OnMeta gets the entry's older term, which
// is how a broker knows to apply an old leader's metadata it learns of as
// leader.
func TestGroupNewLeaderAppliesTheOldTermsCommittedEntry(t *testing.T) {
	type applied struct{ index, term uint64 }
	var mu sync.Mutex
	seen := map[uint64][]applied{} // by member
	g := newTestGroup(t, false, func(g *testGroup) {
		g.onMeta = func(id, index, term uint64, payload []byte) {
			if string(payload) == "E" {
				mu.Lock()
				seen[id] = append(seen[id], applied{index, term})
				mu.Unlock()
			}
		}
	})
	g.putAll(0, 10)
	old := g.leader()
	oldID, oldTerm := old.Status().ID, old.Status().Term
	var f1, f2 uint64
	for _, id := range voters {
		if id != oldID {
			if f1 == 0 {
				f1 = id
			} else {
				f2 = id
			}
		}
	}
	// f2 hears nothing; f1 gets the entry but no message telling it that
	// the entry committed.
	g.cut.Store(f2, true)
	e := old.Status().LastIndex + 1
	var lose Filter = func(m Message) bool { return m.From == oldID && m.To == f1 && m.Commit >= e }
	g.loseFn.Store(&lose)
	done := make(chan error, 1)
	old.ProposeMeta([]byte("E"), func(err error) { done <- err })
	select {
	case err := <-done:
		require.NoError(t, err, "the old leader commits E with f1's acknowledgement")
	case <-time.After(10 * time.Second):
		t.Fatal("E did not commit")
	}
	require.Less(t, g.nodes[f1].Status().Commit, e, "f1 learned that E committed")

	g.crash(oldID)
	g.loseFn.Store(nil)
	g.cut.Delete(f2)
	lead := g.leader(oldID)
	require.Equal(t, f1, lead.Status().ID, "only f1 holds E, so only f1 can win")
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen[f1]) > 0
	}, 10*time.Second, 10*time.Millisecond, "the new leader never applied E")
	mu.Lock()
	got := seen[f1][0]
	mu.Unlock()
	require.Equal(t, e, got.index)
	require.Equal(t, oldTerm, got.term, "E keeps the term it was proposed in")
	require.Greater(t, lead.Status().Term, oldTerm, "and the new leader leads in a later term")
	require.Eventually(t, func() bool { return lead.Status().Settled }, 10*time.Second, 10*time.Millisecond,
		"the new leader applied its own term's first entry but does not count as settled")
	require.False(t, g.nodes[f2].Status().Settled, "a follower counts as settled")
}
