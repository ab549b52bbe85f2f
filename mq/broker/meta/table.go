// Package meta holds a broker's metadata: its topics, subscription
// groups, consumer offsets, the queue locks of orderly consumers and, in a
// Raft group, the members' client addresses. The tables are kept in
// memory and stored as JSON under <storePathRootDir>/config in Java's
// layout, so a Java broker's store loads and the other way round.
//
// In a Raft group the leader replicates the tables as Entry values and
// every member installs them (Tables.Install); this package knows what an
// entry holds and how it applies, not how it travels.
package meta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"qianlang.io/mq/protocol"
	"qianlang.io/mq/vfs"
)

// Layout is how a table is stored: one JSON document, config/<File>, with
// the entries in the member Entries and, when named, the table's
// DataVersion in Version and the index of the last replicated entry the
// table holds in Index (left out while 0; Java's brokers ignore it).
type Layout struct {
	File    string
	Entries string
	Version string
	Index   string
}

// Table is a map kept in memory and stored as a JSON document. Put,
// Delete and Replace write it at once; changes made through Update are
// written by the next Flush.
type Table[K comparable, V any] struct {
	fs     vfs.FS
	path   string
	layout Layout
	same   func(a, b V) bool // a Put of a value the table holds changes nothing; nil: always changes

	mu      sync.RWMutex
	entries map[K]V
	version protocol.DataVersion
	index   uint64
	dirty   bool // changed through Update since the last Flush

	flushMu sync.Mutex // one Flush at a time, so an older document never lands last
}

// NewTable returns an empty table stored under root/config (fs nil: the
// real file system); same, when not nil, tells values apart that are
// worth a write.
func NewTable[K comparable, V any](fs vfs.FS, root string, l Layout, same func(a, b V) bool) *Table[K, V] {
	if fs == nil {
		fs = vfs.Default
	}
	return &Table[K, V]{fs: fs, path: filepath.Join(root, "config", l.File), layout: l, same: same, entries: make(map[K]V)}
}

// Path is the file the table is stored in.
func (t *Table[K, V]) Path() string { return t.path }

// Load adds the stored entries to the table and takes the stored version
// and index. A missing file is an empty table.
func (t *Table[K, V]) Load() error {
	data, ok, err := readFile(t.fs, t.path)
	if err != nil || !ok {
		return err
	}
	entries, version, index, err := t.decode(data)
	if err != nil {
		return fmt.Errorf("meta: %s is damaged: %w", t.path, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, v := range entries {
		t.entries[k] = v
	}
	t.version, t.index = version, index
	return nil
}

// Get returns the entry at k.
func (t *Table[K, V]) Get(k K) (V, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	v, ok := t.entries[k]
	return v, ok
}

// Put sets the entry at k, moves the version on and writes the table. It
// reports whether anything changed.
func (t *Table[K, V]) Put(k K, v V) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.entries[k]; ok && t.same != nil && t.same(old, v) {
		return false, nil
	}
	t.entries[k] = v
	t.bumpLocked()
	return true, t.writeLocked()
}

// Delete removes the entry at k, moves the version on and writes the
// table. It reports whether there was one.
func (t *Table[K, V]) Delete(k K) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.entries[k]; !ok {
		return false, nil
	}
	delete(t.entries, k)
	t.bumpLocked()
	return true, t.writeLocked()
}

// Replace sets every entry and the version, as a group's leader
// replicated them, and writes the table.
func (t *Table[K, V]) Replace(entries map[K]V, v protocol.DataVersion) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.entries = make(map[K]V, len(entries))
	for k, e := range entries {
		t.entries[k] = e
	}
	t.version = v
	return t.writeLocked()
}

// Snapshot returns a copy of the entries (the values themselves are not
// copied) and the version.
func (t *Table[K, V]) Snapshot() (map[K]V, protocol.DataVersion) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[K]V, len(t.entries))
	for k, v := range t.entries {
		out[k] = v
	}
	return out, t.version
}

// View runs fn with the entries under the table's read lock; fn must not
// keep them.
func (t *Table[K, V]) View(fn func(entries map[K]V)) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	fn(t.entries)
}

// Update runs fn with the entries under the table's lock; when fn reports
// a change, the next Flush writes the table.
func (t *Table[K, V]) Update(fn func(entries map[K]V) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if fn(t.entries) {
		t.dirty = true
	}
}

// Index is the index of the last replicated entry the table holds.
func (t *Table[K, V]) Index() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.index
}

// SetIndex records that the table holds the replicated entry at index
// (never going back); the next Flush writes it.
func (t *Table[K, V]) SetIndex(index uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if index > t.index {
		t.index = index
		t.dirty = true
	}
}

// Flush writes the table if it changed through Update or SetIndex since
// the last Flush. Changes go on while the file is written.
func (t *Table[K, V]) Flush() error {
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	t.mu.Lock()
	if !t.dirty {
		t.mu.Unlock()
		return nil
	}
	data, err := t.encodeLocked()
	if err == nil {
		t.dirty = false
	}
	t.mu.Unlock()
	if err != nil {
		return err
	}
	if err := writeFile(t.fs, t.path, data); err != nil {
		t.mu.Lock()
		t.dirty = true
		t.mu.Unlock()
		return err
	}
	return nil
}

// bumpLocked moves the version on, as Java's DataVersion.nextVersion.
func (t *Table[K, V]) bumpLocked() {
	t.version.Counter++
	t.version.Timestamp = time.Now().UnixMilli()
}

func (t *Table[K, V]) writeLocked() error {
	data, err := t.encodeLocked()
	if err != nil {
		return err
	}
	return writeFile(t.fs, t.path, data)
}

// encodeLocked renders the table as json.MarshalIndent renders a struct
// of its layout's members, in their order.
func (t *Table[K, V]) encodeLocked() ([]byte, error) {
	var doc bytes.Buffer
	doc.WriteByte('{')
	add := func(name string, v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("meta: encode %s: %w", t.path, err)
		}
		if doc.Len() > 1 {
			doc.WriteByte(',')
		}
		doc.WriteString(`"` + name + `":`)
		doc.Write(data)
		return nil
	}
	if err := add(t.layout.Entries, t.entries); err != nil {
		return nil, err
	}
	if t.layout.Version != "" {
		if err := add(t.layout.Version, t.version); err != nil {
			return nil, err
		}
	}
	if t.layout.Index != "" && t.index != 0 {
		if err := add(t.layout.Index, t.index); err != nil {
			return nil, err
		}
	}
	doc.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, doc.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("meta: encode %s: %w", t.path, err)
	}
	return out.Bytes(), nil
}

// decode reads a stored document; members are matched as encoding/json
// matches struct fields, exactly or else ignoring case.
func (t *Table[K, V]) decode(data []byte) (entries map[K]V, version protocol.DataVersion, index uint64, err error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, version, 0, err
	}
	if err := decodeMember(doc, t.layout.Entries, &entries); err != nil {
		return nil, version, 0, err
	}
	if err := decodeMember(doc, t.layout.Version, &version); err != nil {
		return nil, version, 0, err
	}
	if err := decodeMember(doc, t.layout.Index, &index); err != nil {
		return nil, version, 0, err
	}
	return entries, version, index, nil
}

func decodeMember(doc map[string]json.RawMessage, name string, v any) error {
	if name == "" {
		return nil
	}
	raw, ok := doc[name]
	if !ok {
		for k, r := range doc {
			if strings.EqualFold(k, name) {
				raw, ok = r, true
				break
			}
		}
	}
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
