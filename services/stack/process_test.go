package stack

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pidLog records the pids a process reports.
type pidLog struct {
	mu   sync.Mutex
	pids []int
}

func (l *pidLog) started(_ string, pid int) {
	l.mu.Lock()
	l.pids = append(l.pids, pid)
	l.mu.Unlock()
}

func (l *pidLog) all() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.pids...)
}

func newTestProcess(t *testing.T, path string, args ...string) (*process, *pidLog) {
	l := &pidLog{}
	p := newProcess(spec{name: "test", path: path, args: args, logPath: filepath.Join(t.TempDir(), "test.log")},
		slog.New(slog.DiscardHandler), l.started)
	return p, l
}

func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

func TestProcessIsRestartedWithinTwoSecondsOfAKill(t *testing.T) {
	p, pids := newTestProcess(t, "/bin/sleep", "600")
	require.NoError(t, p.start())
	defer p.stop(5 * time.Second)
	for round := 1; round <= 3; round++ { // every kill restarts at once: no back-off after a long run
		old := p.pid()
		killed := time.Now()
		require.NoError(t, syscall.Kill(old, syscall.SIGKILL))
		require.Eventually(t, func() bool { return p.pid() != old && running(p.pid()) }, 2*time.Second, 5*time.Millisecond, "round %d", round)
		require.Less(t, time.Since(killed), 2*time.Second)
		require.Len(t, pids.all(), round+1)
		require.Equal(t, p.pid(), pids.all()[round])
		p.mu.Lock()
		p.since = time.Now().Add(-crashWindow) // as if it had run long
		p.mu.Unlock()
	}
	b, err := os.ReadFile(p.logPath)
	require.NoError(t, err)
	require.Equal(t, 4, strings.Count(string(b), "=== qlstack"), "each start is marked in the log")
}

func TestCrashLoopBacksOff(t *testing.T) {
	p, pids := newTestProcess(t, "/bin/false")
	require.NoError(t, p.start())
	time.Sleep(1200 * time.Millisecond)
	require.NoError(t, p.stop(time.Second))
	n := len(pids.all())
	// Immediately, then after 250 ms and 500 ms: 3 or 4 runs in 1.2 s, not hundreds.
	require.GreaterOrEqual(t, n, 3)
	require.LessOrEqual(t, n, 5)
	time.Sleep(600 * time.Millisecond)
	require.Equal(t, n, len(pids.all()), "no restart after stop")
}

func TestStopEndsTheWholeProcessGroup(t *testing.T) {
	dir := t.TempDir()
	childPid := filepath.Join(dir, "child.pid")
	// The shell forks a child that would outlive it (as nginx's workers do)
	// and ignores SIGTERM, so stop has to escalate.
	p, _ := newTestProcess(t, "/bin/sh", "-c", `trap "" TERM; sleep 600 & echo $! > `+childPid+`; wait`)
	require.NoError(t, p.start())
	var child int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(childPid)
		child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && child > 0
	}, 2*time.Second, 5*time.Millisecond)
	leader := p.pid()
	begin := time.Now()
	err := p.stop(300 * time.Millisecond)
	require.ErrorContains(t, err, "did not stop within 300ms after terminated; killed")
	require.Less(t, time.Since(begin), 3*time.Second)
	require.False(t, running(leader))
	require.False(t, running(child), "the forked child must die with its group")
	require.NoError(t, p.stop(time.Second), "a second stop does nothing")
}

func TestKilledLeaderTakesItsGroupAlong(t *testing.T) {
	dir := t.TempDir()
	childPid := filepath.Join(dir, "child.pid")
	p, _ := newTestProcess(t, "/bin/sh", "-c", `sleep 600 & echo $! > `+childPid+`; wait`)
	require.NoError(t, p.start())
	defer p.stop(5 * time.Second)
	var child int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(childPid)
		child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && child > 0
	}, 2*time.Second, 5*time.Millisecond)
	old := p.pid()
	require.NoError(t, syscall.Kill(old, syscall.SIGKILL))
	require.Eventually(t, func() bool { return p.pid() != old }, 2*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return !running(child) }, time.Second, 5*time.Millisecond,
		"an orphan of the crashed run (an nginx worker holding the port) must be killed before the restart")
}

func TestStartFailsForAMissingBinary(t *testing.T) {
	p, _ := newTestProcess(t, "/nonexistent/mqbroker")
	require.ErrorContains(t, p.start(), "test: start /nonexistent/mqbroker")
	require.NoError(t, p.stop(time.Second))
}
