package broker

import (
	"encoding/json"
	"sort"
	"sync"
	"time"

	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
)

// lockTable holds orderly consumers' queue locks: (group, queue) → client,
// expiring 60 s after the last refresh. In a Raft group the leader
// replicates the owners whenever one changes, before it answers, so a new
// leader grants no queue that a live consumer of the old one still holds.
type lockTable struct {
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

// lockRecord is one lock as replicated: its owner, not its age.
type lockRecord struct {
	Group    string                `json:"group"`
	Queue    protocol.MessageQueue `json:"mq"`
	ClientID string                `json:"clientId"`
}

const lockMaxLive = 60 * time.Second

func newLockTable() *lockTable { return &lockTable{locks: make(map[lockKey]lockEntry)} }

// tryLock grants the queues that are free, expired or already the client's,
// and reports whether an owner changed.
func (t *lockTable) tryLock(group, clientID string, mqs []protocol.MessageQueue, now time.Time) ([]protocol.MessageQueue, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	granted := []protocol.MessageQueue{}
	changed := false
	for _, mq := range mqs {
		k := lockKey{group, mq}
		e, held := t.locks[k]
		if !held || e.clientID == clientID || now.Sub(e.at) > lockMaxLive {
			changed = changed || e.clientID != clientID
			t.locks[k] = lockEntry{clientID: clientID, at: now}
			granted = append(granted, mq)
		}
	}
	return granted, changed
}

// unlock releases the client's locks on mqs and reports whether any was
// held.
func (t *lockTable) unlock(group, clientID string, mqs []protocol.MessageQueue) bool {
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

func (t *lockTable) expire(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, e := range t.locks {
		if now.Sub(e.at) > lockMaxLive {
			delete(t.locks, k)
		}
	}
}

// owners lists the locks, in a stable order.
func (t *lockTable) owners() []lockRecord {
	t.mu.Lock()
	out := make([]lockRecord, 0, len(t.locks))
	for k, e := range t.locks {
		out = append(out, lockRecord{Group: k.group, Queue: k.mq, ClientID: e.clientID})
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Queue.Topic != b.Queue.Topic {
			return a.Queue.Topic < b.Queue.Topic
		}
		return a.Queue.QueueID < b.Queue.QueueID
	})
	return out
}

// replace installs the leader's locks; each counts as refreshed now, so a
// new leader honours them for a full lock lifetime unless their owners
// stop refreshing.
func (t *lockTable) replace(recs []lockRecord, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.locks)
	for _, r := range recs {
		t.locks[lockKey{r.Group, r.Queue}] = lockEntry{clientID: r.ClientID, at: now}
	}
}

// lockWait bounds the replication of a lock change: the client waits 1 s
// for the answer.
const lockWait = 800 * time.Millisecond

func (b *Broker) lockBatch(req *remoting.Command) *remoting.Command {
	var body protocol.LockBatchRequest
	if err := protocol.Decode(req.Body, "lock", &body); err != nil {
		return req.Errorf(remoting.SystemError, "%v", err)
	}
	granted, changed := b.locks.tryLock(body.ConsumerGroup, body.ClientID, body.MQSet, time.Now())
	if changed {
		if err := b.replicateLocks(); err != nil {
			b.log.Warn("replicating queue locks failed; granting none", "group", body.ConsumerGroup, "err", err)
			granted = []protocol.MessageQueue{}
		}
	}
	resp := req.Response(remoting.Success, "")
	resp.Body = protocol.Encode(protocol.LockBatchResponse{LockOKMQSet: granted})
	return resp
}

func (b *Broker) unlockBatch(req *remoting.Command) *remoting.Command {
	var body protocol.LockBatchRequest
	if err := protocol.Decode(req.Body, "unlock", &body); err != nil {
		return req.Errorf(remoting.SystemError, "%v", err)
	}
	if b.locks.unlock(body.ConsumerGroup, body.ClientID, body.MQSet) {
		if err := b.replicateLocks(); err != nil {
			return req.Errorf(remoting.SystemError, "unlock: %v", err)
		}
	}
	return req.Response(remoting.Success, "")
}

// replicateLocks replicates the lock owners and waits until a majority
// holds them. A standalone broker has nothing to do.
func (b *Broker) replicateLocks() error {
	if b.member == nil {
		return nil
	}
	recs := b.locks.owners()
	body, err := json.Marshal(metaEntry{Locks: &recs})
	if err != nil {
		return err
	}
	return b.proposeMetaWait(body, "locks")
}
