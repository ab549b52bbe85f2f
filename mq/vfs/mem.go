package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MemFS is an in-memory file system that remembers what a power loss would
// keep: a file's bytes survive only up to its last Sync, and a name (file or
// directory) only once its parent directory was synced after the name was
// created, renamed or removed. CrashClone and CrashCloneTorn return what
// would be found after a crash.
type MemFS struct {
	mu       sync.Mutex
	names    map[string]*memNode // current namespace (files and dirs)
	durable  map[string]*memNode // namespace as of the last SyncDir of each parent
	locks    map[string]bool
	capacity uint64
}

type memNode struct {
	mu      sync.RWMutex
	dir     bool
	data    []byte     // current content
	synced  []byte     // content as of the last Sync
	pending []memWrite // writes since the last Sync, in order
	modTime time.Time
}

// memWrite is one change since the last Sync; size >= 0 marks a truncate.
type memWrite struct {
	off  int64
	data []byte
	size int64
}

// NewMem returns an empty in-memory file system holding the root "/".
func NewMem() *MemFS {
	root := &memNode{dir: true, modTime: time.Now()}
	return &MemFS{
		names:    map[string]*memNode{"/": root},
		durable:  map[string]*memNode{"/": root},
		locks:    make(map[string]bool),
		capacity: 1 << 40,
	}
}

// SetCapacity sets the device size Usage reports and writes are held to.
func (m *MemFS) SetCapacity(total uint64) {
	m.mu.Lock()
	m.capacity = total
	m.mu.Unlock()
}

func clean(name string) string { return filepath.Clean("/" + name) }

func (m *MemFS) usedLocked() uint64 {
	var n uint64
	for _, nd := range m.names {
		nd.mu.RLock()
		n += uint64(len(nd.data))
		nd.mu.RUnlock()
	}
	return n
}

// grow reports whether a file may grow by n bytes.
func (m *MemFS) grow(n int64) error {
	if n <= 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.usedLocked()+uint64(n) > m.capacity {
		return fmt.Errorf("%w: %w", ErrNoSpace, syscall.ENOSPC)
	}
	return nil
}

func notExist(op, name string) error {
	return &os.PathError{Op: op, Path: name, Err: os.ErrNotExist}
}

func (m *MemFS) parentLocked(name string) error {
	p, ok := m.names[filepath.Dir(name)]
	if !ok || !p.dir {
		return notExist("open", filepath.Dir(name))
	}
	return nil
}

// Create creates or truncates name.
func (m *MemFS) Create(name string) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.parentLocked(name); err != nil {
		return nil, err
	}
	nd, ok := m.names[name]
	if ok && nd.dir {
		return nil, &os.PathError{Op: "create", Path: name, Err: syscall.EISDIR}
	}
	if ok {
		nd.truncate(0)
	} else {
		nd = &memNode{modTime: time.Now()}
		m.names[name] = nd
	}
	return &memFile{fs: m, node: nd, name: name, writable: true}, nil
}

func (m *MemFS) open(name string, writable bool) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	nd, ok := m.names[name]
	if !ok {
		return nil, notExist("open", name)
	}
	if nd.dir {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EISDIR}
	}
	return &memFile{fs: m, node: nd, name: name, writable: writable}, nil
}

// OpenReadWrite opens an existing file read-write.
func (m *MemFS) OpenReadWrite(name string) (File, error) { return m.open(name, true) }

// Open opens an existing file read-only.
func (m *MemFS) Open(name string) (File, error) { return m.open(name, false) }

// Remove removes a file or an empty directory.
func (m *MemFS) Remove(name string) error {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	nd, ok := m.names[name]
	if !ok {
		return notExist("remove", name)
	}
	if nd.dir && len(m.childrenLocked(m.names, name)) > 0 {
		return &os.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
	}
	delete(m.names, name)
	return nil
}

// RemoveAll removes name and everything under it.
func (m *MemFS) RemoveAll(name string) error {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.names {
		if p == name || strings.HasPrefix(p, name+"/") {
			delete(m.names, p)
		}
	}
	return nil
}

