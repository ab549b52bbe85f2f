package meta

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"qianlang.io/mq/vfs"
)

// NewMembers returns the table of a Raft group's members' client
// addresses by member id, as each announced them when it became leader;
// stored in config/groupMembers.json so a restarted follower can forward
// to its leader at once.
func NewMembers(fs vfs.FS, root string) *Table[uint64, string] {
	l := Layout{File: "groupMembers.json", Entries: "members"}
	return NewTable[uint64, string](fs, root, l, func(a, b string) bool { return a == b })
}

// Applied is the index of the last replicated metadata entry whose topic
// and group tables a member holds, kept in config/metaApplied.json and
// written after the tables. After a restart Raft delivers again the
// entries after the checkpoint's applied index; those at or below this
// index are older than the tables on disk and are skipped.
type Applied struct {
	fs    vfs.FS
	path  string
	index uint64 // the raft driver goroutine's, once loaded
}

type appliedFile struct {
	Index uint64 `json:"index"`
}

// NewApplied returns the index stored under root.
func NewApplied(fs vfs.FS, root string) *Applied {
	if fs == nil {
		fs = vfs.Default
	}
	return &Applied{fs: fs, path: filepath.Join(root, "config", "metaApplied.json")}
}

// Load reads the index; without the file (a store written before it
// existed) it is floor, the index up to which the store applied entries.
func (a *Applied) Load(floor uint64) error {
	data, ok, err := readFile(a.fs, a.path)
	if err != nil {
		return err
	}
	if !ok {
		a.index = floor
		return nil
	}
	var f appliedFile
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("meta: %s is damaged: %w", a.path, err)
	}
	a.index = f.Index
	return nil
}

// Index is the index last set or loaded.
func (a *Applied) Index() uint64 { return a.index }

// Set records index durably; it never goes back.
func (a *Applied) Set(index uint64) error {
	if index <= a.index {
		return nil
	}
	data, err := json.MarshalIndent(appliedFile{Index: index}, "", "  ")
	if err != nil {
		return fmt.Errorf("meta: encode %s: %w", a.path, err)
	}
	if err := writeFile(a.fs, a.path, data); err != nil {
		return err
	}
	a.index = index
	return nil
}
