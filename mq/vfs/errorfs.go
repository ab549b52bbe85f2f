package vfs

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Op is a set of file-system operations faults can be injected into.
type Op uint32

// Operations.
const (
	OpWrite Op = 1 << iota
	OpSync
	OpRead
	OpCreate
	OpRemove
	OpRename
	OpSyncDir
	OpPreallocate
	OpTruncate
	OpOpen
)

// ErrorFS wraps a file system and fails or slows down chosen operations,
// to test how the store behaves on a full, failing or slow disk.
type ErrorFS struct {
	inner FS

	mu    sync.RWMutex
	rules []rule
	full  bool
	hits  atomic.Int64
}

type rule struct {
	ops     Op
	match   func(path string) bool
	err     error
	partial int           // for OpWrite: bytes written before failing; -1: none
	delay   time.Duration // a latency rule: the operation waits, then runs
}

// NewErrorFS wraps inner.
func NewErrorFS(inner FS) *ErrorFS { return &ErrorFS{inner: inner} }

// Inject makes the operations in ops on paths that match (nil: all) fail
// with err until Clear.
func (e *ErrorFS) Inject(ops Op, match func(path string) bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rules = append(e.rules, rule{ops: ops, match: match, err: err, partial: -1})
}

// InjectPartialWrite makes writes to matching paths store only their first
// n bytes and then fail with err, as a write that ran out of space midway.
func (e *ErrorFS) InjectPartialWrite(match func(path string) bool, n int, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rules = append(e.rules, rule{ops: OpWrite, match: match, err: err, partial: n})
}

// InjectLatency makes the operations in ops on paths that match (nil: all)
// take d longer, as on a slower disk (an fsync of an SSD without a
// power-loss-protected cache takes milliseconds), until Clear.
func (e *ErrorFS) InjectLatency(ops Op, match func(path string) bool, d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rules = append(e.rules, rule{ops: ops, match: match, partial: -1, delay: d})
}

// Full makes every write, preallocation, truncation that grows and sync
// fail with ENOSPC, and Usage report a full device, until NotFull.
func (e *ErrorFS) Full() { e.setFull(true) }

// NotFull undoes Full.
func (e *ErrorFS) NotFull() { e.setFull(false) }

func (e *ErrorFS) setFull(v bool) {
	e.mu.Lock()
	e.full = v
	e.mu.Unlock()
}

// Clear removes every injected fault (Full included).
func (e *ErrorFS) Clear() {
	e.mu.Lock()
	e.rules, e.full = nil, false
	e.mu.Unlock()
}

// Hits counts the operations failed so far.
func (e *ErrorFS) Hits() int64 { return e.hits.Load() }

var errNoSpace = fmt.Errorf("%w: %w", ErrNoSpace, syscall.ENOSPC)

// check returns the fault for op on path, and for writes the bytes to let
// through first.
func (e *ErrorFS) check(op Op, path string) (int, error) {
	partial, delay, err := e.rule(op, path)
	if delay > 0 {
		time.Sleep(delay)
	}
	return partial, err
}

func (e *ErrorFS) rule(op Op, path string) (int, time.Duration, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.full && op&(OpWrite|OpSync|OpPreallocate|OpCreate) != 0 {
		e.hits.Add(1)
		return 0, 0, &os.PathError{Op: "inject", Path: path, Err: errNoSpace}
	}
	var delay time.Duration
	for _, r := range e.rules {
		if r.ops&op == 0 || (r.match != nil && !r.match(path)) {
			continue
		}
		if r.delay > 0 {
			delay += r.delay
			continue
		}
		e.hits.Add(1)
		return r.partial, delay, &os.PathError{Op: "inject", Path: path, Err: r.err}
	}
	return 0, delay, nil
}

func (e *ErrorFS) wrap(f File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &errFile{File: f, fs: e}, nil
}

