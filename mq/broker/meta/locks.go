package meta

import (
	"slices"
	"strings"
	"sync"
	"time"

	"qianlang.io/mq/protocol"
)

// Locks holds orderly consumers' queue locks: (group, queue) → client,
// expiring LockMaxLive after the last refresh. They live in memory only;
// in a Raft group the leader replicates the owners whenever one changes,
// before it answers, so a new leader grants no queue that a live consumer
// of the old one still holds.
type Locks struct {
	mu    sync.Mutex
	locks map[lockKey]lockEntry
}

type lockKey struct {
	group string
	mq    protocol.MessageQueue
}

type lockEntry struct {
	clientID string
	at       time.Time
}

// LockRecord is one lock as replicated: its owner, not its age.
type LockRecord struct {
	Group    string                `json:"group"`
	Queue    protocol.MessageQueue `json:"mq"`
	ClientID string                `json:"clientId"`
}

// LockMaxLive is how long a lock lasts without a refresh.
const LockMaxLive = 60 * time.Second

// NewLocks returns an empty lock table.
func NewLocks() *Locks { return &Locks{locks: make(map[lockKey]lockEntry)} }

// TryLock grants the queues that are free, expired or already the
// client's, and reports whether an owner changed.
func (t *Locks) TryLock(group, clientID string, mqs []protocol.MessageQueue, now time.Time) ([]protocol.MessageQueue, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	granted := []protocol.MessageQueue{}
	changed := false
	for _, mq := range mqs {
		k := lockKey{group, mq}
		e, held := t.locks[k]
		if !held || e.clientID == clientID || now.Sub(e.at) > LockMaxLive {
			changed = changed || e.clientID != clientID
			t.locks[k] = lockEntry{clientID: clientID, at: now}
			granted = append(granted, mq)
		}
	}
	return granted, changed
}

// Unlock releases the client's locks on mqs and reports whether any was
// held.
func (t *Locks) Unlock(group, clientID string, mqs []protocol.MessageQueue) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	changed := false
	for _, mq := range mqs {
		k := lockKey{group, mq}
		if e, ok := t.locks[k]; ok && e.clientID == clientID {
			delete(t.locks, k)
			changed = true
		}
	}
	return changed
}

// Expire drops the locks not refreshed for LockMaxLive.
func (t *Locks) Expire(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, e := range t.locks {
		if now.Sub(e.at) > LockMaxLive {
			delete(t.locks, k)
		}
	}
}

// Owners lists the locks, in a stable order.
func (t *Locks) Owners() []LockRecord {
	t.mu.Lock()
	out := make([]LockRecord, 0, len(t.locks))
	for k, e := range t.locks {
		out = append(out, LockRecord{Group: k.group, Queue: k.mq, ClientID: e.clientID})
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b LockRecord) int {
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		if c := strings.Compare(a.Queue.Topic, b.Queue.Topic); c != 0 {
			return c
		}
		return a.Queue.QueueID - b.Queue.QueueID
	})
	return out
}

// Replace installs a leader's locks; each counts as refreshed at now, so
// a new leader honours them for a full lock lifetime unless their owners
// stop refreshing.
func (t *Locks) Replace(recs []LockRecord, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.locks)
	for _, r := range recs {
		t.locks[lockKey{r.Group, r.Queue}] = lockEntry{clientID: r.ClientID, at: now}
	}
}
