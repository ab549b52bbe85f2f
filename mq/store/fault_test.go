package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/message"
	"qianlang.io/mq/vfs"
)

// verifyStore checks a recovered store: every queue is dense from its min
// offset, every record decodes and sits at the offset it claims, and new
// puts continue each queue without a gap. It returns the bodies found.
func verifyStore(t *testing.T, s *Store, topic string, queues int32) map[string]bool {
	t.Helper()
	found := map[string]bool{}
	for q := range queues {
		msgs := pullAll(t, s, topic, q)
		require.Equal(t, int(s.MaxOffset(topic, q)-s.MinOffset(topic, q)), len(msgs), "queue %d", q)
		for _, m := range msgs {
			require.Equal(t, topic, m.Topic)
			require.Equal(t, q, m.QueueID)
			found[string(m.Body)] = true
		}
		max := s.MaxOffset(topic, q)
		next := newMsg(topic, q, "after-recovery", nil)
		require.NoError(t, s.PutSync([]*message.Message{next}))
		require.Equal(t, max, next.QueueOffset, "queue %d continues at its max", q)
	}
	return found
}

// TestStoreCrashSyncFlushLosesNoAckedMessage crashes a SYNC_FLUSH store at
// random moments while puts are in flight, tearing unsynced writes, and
// checks that every put acknowledged before the crash is found after
// recovery, in a consistent store; odd rounds use zero-filled segments.
func TestStoreCrashSyncFlushLosesNoAckedMessage(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range 12 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			fs := vfs.NewMem()
			o := testOptions(fs)
			o.Flush = SyncFlush
			o.WarmSegments = round%2 == 1 // zero-filled segments recover the same way
			s := openStore(t, o)
			var mu sync.Mutex
			acked := map[string]bool{}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for g := range 4 {
				grng := rand.New(rand.NewPCG(uint64(round), uint64(g)))
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						body := fmt.Sprintf("g%d-%d-%s", g, i, strings.Repeat("x", grng.IntN(2000)))
						if s.PutSync([]*message.Message{newMsg("T", int32(i%3), body, map[string]string{"KEYS": fmt.Sprint("k", i)})}) == nil {
							mu.Lock()
							acked[body] = true
							mu.Unlock()
						}
					}
				})
			}
			// Crash at a random moment after the first acknowledgement: a
			// loaded machine may take longer than the pause to give one.
			require.Eventually(t, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(acked) > 0
			}, 30*time.Second, time.Millisecond, "no put was acknowledged")
			time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
			mu.Lock()
			before := make(map[string]bool, len(acked))
			for k := range acked {
				before[k] = true
			}
			crashed := fs.CrashCloneTorn(rng)
			mu.Unlock()
			close(stop)
			wg.Wait()
			require.NoError(t, s.Close())

			ro := testOptions(crashed)
			ro.WarmSegments = o.WarmSegments
			r := openStore(t, ro)
			defer r.Close()
			found := verifyStore(t, r, "T", 3)
			for body := range before {
				require.True(t, found[body], "acknowledged message lost: %.20s", body)
			}
			require.NotEmpty(t, before)
		})
	}
}

// TestStoreCrashAsyncFlushRecoversConsistently tears an ASYNC_FLUSH store at
// random moments: what was flushed survives, the rest may not, and the
// store is consistent either way.
func TestStoreCrashAsyncFlushRecoversConsistently(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for round := range 12 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			fs := vfs.NewMem()
			o := testOptions(fs)
			o.FlushInterval = time.Hour // only explicit flushes
			s := openStore(t, o)
			var flushed []string
			n := 50 + rng.IntN(300)
			for i := range n {
				body := fmt.Sprintf("m%d-%s", i, strings.Repeat("y", rng.IntN(3000)))
				require.NoError(t, s.PutSync([]*message.Message{newMsg("A", int32(i%2), body, nil)}))
				flushed = append(flushed, body)
			}
			require.NoError(t, s.Flush())
			for i := range rng.IntN(200) {
				require.NoError(t, s.PutSync([]*message.Message{newMsg("A", int32(i%2), fmt.Sprint("late", i), nil)}))
			}
			crashed := fs.CrashCloneTorn(rng)
			require.NoError(t, s.Close())

			r := openStore(t, testOptions(crashed))
			defer r.Close()
			found := verifyStore(t, r, "A", 2)
			for _, body := range flushed {
				require.True(t, found[body], "flushed message lost")
			}
		})
	}
}

func TestStoreDiskFullRejectsThenResumes(t *testing.T) {
	efs := vfs.NewErrorFS(vfs.NewMem())
	o := testOptions(efs)
	s := openStore(t, o)
	defer s.Close()
	for i := range 30 {
		require.NoError(t, s.PutSync([]*message.Message{newMsg("F", 0, fmt.Sprint("before", i), nil)}))
	}
	efs.Full()
	for range 5 {
		err := s.PutSync([]*message.Message{newMsg("F", 0, strings.Repeat("z", 5000), nil)})
		require.ErrorIs(t, err, ErrDiskFull)
	}
	efs.NotFull()
	for i := range 30 {
		require.NoError(t, s.PutSync([]*message.Message{newMsg("F", 0, fmt.Sprint("after", i), nil)}))
	}
	require.Eventually(t, func() bool { return s.MaxOffset("F", 0) == 60 }, time.Second, time.Millisecond)
	got := pullAll(t, s, "F", 0)
	require.Len(t, got, 60, "failed puts take no offsets and damage nothing")
	require.Equal(t, "before0", string(got[0].Body))
	require.Equal(t, "after29", string(got[59].Body))
}