// Rename renames a file, replacing the target.
func (m *MemFS) Rename(oldname, newname string) error {
	oldname, newname = clean(oldname), clean(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	nd, ok := m.names[oldname]
	if !ok {
		return notExist("rename", oldname)
	}
	if err := m.parentLocked(newname); err != nil {
		return err
	}
	if nd.dir {
		return &os.PathError{Op: "rename", Path: oldname, Err: errors.New("directories cannot be renamed here")}
	}
	delete(m.names, oldname)
	m.names[newname] = nd
	return nil
}

// MkdirAll creates a directory and its parents. New directories become
// durable when their parent is synced.
func (m *MemFS) MkdirAll(dir string, _ os.FileMode) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	var todo []string
	for d := dir; ; d = filepath.Dir(d) {
		if nd, ok := m.names[d]; ok {
			if !nd.dir {
				return &os.PathError{Op: "mkdir", Path: d, Err: syscall.ENOTDIR}
			}
			break
		}
		todo = append(todo, d)
	}
	for i := len(todo) - 1; i >= 0; i-- {
		m.names[todo[i]] = &memNode{dir: true, modTime: time.Now()}
	}
	return nil
}

func (m *MemFS) childrenLocked(ns map[string]*memNode, dir string) []string {
	var out []string
	for p := range ns {
		if p != dir && filepath.Dir(p) == dir {
			out = append(out, filepath.Base(p))
		}
	}
	sort.Strings(out)
	return out
}

// List returns the sorted names in dir.
func (m *MemFS) List(dir string) ([]string, error) {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	nd, ok := m.names[dir]
	if !ok || !nd.dir {
		return nil, notExist("open", dir)
	}
	return m.childrenLocked(m.names, dir), nil
}

// Stat describes a path.
func (m *MemFS) Stat(name string) (os.FileInfo, error) {
	name = clean(name)
	m.mu.Lock()
	nd, ok := m.names[name]
	m.mu.Unlock()
	if !ok {
		return nil, notExist("stat", name)
	}
	nd.mu.RLock()
	defer nd.mu.RUnlock()
	return memInfo{name: filepath.Base(name), size: int64(len(nd.data)), dir: nd.dir, mod: nd.modTime}, nil
}

// SyncDir makes the entries of dir durable as they are now.
func (m *MemFS) SyncDir(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if nd, ok := m.names[dir]; !ok || !nd.dir {
		return notExist("sync", dir)
	}
	for p := range m.durable {
		if p != dir && filepath.Dir(p) == dir {
			delete(m.durable, p)
		}
	}
	for p, nd := range m.names {
		if p != dir && filepath.Dir(p) == dir {
			m.durable[p] = nd
		}
	}
	return nil
}

// Usage reports the capacity and what the files use.
func (m *MemFS) Usage(string) (Usage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	used := m.usedLocked()
	free := uint64(0)
	if used < m.capacity {
		free = m.capacity - used
	}
	return Usage{Total: m.capacity, Free: free}, nil
}

// Lock takes an in-process exclusive lock on name.
func (m *MemFS) Lock(name string) (io.Closer, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.locks[name] {
		return nil, fmt.Errorf("vfs: %s is locked", name)
	}
	m.locks[name] = true
	if _, ok := m.names[name]; !ok {
		m.names[name] = &memNode{modTime: time.Now()}
	}
	return &memLock{fs: m, name: name}, nil
}

type memLock struct {
	fs   *MemFS
	name string
	once sync.Once
}

func (l *memLock) Close() error {
	l.once.Do(func() {
		l.fs.mu.Lock()
		delete(l.fs.locks, l.name)
		l.fs.mu.Unlock()
	})
	return nil
}

// KillClone returns what a process killed at this instant (kill -9) leaves
// while the machine stays up: every name and every byte written, synced or
// not, since the page cache outlives the process. No lock is held in it.
func (m *MemFS) KillClone() *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cloneLocked(m.names, func(nd *memNode) []byte { return nd.data })
}

// cloneLocked builds a new file system, all durable, from the nodes of ns,
// each file holding content(node) (called under the node's read lock).
func (m *MemFS) cloneLocked(ns map[string]*memNode, content func(*memNode) []byte) *MemFS {
	c := &MemFS{names: make(map[string]*memNode, len(ns)), locks: make(map[string]bool), capacity: m.capacity}
	for p, nd := range ns {
		nd.mu.RLock()
		n := &memNode{dir: nd.dir, modTime: nd.modTime, data: append([]byte(nil), content(nd)...)}
		nd.mu.RUnlock()
		n.synced = append([]byte(nil), n.data...)
		c.names[p] = n
	}
	c.durable = make(map[string]*memNode, len(c.names))
	for p, n := range c.names {
		c.durable[p] = n
	}
	return c
}

