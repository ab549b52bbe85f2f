// Package vfs is the file-system seam of the queue's store.
//
// Everything the store writes or reads goes through FS and File, so tests can
// swap the disk for an in-memory file system that forgets unsynced data on a
// simulated crash (NewMem, (*MemFS).CrashClone) or for a wrapper that injects
// disk errors such as ENOSPC and EIO (NewErrorFS).
//
// The contract is the POSIX one the store relies on:
//   - data written with WriteAt is visible to ReadAt at once, but survives a
//     crash only after File.Sync returns nil;
//   - a created, renamed or removed name survives a crash only after
//     FS.SyncDir of its parent directory returns nil;
//   - Rename atomically replaces the target.
package vfs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
)

// ErrNoSpace is returned (wrapped) when a write cannot be stored because the
// device is full. errors.Is(err, syscall.ENOSPC) also holds for the disk FS.
var ErrNoSpace = errors.New("vfs: no space left on device")

// File is an open file.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Sync makes every byte written so far durable (fdatasync).
	Sync() error
	// Truncate changes the size of the file.
	Truncate(size int64) error
	// Size returns the current size of the file.
	Size() (int64, error)
	// Preallocate writes zeros over [off, off+n) and syncs them, so the
	// blocks are allocated and written (not sparse, not unwritten extents):
	// later writes into the range need no block allocation, and fsyncs of
	// them commit no allocation metadata. The disk implementation bypasses
	// the page cache.
	Preallocate(off, n int64) error
	// Name returns the name the file was opened with.
	Name() string
}

// Evicter is implemented by files whose cached pages can be dropped. The
// store drops old, flushed CommitLog data so its page-cache footprint stays
// bounded and new writes reuse recently freed pages.
type Evicter interface {
	// Evict asks the kernel to drop cached pages of [off, off+n); the data
	// must already be synced.
	Evict(off, n int64) error
}

// WriteBacker is implemented by files whose dirty pages in a range can be
// written to the device ahead of a Sync. The store writes back the whole
// pages of the CommitLog first, so the Sync that follows has little left
// to write and the page being appended to is under write-back only
// briefly (a write into such a page waits for that I/O).
type WriteBacker interface {
	// WriteBack writes the dirty pages of [off, off+n) and waits for
	// them. It makes nothing durable by itself: Sync still must follow.
	WriteBack(off, n int64) error
}

// Usage describes the space of the device holding a path.
type Usage struct {
	Total uint64 // bytes
	Free  uint64 // bytes available to the process
}

// UsedRatio returns the used fraction of the device in [0, 1].
func (u Usage) UsedRatio() float64 {
	if u.Total == 0 {
		return 0
	}
	return float64(u.Total-u.Free) / float64(u.Total)
}

// FS is a file system.
type FS interface {
	// Create creates name, truncating it if it exists, opened read-write.
	Create(name string) (File, error)
	// OpenReadWrite opens an existing file read-write.
	OpenReadWrite(name string) (File, error)
	// Open opens an existing file read-only.
	Open(name string) (File, error)
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// RemoveAll removes a path and everything under it.
	RemoveAll(name string) error
	// Rename atomically renames oldname to newname, replacing newname.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and its parents.
	MkdirAll(dir string, perm os.FileMode) error
	// List returns the names (not paths) of the entries of dir, sorted.
	List(dir string) ([]string, error)
	// Stat describes a path.
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the entries of dir (creations, renames, removals) durable.
	SyncDir(dir string) error
	// Usage reports the space of the device holding path.
	Usage(path string) (Usage, error)
	// Lock takes an exclusive lock on the file name (created if missing), so
	// two processes cannot open the same store. Closing the result unlocks.
	Lock(name string) (io.Closer, error)
}

// MkdirAllSync creates dir and its missing parents like MkdirAll, then
// syncs the parent of every directory it created, so the new directories
// survive a crash.
func MkdirAllSync(fs FS, dir string) error {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := fs.Stat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := fs.SyncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}
