package vfs

import (
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fsUnderTest runs f against the disk and the memory file systems.
func fsUnderTest(t *testing.T, f func(t *testing.T, fs FS, dir string)) {
	t.Run("disk", func(t *testing.T) { f(t, Default, t.TempDir()) })
	t.Run("mem", func(t *testing.T) {
		m := NewMem()
		require.NoError(t, m.MkdirAll("/tmp/x", 0o755))
		f(t, m, "/tmp/x")
	})
}

func TestFSContract(t *testing.T) {
	fsUnderTest(t, func(t *testing.T, fs FS, dir string) {
		p := filepath.Join(dir, "a")
		f, err := fs.Create(p)
		require.NoError(t, err)
		_, err = f.WriteAt([]byte("hello"), 3)
		require.NoError(t, err)
		require.NoError(t, f.Sync())
		n, err := f.Size()
		require.NoError(t, err)
		require.Equal(t, int64(8), n)
		buf := make([]byte, 8)
		_, err = f.ReadAt(buf, 0)
		require.NoError(t, err)
		require.Equal(t, []byte("\x00\x00\x00hello"), buf)
		_, err = f.ReadAt(buf, 4)
		require.ErrorIs(t, err, io.EOF)
		require.NoError(t, f.Truncate(2))
		require.Equal(t, "a", filepath.Base(f.Name()))
		require.NoError(t, f.Close())

		z, err := fs.Create(filepath.Join(dir, "zeros"))
		require.NoError(t, err)
		require.NoError(t, z.Preallocate(0, 3<<20))
		n, err = z.Size()
		require.NoError(t, err)
		require.Equal(t, int64(3<<20), n)
		chunk := make([]byte, 4096)
		_, err = z.ReadAt(chunk, 2<<20)
		require.NoError(t, err)
		require.Equal(t, make([]byte, 4096), chunk)
		require.NoError(t, z.Close())
		require.NoError(t, fs.Remove(filepath.Join(dir, "zeros")))

		require.NoError(t, fs.MkdirAll(filepath.Join(dir, "d", "e"), 0o755))
		require.NoError(t, fs.Rename(p, filepath.Join(dir, "d", "b")))
		names, err := fs.List(dir)
		require.NoError(t, err)
		require.Equal(t, []string{"d"}, names)
		fi, err := fs.Stat(filepath.Join(dir, "d", "b"))
		require.NoError(t, err)
		require.Equal(t, int64(2), fi.Size())
		require.NoError(t, fs.SyncDir(filepath.Join(dir, "d")))

		_, err = fs.Open(filepath.Join(dir, "missing"))
		require.ErrorIs(t, err, os.ErrNotExist)
		require.NoError(t, fs.Remove(filepath.Join(dir, "d", "b")))
		require.NoError(t, fs.RemoveAll(filepath.Join(dir, "d")))
		names, err = fs.List(dir)
		require.NoError(t, err)
		require.Empty(t, names)

		l, err := fs.Lock(filepath.Join(dir, "lock"))
		require.NoError(t, err)
		_, err = fs.Lock(filepath.Join(dir, "lock"))
		require.Error(t, err)
		require.NoError(t, l.Close())
		l, err = fs.Lock(filepath.Join(dir, "lock"))
		require.NoError(t, err)
		require.NoError(t, l.Close())

		u, err := fs.Usage(dir)
		require.NoError(t, err)
		require.Positive(t, u.Total)
		require.GreaterOrEqual(t, u.Total, u.Free)
	})
}

func writeFile(t *testing.T, fs FS, path, data string, sync bool) File {
	t.Helper()
	f, err := fs.Create(path)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte(data), 0)
	require.NoError(t, err)
	if sync {
		require.NoError(t, f.Sync())
	}
	return f
}

func readAll(t *testing.T, fs FS, path string) string {
	t.Helper()
	f, err := fs.Open(path)
	require.NoError(t, err)
	n, _ := f.Size()
	b := make([]byte, n)
	_, err = f.ReadAt(b, 0)
	if n > 0 {
		require.NoError(t, err)
	}
	return string(b)
}

func TestMemCrashKeepsOnlyDurableState(t *testing.T) {
	m := NewMem()
	require.NoError(t, m.MkdirAll("/d", 0o755))
	require.NoError(t, m.SyncDir("/"))
	f := writeFile(t, m, "/d/synced", "abc", true)
	_, err := f.WriteAt([]byte("XYZ"), 3)
	require.NoError(t, err)
	writeFile(t, m, "/d/unsynced-data", "lost", false)
	require.NoError(t, m.SyncDir("/d"))
	writeFile(t, m, "/d/no-dir-sync", "data", true)

	c := m.CrashClone()
	require.Equal(t, "abc", readAll(t, c, "/d/synced"))
	require.Equal(t, "", readAll(t, c, "/d/unsynced-data"))
	_, err = c.Open("/d/no-dir-sync")
	require.ErrorIs(t, err, os.ErrNotExist, "a name needs its directory synced")

	// A directory needs its parent synced too.
	require.NoError(t, m.MkdirAll("/e/f", 0o755))
	writeFile(t, m, "/e/f/x", "x", true)
	require.NoError(t, m.SyncDir("/e/f"))
	_, err = m.CrashClone().Open("/e/f/x")
	require.ErrorIs(t, err, os.ErrNotExist)
	require.NoError(t, m.SyncDir("/e"))
	require.NoError(t, m.SyncDir("/"))
	require.Equal(t, "x", readAll(t, m.CrashClone(), "/e/f/x"))
}