// CrashClone returns the file system a power loss would leave: durable
// names only, each file with its synced content.
func (m *MemFS) CrashClone() *MemFS { return m.crashClone(nil) }

// CrashCloneTorn is CrashClone, except that each file also keeps a random
// prefix of the changes made since its last sync, the last of them possibly
// cut short: the disk wrote some of the data in order before power went.
func (m *MemFS) CrashCloneTorn(rng *rand.Rand) *MemFS { return m.crashClone(rng) }

func (m *MemFS) crashClone(rng *rand.Rand) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	kept := make(map[string]*memNode, len(m.durable))
	for p, nd := range m.durable {
		if m.durableAncestors(p) {
			kept[p] = nd
		}
	}
	return m.cloneLocked(kept, func(nd *memNode) []byte {
		data := append([]byte(nil), nd.synced...)
		if rng != nil && len(nd.pending) > 0 {
			k := rng.IntN(len(nd.pending) + 1)
			for i, w := range nd.pending[:k] {
				if i == k-1 && w.size < 0 && len(w.data) > 0 {
					w.data = w.data[:rng.IntN(len(w.data)+1)]
				}
				data = applyWrite(data, w)
			}
		}
		return data
	})
}

// durableAncestors reports whether every directory above p is durable.
func (m *MemFS) durableAncestors(p string) bool {
	for d := filepath.Dir(p); d != "/"; d = filepath.Dir(d) {
		if _, ok := m.durable[d]; !ok {
			return false
		}
	}
	return true
}

func applyWrite(data []byte, w memWrite) []byte {
	if w.size >= 0 {
		if int64(len(data)) > w.size {
			return data[:w.size]
		}
		return append(data, make([]byte, w.size-int64(len(data)))...)
	}
	end := w.off + int64(len(w.data))
	if end > int64(len(data)) {
		data = append(data, make([]byte, end-int64(len(data)))...)
	}
	copy(data[w.off:], w.data)
	return data
}

func (nd *memNode) truncate(size int64) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	nd.data = applyWrite(nd.data, memWrite{size: size})
	nd.pending = append(nd.pending, memWrite{size: size})
	nd.modTime = time.Now()
}

type memFile struct {
	fs       *MemFS
	node     *memNode
	name     string
	writable bool
	closed   bool
}

var errClosed = errors.New("vfs: file closed")

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, errClosed
	}
	f.node.mu.RLock()
	defer f.node.mu.RUnlock()
	if off >= int64(len(f.node.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, errClosed
	}
	if !f.writable {
		return 0, &os.PathError{Op: "write", Path: f.name, Err: syscall.EBADF}
	}
	f.node.mu.RLock()
	growth := off + int64(len(p)) - int64(len(f.node.data))
	f.node.mu.RUnlock()
	if err := f.fs.grow(growth); err != nil {
		return 0, &os.PathError{Op: "write", Path: f.name, Err: err}
	}
	f.node.mu.Lock()
	defer f.node.mu.Unlock()
	w := memWrite{off: off, data: append([]byte(nil), p...), size: -1}
	f.node.data = applyWrite(f.node.data, w)
	f.node.pending = append(f.node.pending, w)
	f.node.modTime = time.Now()
	return len(p), nil
}

func (f *memFile) Close() error {
	f.closed = true
	return nil
}

func (f *memFile) Sync() error {
	if f.closed {
		return errClosed
	}
	f.node.mu.Lock()
	defer f.node.mu.Unlock()
	f.node.synced = append(f.node.synced[:0], f.node.data...)
	f.node.pending = nil
	return nil
}

func (f *memFile) Truncate(size int64) error {
	if f.closed {
		return errClosed
	}
	f.node.mu.RLock()
	growth := size - int64(len(f.node.data))
	f.node.mu.RUnlock()
	if err := f.fs.grow(growth); err != nil {
		return &os.PathError{Op: "truncate", Path: f.name, Err: err}
	}
	f.node.truncate(size)
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.node.mu.RLock()
	defer f.node.mu.RUnlock()
	return int64(len(f.node.data)), nil
}

// Preallocate writes zeros over the range and syncs the file.
func (f *memFile) Preallocate(off, n int64) error {
	if _, err := f.WriteAt(make([]byte, n), off); err != nil {
		return err
	}
	return f.Sync()
}

func (f *memFile) Name() string { return f.name }

type memInfo struct {
	name string
	size int64
	dir  bool
	mod  time.Time
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) ModTime() time.Time { return i.mod }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }
func (i memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
