package vfs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMemKillCloneKeepsUnsyncedWrites(t *testing.T) {
	m := NewMem()
	require.NoError(t, m.MkdirAll("/d", 0o755))
	f, err := m.Create("/d/f")
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("hello"), 0)
	require.NoError(t, err)
	lock, err := m.Lock("/d/lock")
	require.NoError(t, err)
	defer lock.Close()

	k := m.KillClone()
	g, err := k.Open("/d/f")
	require.NoError(t, err)
	b := make([]byte, 5)
	_, err = g.ReadAt(b, 0)
	require.NoError(t, err)
	require.Equal(t, "hello", string(b), "a killed process's writes stay in the page cache")
	_, err = k.Lock("/d/lock")
	require.NoError(t, err, "locks die with the process")

	_, err = m.CrashClone().Open("/d/f")
	require.Error(t, err, "a power loss takes the unsynced name")
}
