package broker

import (
	"maps"
	"path/filepath"
	"sort"
	"sync"

	"qianlang.io/mq/protocol"
	"qianlang.io/mq/vfs"
)

// The replicated broker metadata: a group's leader replicates whole tables,
// or for consumer offsets what changed since it last did (see
// member.replicateMeta), and followers replace or update theirs with them.

// replace sets the whole topic table, as replicated by the leader.
func (t *topicTable) replace(topics map[string]protocol.TopicConfig, v protocol.DataVersion) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.topics = maps.Clone(topics)
	if t.topics == nil {
		t.topics = make(map[string]protocol.TopicConfig)
	}
	t.version = v
	return t.persistLocked()
}

// snapshot returns a copy of the groups and their version.
func (g *groupTable) snapshot() (map[string]protocol.SubscriptionGroupConfig, protocol.DataVersion) {
	w := g.wrapper()
	return w.SubscriptionGroupTable, w.DataVersion
}

// replace sets the whole group table, as replicated by the leader.
func (g *groupTable) replace(groups map[string]protocol.SubscriptionGroupConfig, v protocol.DataVersion) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.groups = maps.Clone(groups)
	if g.groups == nil {
		g.groups = make(map[string]protocol.SubscriptionGroupConfig)
	}
	g.version = v
	return writeJSONFile(g.fs, g.path, protocol.SubscriptionGroupWrapper{SubscriptionGroupTable: g.groups, DataVersion: g.version})
}

// snapshot returns a copy of the offsets and a number that changes
// whenever they do.
func (o *offsetTable) snapshot() (map[string]map[int32]int64, uint64) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.copyLocked(), o.seq
}

func (o *offsetTable) copyLocked() map[string]map[int32]int64 {
	out := make(map[string]map[int32]int64, len(o.offsets))
	for k, v := range o.offsets {
		out[k] = maps.Clone(v)
	}
	return out
}

// version is the number snapshot returns, without the copy.
func (o *offsetTable) version() uint64 {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.seq
}

// takeAll returns a copy of the offsets for a whole-table replication and
// forgets the changes recorded so far, which it includes.
func (o *offsetTable) takeAll() (map[string]map[int32]int64, uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.changed, o.removed = nil, nil
	return o.copyLocked(), o.seq
}

// takeChanges returns what changed since the last takeChanges or takeAll:
// the current offsets of the queues committed (updates) and the keys
// deleted and not written again (removals), and forgets them. Applying
// removals, then updates, to a table that held the earlier state gives
// this one.
func (o *offsetTable) takeChanges() (updates map[string]map[int32]int64, removals []string, seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, qs := range o.changed {
		cur, ok := o.offsets[k]
		if !ok {
			continue
		}
		u := make(map[int32]int64, len(qs))
		for q := range qs {
			if off, ok := cur[q]; ok {
				u[q] = off
			}
		}
		if updates == nil {
			updates = make(map[string]map[int32]int64, len(o.changed))
		}
		updates[k] = u
	}
	for k := range o.removed {
		removals = append(removals, k)
	}
	sort.Strings(removals)
	o.changed, o.removed = nil, nil
	return updates, removals, o.seq
}

// apply applies a leader's changes (see takeChanges); they are persisted
// with the next periodic write.
func (o *offsetTable) apply(updates map[string]map[int32]int64, removals []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, k := range removals {
		delete(o.offsets, k)
	}
	for k, u := range updates {
		m := o.offsets[k]
		if m == nil {
			m = make(map[int32]int64, len(u))
			o.offsets[k] = m
		}
		maps.Copy(m, u)
	}
	o.dirty = true
	o.seq++
}

// replace sets every offset, as replicated by the leader; they are
// persisted with the next periodic write.
func (o *offsetTable) replace(offsets map[string]map[int32]int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.offsets = make(map[string]map[int32]int64, len(offsets))
	for k, v := range offsets {
		o.offsets[k] = maps.Clone(v)
	}
	o.dirty = true
	o.seq++
}

// memberAddrs maps the members of a Raft group to their client addresses,
// as each announced them when it became leader; persisted in
// config/groupMembers.json so a restarted follower can forward at once.
type memberAddrs struct {
	fs    vfs.FS
	path  string
	mu    sync.Mutex
	addrs map[uint64]string // guarded by mu
}

type memberAddrsFile struct {
	Members map[uint64]string `json:"members"`
}

func newMemberAddrs(fs vfs.FS, root string) *memberAddrs {
	if fs == nil {
		fs = vfs.Default
	}
	return &memberAddrs{fs: fs, path: filepath.Join(root, "config", "groupMembers.json"), addrs: map[uint64]string{}}
}

func (m *memberAddrs) load() error {
	var f memberAddrsFile
	if _, err := readJSONFile(m.fs, m.path, &f); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	maps.Copy(m.addrs, f.Members)
	return nil
}

func (m *memberAddrs) get(id uint64) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.addrs[id]
	return a, ok
}

func (m *memberAddrs) set(id uint64, addr string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.addrs[id] == addr {
		return nil
	}
	m.addrs[id] = addr
	return writeJSONFile(m.fs, m.path, memberAddrsFile{Members: maps.Clone(m.addrs)})
}

func (m *memberAddrs) all() map[uint64]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.addrs)
}

// metaAt reports the index of the last replicated metadata entry whose
// offsets the table holds.
func (o *offsetTable) metaAt() uint64 {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.metaIndex
}

// setMetaAt records that the table holds the replicated metadata entry
// at index; it is written with the table.
func (o *offsetTable) setMetaAt(index uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if index > o.metaIndex {
		o.metaIndex = index
		o.dirty = true
	}
}

// tablesAt is the index of the last replicated metadata entry whose topic
// and group tables this member holds, kept in config/metaApplied.json and
// written after the tables. After a restart Raft delivers again the
// entries after the checkpoint's applied index; those at or below this
// index are older than the tables on disk and are skipped.
type tablesAt struct {
	fs    vfs.FS
	path  string
	index uint64 // the driver goroutine's, once loaded
}

type tablesAtFile struct {
	Index uint64 `json:"index"`
}

func newTablesAt(fs vfs.FS, root string) *tablesAt {
	if fs == nil {
		fs = vfs.Default
	}
	return &tablesAt{fs: fs, path: filepath.Join(root, "config", "metaApplied.json")}
}

// load reads the index; without the file (a store written before it
// existed) it is floor, the index up to which the store applied entries.
func (a *tablesAt) load(floor uint64) error {
	var f tablesAtFile
	ok, err := readJSONFile(a.fs, a.path, &f)
	if err != nil {
		return err
	}
	a.index = f.Index
	if !ok {
		a.index = floor
	}
	return nil
}

// set records index durably.
func (a *tablesAt) set(index uint64) error {
	if index <= a.index {
		return nil
	}
	if err := writeJSONFile(a.fs, a.path, tablesAtFile{Index: index}); err != nil {
		return err
	}
	a.index = index
	return nil
}