func TestMemCrashRename(t *testing.T) {
	m := NewMem()
	writeFile(t, m, "/a.tmp", "new", true)
	writeFile(t, m, "/a", "old", true)
	require.NoError(t, m.SyncDir("/"))
	require.NoError(t, m.Rename("/a.tmp", "/a"))
	require.Equal(t, "old", readAll(t, m.CrashClone(), "/a"), "rename not durable before SyncDir")
	require.NoError(t, m.SyncDir("/"))
	require.Equal(t, "new", readAll(t, m.CrashClone(), "/a"))
}

func TestMemCrashTornKeepsAPrefixOfWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		m := NewMem()
		f := writeFile(t, m, "/log", "base", true)
		require.NoError(t, m.SyncDir("/"))
		want := "base"
		for i := range 5 {
			chunk := string(rune('a'+i)) + "123"
			_, err := f.WriteAt([]byte(chunk), int64(len(want)))
			require.NoError(t, err)
			want += chunk
		}
		got := readAll(t, m.CrashCloneTorn(rng), "/log")
		require.True(t, len(got) >= 4 && want[:len(got)] == got, "torn %q is not a prefix of %q", got, want)
	}
}

func TestMemCapacity(t *testing.T) {
	m := NewMem()
	m.SetCapacity(10)
	f, err := m.Create("/f")
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("0123456789"), 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("x"), 10)
	require.ErrorIs(t, err, ErrNoSpace)
	require.ErrorIs(t, err, syscall.ENOSPC)
	_, err = f.WriteAt([]byte("y"), 0)
	require.NoError(t, err, "overwriting needs no space")
	u, err := m.Usage("/")
	require.NoError(t, err)
	require.Equal(t, uint64(0), u.Free)
	require.InDelta(t, 1.0, u.UsedRatio(), 1e-9)
}

func TestErrorFS(t *testing.T) {
	e := NewErrorFS(NewMem())
	boom := errors.New("boom")
	f, err := e.Create("/seg")
	require.NoError(t, err)
	e.Inject(OpSync, nil, boom)
	require.ErrorIs(t, f.Sync(), boom)
	e.Clear()
	require.NoError(t, f.Sync())

	e.InjectPartialWrite(func(p string) bool { return p == "/seg" }, 2, syscall.ENOSPC)
	n, err := f.WriteAt([]byte("abcd"), 0)
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.Equal(t, 2, n)
	e.Clear()
	b := make([]byte, 2)
	_, err = f.ReadAt(b, 0)
	require.NoError(t, err)
	require.Equal(t, "ab", string(b))

	e.Full()
	_, err = f.WriteAt([]byte("x"), 0)
	require.ErrorIs(t, err, syscall.ENOSPC)
	u, err := e.Usage("/")
	require.NoError(t, err)
	require.Zero(t, u.Free)
	e.NotFull()
	_, err = f.WriteAt([]byte("x"), 0)
	require.NoError(t, err)
	require.Equal(t, int64(3), e.Hits())

	// A latency rule slows the operation down and lets it succeed; a
	// failure rule after it still fails it.
	e.InjectLatency(OpSync, func(p string) bool { return p == "/seg" }, 20*time.Millisecond)
	start := time.Now()
	require.NoError(t, f.Sync())
	require.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond)
	_, err = f.WriteAt([]byte("y"), 0)
	require.NoError(t, err, "a latency rule on syncs touched a write")
	e.Inject(OpSync, nil, boom)
	require.ErrorIs(t, f.Sync(), boom)
	require.Equal(t, int64(4), e.Hits(), "a slowed operation counted as failed")
}

func TestWriteBack(t *testing.T) {
	p := filepath.Join(t.TempDir(), "seg")
	f, err := Default.Create(p)
	require.NoError(t, err)
	defer f.Close()
	data := make([]byte, 3*4096+100)
	for i := range data {
		data[i] = byte(i)
	}
	_, err = f.WriteAt(data, 0)
	require.NoError(t, err)
	w, ok := f.(WriteBacker)
	require.True(t, ok, "disk files write back")
	require.NoError(t, w.WriteBack(0, 3*4096))
	require.NoError(t, f.Sync())
	got := make([]byte, len(data))
	_, err = f.ReadAt(got, 0)
	require.NoError(t, err)
	require.Equal(t, data, got)

	// Through ErrorFS it fails as Sync does.
	e := NewErrorFS(Default)
	g, err := e.OpenReadWrite(p)
	require.NoError(t, err)
	defer g.Close()
	boom := errors.New("boom")
	e.Inject(OpSync, nil, boom)
	require.ErrorIs(t, g.(WriteBacker).WriteBack(0, 4096), boom)
	e.Clear()
	require.NoError(t, g.(WriteBacker).WriteBack(0, 4096))
}
