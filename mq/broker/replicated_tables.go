package broker

import (
	"maps"
	"path/filepath"
	"sync"

	"qianlang.io/mq/protocol"
	"qianlang.io/mq/vfs"
)

// The replicated broker metadata: a group's leader replicates whole tables
// (see member.replicateMeta) and followers replace theirs with them.

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
	out := make(map[string]map[int32]int64, len(o.offsets))
	for k, v := range o.offsets {
		out[k] = maps.Clone(v)
	}
	return out, o.seq
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
