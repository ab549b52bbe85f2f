package vfs

import (
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Default is the operating system's file system.
var Default FS = diskFS{}

type diskFS struct{}

type diskFile struct {
	*os.File
}

func (f diskFile) Sync() error {
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
	}
	return nil
}

func (f diskFile) Size() (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (f diskFile) Preallocate(off, n int64) error {
	if n <= 0 {
		return nil
	}
	// Zeros through a second, O_DIRECT descriptor: no page-cache copy, no
	// cache pollution. File systems without O_DIRECT get buffered zeros.
	const align = 4096
	direct := off%align == 0 && n%align == 0
	g, err := os.OpenFile(f.Name(), os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil || !direct {
		if g != nil {
			_ = g.Close()
		}
		g, err = os.OpenFile(f.Name(), os.O_WRONLY, 0)
		if err != nil {
			return err
		}
	}
	defer g.Close()
	const chunk = 1 << 20
	buf := alignedZeros(chunk, align)
	for pos := off; pos < off+n; pos += chunk {
		m := min(int64(chunk), off+n-pos)
		if _, err := g.WriteAt(buf[:m], pos); err != nil {
			return err
		}
	}
	if err := unix.Fdatasync(int(g.Fd())); err != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
	}
	return nil
}

// alignedZeros returns n zero bytes starting at an address aligned to align,
// as O_DIRECT requires.
func alignedZeros(n, align int) []byte {
	b := make([]byte, n+align)
	shift := (align - int(uintptr(unsafe.Pointer(&b[0])))%align) % align
	return b[shift : shift+n]
}

// Evict drops cached pages of [off, off+n) (posix_fadvise DONTNEED).
func (f diskFile) Evict(off, n int64) error {
	if err := unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED); err != nil {
		return &os.PathError{Op: "fadvise", Path: f.Name(), Err: err}
	}
	return nil
}

// WriteBack writes [off, off+n) back and waits (sync_file_range).
func (f diskFile) WriteBack(off, n int64) error {
	const flags = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
	if err := unix.SyncFileRange(int(f.Fd()), off, n, flags); err != nil {
		return &os.PathError{Op: "sync_file_range", Path: f.Name(), Err: err}
	}
	return nil
}

func (diskFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return diskFile{f}, nil
}

func (diskFS) OpenReadWrite(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return diskFile{f}, nil
}

func (diskFS) Open(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return diskFile{f}, nil
}

func (diskFS) Remove(name string) error               { return os.Remove(name) }
func (diskFS) RemoveAll(name string) error            { return os.RemoveAll(name) }
func (diskFS) Rename(oldname, newname string) error   { return os.Rename(oldname, newname) }
func (diskFS) MkdirAll(d string, p os.FileMode) error { return os.MkdirAll(d, p) }
func (diskFS) Stat(name string) (os.FileInfo, error)  { return os.Stat(name) }

func (diskFS) List(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	sort.Strings(names)
	return names, nil
}

func (diskFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("vfs: sync dir %s: %w", dir, err)
	}
	return nil
}

func (diskFS) Usage(path string) (Usage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Usage{}, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	return Usage{Total: st.Blocks * uint64(st.Bsize), Free: st.Bavail * uint64(st.Bsize)}, nil
}

// diskLocks makes Lock exclusive within the process too: flock locks are
// per open file description, so a second open in the same process would
// otherwise succeed on some systems.
var diskLocks sync.Map

func (diskFS) Lock(name string) (io.Closer, error) {
	if _, loaded := diskLocks.LoadOrStore(name, true); loaded {
		return nil, fmt.Errorf("vfs: %s is locked by this process", name)
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		diskLocks.Delete(name)
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		diskLocks.Delete(name)
		return nil, fmt.Errorf("vfs: %s is locked by another process: %w", name, err)
	}
	return &diskLock{f: f, name: name}, nil
}

type diskLock struct {
	once sync.Once
	f    *os.File
	name string
}

func (l *diskLock) Close() error {
	var err error
	l.once.Do(func() {
		err = l.f.Close() // closing releases the flock
		diskLocks.Delete(l.name)
	})
	return err
}
