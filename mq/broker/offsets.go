package broker

import (
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"qianlang.io/mq/protocol"
	"qianlang.io/mq/vfs"
)

// offsetTable holds the consumer offsets of every (group, topic, queue): the
// next offset each group will consume. It is persisted periodically to
// config/consumerOffset.json in Java's layout ("topic@group" → queue id →
// offset); after a crash consumers resume from the last persisted offsets
// and may see some messages again (at-least-once).
type offsetTable struct {
	fs   vfs.FS
	path string

	mu      sync.RWMutex
	offsets map[string]map[int32]int64 // "topic@group" → queue → offset
	dirty   bool
	seq     uint64 // counts changes
	// What changed since takeChanges last ran, for a group's leader to
	// replicate: the queues committed and the keys deleted.
	changed map[string]map[int32]struct{}
	removed map[string]struct{}
	// metaIndex is the index of the last replicated metadata entry whose
	// offsets this table holds (see member.installTables); written with
	// the table.
	metaIndex uint64
}

type offsetsFile struct {
	OffsetTable map[string]map[int32]int64 `json:"offsetTable"`
	// MetaIndex is offsetTable.metaIndex; Java's brokers ignore it.
	MetaIndex uint64 `json:"metaIndex,omitempty"`
}

func newOffsetTable(fs vfs.FS, root string) *offsetTable {
	return &offsetTable{fs: fs, path: filepath.Join(root, "config", "consumerOffset.json"), offsets: make(map[string]map[int32]int64)}
}

func offsetKey(topic, group string) string { return topic + "@" + group }

func (o *offsetTable) load() error {
	var f offsetsFile
	if _, err := readJSONFile(o.fs, o.path, &f); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, v := range f.OffsetTable {
		o.offsets[k] = v
	}
	o.metaIndex = f.MetaIndex
	return nil
}

func (o *offsetTable) commit(group, topic string, queueID int32, off int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := offsetKey(topic, group)
	m := o.offsets[k]
	if m == nil {
		m = make(map[int32]int64)
		o.offsets[k] = m
	}
	if old, ok := m[queueID]; !ok || old != off {
		m[queueID] = off
		o.dirty = true
		o.seq++
		o.markChanged(k, queueID)
	}
}

func (o *offsetTable) markChanged(k string, queueID int32) {
	if o.changed == nil {
		o.changed = make(map[string]map[int32]struct{})
	}
	q := o.changed[k]
	if q == nil {
		q = make(map[int32]struct{})
		o.changed[k] = q
	}
	q[queueID] = struct{}{}
}

// removeLocked deletes a key and records the deletion for replication.
func (o *offsetTable) removeLocked(k string) {
	delete(o.offsets, k)
	delete(o.changed, k)
	if o.removed == nil {
		o.removed = make(map[string]struct{})
	}
	o.removed[k] = struct{}{}
	o.dirty = true
	o.seq++
}

func (o *offsetTable) get(group, topic string, queueID int32) (int64, bool) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	off, ok := o.offsets[offsetKey(topic, group)][queueID]
	return off, ok
}

// persist writes the table if it changed since the last write.
func (o *offsetTable) persist() error {
	o.mu.Lock()
	if !o.dirty {
		o.mu.Unlock()
		return nil
	}
	snap := make(map[string]map[int32]int64, len(o.offsets))
	for k, v := range o.offsets {
		c := make(map[int32]int64, len(v))
		for q, off := range v {
			c[q] = off
		}
		snap[k] = c
	}
	o.dirty = false
	at := o.metaIndex
	o.mu.Unlock()
	if err := writeJSONFile(o.fs, o.path, offsetsFile{OffsetTable: snap, MetaIndex: at}); err != nil {
		o.mu.Lock()
		o.dirty = true
		o.mu.Unlock()
		return err
	}
	return nil
}

// groupsOf returns the groups with offsets on topic, sorted.
func (o *offsetTable) groupsOf(topic string) []string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	var out []string
	for k := range o.offsets {
		if t, g, ok := strings.Cut(k, "@"); ok && t == topic {
			out = append(out, g)
		}
	}
	sort.Strings(out)
	return out
}

// topicsOf returns the topics a group has offsets on, sorted.
func (o *offsetTable) topicsOf(group string) []string {
	o.mu.RLock()
	defer o.mu.RUnlock()
	var out []string
	for k := range o.offsets {
		if i := strings.LastIndexByte(k, '@'); i >= 0 && k[i+1:] == group {
			out = append(out, k[:i])
		}
	}
	sort.Strings(out)
	return out
}

// deleteTopic drops every group's offsets on topic.
func (o *offsetTable) deleteTopic(topic string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k := range o.offsets {
		if t, _, ok := strings.Cut(k, "@"); ok && t == topic {
			o.removeLocked(k)
		}
	}
}

// deleteGroup drops a group's offsets.
func (o *offsetTable) deleteGroup(group string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k := range o.offsets {
		if i := strings.LastIndexByte(k, '@'); i >= 0 && k[i+1:] == group {
			o.removeLocked(k)
		}
	}
}

// groupTable holds the subscription-group configs, persisted in
// config/subscriptionGroup.json.
type groupTable struct {
	fs   vfs.FS
	path string

	mu      sync.RWMutex
	groups  map[string]protocol.SubscriptionGroupConfig
	version protocol.DataVersion
}

func newGroupTable(fs vfs.FS, root string) *groupTable {
	return &groupTable{fs: fs, path: filepath.Join(root, "config", "subscriptionGroup.json"), groups: make(map[string]protocol.SubscriptionGroupConfig)}
}

func (g *groupTable) load() error {
	var f protocol.SubscriptionGroupWrapper
	if _, err := readJSONFile(g.fs, g.path, &f); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, v := range f.SubscriptionGroupTable {
		g.groups[k] = v
	}
	g.version = f.DataVersion
	return nil
}

func (g *groupTable) get(name string) (protocol.SubscriptionGroupConfig, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	c, ok := g.groups[name]
	return c, ok
}

func (g *groupTable) put(c protocol.SubscriptionGroupConfig) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.groups[c.GroupName] = c
	g.version.Counter++
	return writeJSONFile(g.fs, g.path, protocol.SubscriptionGroupWrapper{SubscriptionGroupTable: g.groups, DataVersion: g.version})
}

func (g *groupTable) delete(name string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.groups, name)
	g.version.Counter++
	return writeJSONFile(g.fs, g.path, protocol.SubscriptionGroupWrapper{SubscriptionGroupTable: g.groups, DataVersion: g.version})
}

func (g *groupTable) wrapper() protocol.SubscriptionGroupWrapper {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := protocol.SubscriptionGroupWrapper{SubscriptionGroupTable: make(map[string]protocol.SubscriptionGroupConfig, len(g.groups)), DataVersion: g.version}
	for k, v := range g.groups {
		out.SubscriptionGroupTable[k] = v
	}
	return out
}
