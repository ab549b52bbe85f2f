package meta

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/protocol"
)

func TestLockTable(t *testing.T) {
	lt := NewLocks()
	mq := func(q int) protocol.MessageQueue {
		return protocol.MessageQueue{Topic: "T", BrokerName: "b", QueueID: q}
	}
	lock := func(group, client string, at time.Time, qs ...int) ([]protocol.MessageQueue, bool) {
		var mqs []protocol.MessageQueue
		for _, q := range qs {
			mqs = append(mqs, mq(q))
		}
		return lt.TryLock(group, client, mqs, at)
	}
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		name          string
		group, client string
		at            time.Time
		queues        []int
		granted       int
		changed       bool
	}{
		{"first lock", "g", "c1", now, []int{0, 1}, 2, true},
		{"held by c1", "g", "c2", now.Add(time.Second), []int{0}, 0, false},
		{"re-lock by the holder changes no owner", "g", "c1", now.Add(time.Second), []int{0}, 1, false},
		{"locks are per group", "other", "c2", now, []int{0}, 1, true},
		{"expired", "g", "c2", now.Add(LockMaxLive + 2*time.Second), []int{1}, 1, true},
	} {
		got, changed := lock(tc.group, tc.client, tc.at, tc.queues...)
		require.Len(t, got, tc.granted, tc.name)
		require.Equal(t, tc.changed, changed, tc.name)
	}
	require.True(t, lt.Unlock("g", "c1", []protocol.MessageQueue{mq(0)}))
	require.False(t, lt.Unlock("g", "c1", []protocol.MessageQueue{mq(0)}), "nothing left to release")
	got, _ := lock("g", "c2", now.Add(2*time.Second), 0)
	require.Len(t, got, 1, "released")

	// A new leader installs the owners and honours them.
	recs := lt.Owners()
	require.Len(t, recs, 3)
	other := NewLocks()
	other.Replace(recs, now.Add(3*time.Second))
	got, _ = other.TryLock("g", "c9", []protocol.MessageQueue{mq(0), mq(1)}, now.Add(4*time.Second))
	require.Empty(t, got, "replicated locks hold on the new leader")
	got, _ = other.TryLock("g", "c9", []protocol.MessageQueue{mq(0)}, now.Add(3*time.Second+LockMaxLive+time.Second))
	require.Len(t, got, 1, "and expire a lock lifetime after they were installed")
}