// Create creates a file.
func (e *ErrorFS) Create(name string) (File, error) {
	if _, err := e.check(OpCreate, name); err != nil {
		return nil, err
	}
	return e.wrap(e.inner.Create(name))
}

// OpenReadWrite opens a file read-write.
func (e *ErrorFS) OpenReadWrite(name string) (File, error) {
	if _, err := e.check(OpOpen, name); err != nil {
		return nil, err
	}
	return e.wrap(e.inner.OpenReadWrite(name))
}

// Open opens a file read-only.
func (e *ErrorFS) Open(name string) (File, error) {
	if _, err := e.check(OpOpen, name); err != nil {
		return nil, err
	}
	return e.wrap(e.inner.Open(name))
}

// Remove removes a file.
func (e *ErrorFS) Remove(name string) error {
	if _, err := e.check(OpRemove, name); err != nil {
		return err
	}
	return e.inner.Remove(name)
}

// RemoveAll removes a tree.
func (e *ErrorFS) RemoveAll(name string) error {
	if _, err := e.check(OpRemove, name); err != nil {
		return err
	}
	return e.inner.RemoveAll(name)
}

// Rename renames a file.
func (e *ErrorFS) Rename(oldname, newname string) error {
	if _, err := e.check(OpRename, newname); err != nil {
		return err
	}
	return e.inner.Rename(oldname, newname)
}

// MkdirAll creates directories.
func (e *ErrorFS) MkdirAll(dir string, perm os.FileMode) error {
	if _, err := e.check(OpCreate, dir); err != nil {
		return err
	}
	return e.inner.MkdirAll(dir, perm)
}

// List lists a directory.
func (e *ErrorFS) List(dir string) ([]string, error) { return e.inner.List(dir) }

// Stat describes a path.
func (e *ErrorFS) Stat(name string) (os.FileInfo, error) { return e.inner.Stat(name) }

// SyncDir syncs a directory.
func (e *ErrorFS) SyncDir(dir string) error {
	if _, err := e.check(OpSyncDir, dir); err != nil {
		return err
	}
	return e.inner.SyncDir(dir)
}

// Usage reports the device space, or a full device under Full.
func (e *ErrorFS) Usage(path string) (Usage, error) {
	u, err := e.inner.Usage(path)
	e.mu.RLock()
	full := e.full
	e.mu.RUnlock()
	if err == nil && full {
		u.Free = 0
	}
	return u, err
}

// Lock locks a file.
func (e *ErrorFS) Lock(name string) (io.Closer, error) { return e.inner.Lock(name) }

type errFile struct {
	File
	fs *ErrorFS
}

func (f *errFile) WriteAt(p []byte, off int64) (int, error) {
	partial, err := f.fs.check(OpWrite, f.Name())
	if err == nil {
		return f.File.WriteAt(p, off)
	}
	if partial > 0 {
		n, werr := f.File.WriteAt(p[:min(partial, len(p))], off)
		if werr != nil {
			return n, werr
		}
		return n, err
	}
	return 0, err
}

func (f *errFile) ReadAt(p []byte, off int64) (int, error) {
	if _, err := f.fs.check(OpRead, f.Name()); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *errFile) Sync() error {
	if _, err := f.fs.check(OpSync, f.Name()); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *errFile) Truncate(size int64) error {
	if _, err := f.fs.check(OpTruncate, f.Name()); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *errFile) Evict(off, n int64) error {
	if e, ok := f.File.(Evicter); ok {
		return e.Evict(off, n)
	}
	return nil
}

// WriteBack fails as Sync does (it is the first half of one).
func (f *errFile) WriteBack(off, n int64) error {
	if _, err := f.fs.check(OpSync, f.Name()); err != nil {
		return err
	}
	if w, ok := f.File.(WriteBacker); ok {
		return w.WriteBack(off, n)
	}
	return nil
}

func (f *errFile) Preallocate(off, n int64) error {
	if _, err := f.fs.check(OpPreallocate, f.Name()); err != nil {
		return err
	}
	return f.File.Preallocate(off, n)
}
