package meta

import (
	"maps"
	"slices"
	"strings"

	"qianlang.io/mq/vfs"
)

// Offsets holds the consumer offsets of every (group, topic, queue): the
// next offset each group will consume. It is written periodically (Flush)
// to config/consumerOffset.json in Java's layout ("topic@group" → queue id
// → offset); after a crash consumers resume from the last written offsets
// and may see some messages again (at-least-once).
type Offsets struct {
	t *Table[string, map[int32]int64]

	// Guarded by t's lock: touched only in its View and Update.
	seq uint64 // counts changes
	// What changed since TakeChanges last ran, for a group's leader to
	// replicate: the queues committed and the keys deleted.
	changed map[string]map[int32]struct{}
	removed map[string]struct{}
}

// NewOffsets returns the offset table stored under root. The file also
// keeps the index of the last replicated entry whose offsets it holds
// (metaIndex), which Java's brokers ignore.
func NewOffsets(fs vfs.FS, root string) *Offsets {
	l := Layout{File: "consumerOffset.json", Entries: "offsetTable", Index: "metaIndex"}
	return &Offsets{t: NewTable[string, map[int32]int64](fs, root, l, nil)}
}

// OffsetKey is the table's key of a group's offsets on a topic.
func OffsetKey(topic, group string) string { return topic + "@" + group }

// Load reads the stored table.
func (o *Offsets) Load() error { return o.t.Load() }

// Flush writes the table if it changed since it was last written.
func (o *Offsets) Flush() error { return o.t.Flush() }

// Commit sets a group's offset on a queue.
func (o *Offsets) Commit(group, topic string, queueID int32, off int64) {
	o.t.Update(func(offsets map[string]map[int32]int64) bool {
		k := OffsetKey(topic, group)
		m := offsets[k]
		if m == nil {
			m = make(map[int32]int64)
			offsets[k] = m
		}
		if old, ok := m[queueID]; ok && old == off {
			return false
		}
		m[queueID] = off
		o.seq++
		o.markChanged(k, queueID)
		return true
	})
}

func (o *Offsets) markChanged(k string, queueID int32) {
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

// Get returns a group's offset on a queue.
func (o *Offsets) Get(group, topic string, queueID int32) (off int64, ok bool) {
	o.t.View(func(offsets map[string]map[int32]int64) {
		off, ok = offsets[OffsetKey(topic, group)][queueID]
	})
	return off, ok
}

// GroupsOf returns the groups with offsets on topic, sorted.
func (o *Offsets) GroupsOf(topic string) []string {
	return o.keys(func(t, _ string) bool { return t == topic }, func(_, g string) string { return g })
}

// TopicsOf returns the topics a group has offsets on, sorted.
func (o *Offsets) TopicsOf(group string) []string {
	return o.keys(func(_, g string) bool { return g == group }, func(t, _ string) string { return t })
}

// keys returns part of each key that match accepts, sorted.
func (o *Offsets) keys(match func(topic, group string) bool, part func(topic, group string) string) []string {
	var out []string
	o.t.View(func(offsets map[string]map[int32]int64) {
		for k := range offsets {
			if t, g, ok := splitKey(k); ok && match(t, g) {
				out = append(out, part(t, g))
			}
		}
	})
	slices.Sort(out)
	return out
}

// splitKey splits "topic@group": the topic runs to the first '@', the
// group from the last (neither name may hold one).
func splitKey(k string) (topic, group string, ok bool) {
	i, j := strings.IndexByte(k, '@'), strings.LastIndexByte(k, '@')
	if i < 0 {
		return "", "", false
	}
	return k[:i], k[j+1:], true
}

// DeleteTopic drops every group's offsets on topic.
func (o *Offsets) DeleteTopic(topic string) {
	o.remove(func(t, _ string) bool { return t == topic })
}

// DeleteGroup drops a group's offsets.
func (o *Offsets) DeleteGroup(group string) {
	o.remove(func(_, g string) bool { return g == group })
}

// remove deletes the keys that match accepts and records the deletions
// for replication.
func (o *Offsets) remove(match func(topic, group string) bool) {
	o.t.Update(func(offsets map[string]map[int32]int64) bool {
		changed := false
		for k := range offsets {
			if t, g, ok := splitKey(k); ok && match(t, g) {
				delete(offsets, k)
				delete(o.changed, k)
				if o.removed == nil {
					o.removed = make(map[string]struct{})
				}
				o.removed[k] = struct{}{}
				o.seq++
				changed = true
			}
		}
		return changed
	})
}

// Snapshot returns a copy of the offsets and a number that changes
// whenever they do.
func (o *Offsets) Snapshot() (offsets map[string]map[int32]int64, seq uint64) {
	o.t.View(func(m map[string]map[int32]int64) {
		offsets, seq = deepCopy(m), o.seq
	})
	return offsets, seq
}

func deepCopy(m map[string]map[int32]int64) map[string]map[int32]int64 {
	out := make(map[string]map[int32]int64, len(m))
	for k, v := range m {
		out[k] = maps.Clone(v)
	}
	return out
}

// Version is the number Snapshot returns, without the copy.
func (o *Offsets) Version() (seq uint64) {
	o.t.View(func(map[string]map[int32]int64) { seq = o.seq })
	return seq
}

// TakeAll returns a copy of the offsets for a whole-table replication and
// forgets the changes recorded so far, which it includes.
func (o *Offsets) TakeAll() (offsets map[string]map[int32]int64, seq uint64) {
	o.t.Update(func(m map[string]map[int32]int64) bool {
		o.changed, o.removed = nil, nil
		offsets, seq = deepCopy(m), o.seq
		return false
	})
	return offsets, seq
}

// TakeChanges returns what changed since the last TakeChanges or TakeAll:
// the current offsets of the queues committed (updates) and the keys
// deleted and not written again (removals), and forgets them. Applying
// removals, then updates, to a table that held the earlier state gives
// this one.
func (o *Offsets) TakeChanges() (updates map[string]map[int32]int64, removals []string, seq uint64) {
	o.t.Update(func(offsets map[string]map[int32]int64) bool {
		for k, qs := range o.changed {
			cur, ok := offsets[k]
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
		slices.Sort(removals)
		o.changed, o.removed = nil, nil
		seq = o.seq
		return false
	})
	return updates, removals, seq
}

// Apply applies a leader's changes (see TakeChanges); they are written
// with the next Flush.
func (o *Offsets) Apply(updates map[string]map[int32]int64, removals []string) {
	o.t.Update(func(offsets map[string]map[int32]int64) bool {
		for _, k := range removals {
			delete(offsets, k)
		}
		for k, u := range updates {
			m := offsets[k]
			if m == nil {
				m = make(map[int32]int64, len(u))
				offsets[k] = m
			}
			maps.Copy(m, u)
		}
		o.seq++
		return true
	})
}

// Replace sets every offset, as a group's leader replicated them; they
// are written with the next Flush.
func (o *Offsets) Replace(offsets map[string]map[int32]int64) {
	o.t.Update(func(m map[string]map[int32]int64) bool {
		clear(m)
		for k, v := range offsets {
			m[k] = maps.Clone(v)
		}
		o.seq++
		return true
	})
}

// MetaAt is the index of the last replicated metadata entry whose
// offsets the table holds.
func (o *Offsets) MetaAt() uint64 { return o.t.Index() }

// SetMetaAt records that the table holds the replicated metadata entry
// at index; it is written with the table.
func (o *Offsets) SetMetaAt(index uint64) { o.t.SetIndex(index) }