func TestStorePartialWriteLeavesNoTrace(t *testing.T) {
	mem := vfs.NewMem()
	efs := vfs.NewErrorFS(mem)
	o := testOptions(efs)
	s := openStore(t, o)
	for i := range 10 {
		require.NoError(t, s.PutSync([]*message.Message{newMsg("P", 0, fmt.Sprint("ok", i), nil)}))
	}
	efs.InjectPartialWrite(func(p string) bool { return strings.Contains(p, "commitlog") }, 40, syscall.ENOSPC)
	require.ErrorIs(t, s.PutSync([]*message.Message{newMsg("P", 0, "torn", nil)}), ErrDiskFull)
	efs.Clear()
	for i := range 10 {
		require.NoError(t, s.PutSync([]*message.Message{newMsg("P", 0, fmt.Sprint("ok", 10+i), nil)}))
	}
	require.NoError(t, s.Close())
	r := openStore(t, testOptions(mem))
	defer r.Close()
	got := pullAll(t, r, "P", 0)
	require.Len(t, got, 20)
	for i, m := range got {
		require.Equal(t, fmt.Sprint("ok", i), string(m.Body))
	}
}

func TestStoreDiskUsageAboveWarningRefusesPuts(t *testing.T) {
	mem := vfs.NewMem()
	o := testOptions(mem)
	o.CleanInterval = 10 * time.Millisecond
	s := openStore(t, o)
	defer s.Close()
	require.NoError(t, s.PutSync([]*message.Message{newMsg("U", 0, "x", nil)}))
	u, _ := mem.Usage("/")
	mem.SetCapacity((u.Total - u.Free) + 1024) // nearly full
	require.Eventually(t, func() bool {
		return errors.Is(s.PutSync([]*message.Message{newMsg("U", 0, "y", nil)}), ErrDiskFull)
	}, 2*time.Second, 10*time.Millisecond)
	mem.SetCapacity(1 << 40)
	require.Eventually(t, func() bool {
		return s.PutSync([]*message.Message{newMsg("U", 0, "z", nil)}) == nil
	}, 2*time.Second, 10*time.Millisecond)
}

func TestStoreFsyncFailureInSyncModeRollsBack(t *testing.T) {
	mem := vfs.NewMem()
	efs := vfs.NewErrorFS(mem)
	o := testOptions(efs)
	o.Flush = SyncFlush
	s := openStore(t, o)
	for i := range 10 {
		require.NoError(t, s.PutSync([]*message.Message{newMsg("S", 0, fmt.Sprint("ok", i), nil)}))
	}
	efs.Inject(vfs.OpSync, func(p string) bool { return strings.Contains(p, "commitlog") }, syscall.EIO)
	require.ErrorIs(t, s.PutSync([]*message.Message{newMsg("S", 0, "lost", nil)}), ErrWriteFailed)
	efs.Clear()
	var last *message.Message
	for i := range 10 {
		last = newMsg("S", 0, fmt.Sprint("ok", 10+i), nil)
		require.NoError(t, s.PutSync([]*message.Message{last}))
	}
	require.Equal(t, int64(19), last.QueueOffset, "the failed put's offset is reused")
	require.Eventually(t, func() bool { return s.MaxOffset("S", 0) == 20 }, time.Second, time.Millisecond)
	got := pullAll(t, s, "S", 0)
	require.Len(t, got, 20)
	require.NoError(t, s.Close())

	r := openStore(t, testOptions(mem.CrashClone()))
	defer r.Close()
	got = pullAll(t, r, "S", 0)
	require.Len(t, got, 20)
	for i, m := range got {
		require.Equal(t, fmt.Sprint("ok", i), string(m.Body))
	}
}

func TestStoreAsyncFsyncFailureFencesUntilItSucceeds(t *testing.T) {
	efs := vfs.NewErrorFS(vfs.NewMem())
	o := testOptions(efs)
	s := openStore(t, o)
	defer s.Close()
	require.NoError(t, s.PutSync([]*message.Message{newMsg("Q", 0, "a", nil)}))
	efs.Inject(vfs.OpSync, func(p string) bool { return strings.Contains(p, "commitlog") }, syscall.EIO)
	require.Eventually(t, func() bool {
		return errors.Is(s.PutSync([]*message.Message{newMsg("Q", 0, "b", nil)}), ErrWriteFailed)
	}, 2*time.Second, 5*time.Millisecond)
	efs.Clear()
	require.Eventually(t, func() bool {
		return s.PutSync([]*message.Message{newMsg("Q", 0, "c", nil)}) == nil
	}, 2*time.Second, 5*time.Millisecond)
}
