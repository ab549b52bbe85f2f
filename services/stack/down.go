package stack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNotRunning is returned by Down when no stack runs in the directory.
var ErrNotRunning = errors.New("no stack runs there")

// Down stops the stack whose launcher holds dir's pid file: SIGTERM to the
// launcher, which stops everything in order, then a wait until it has let
// go of the pid file (it has, once every process is gone), or until ctx
// ends.
func Down(ctx context.Context, dir string, log *slog.Logger) error {
	path := filepath.Join(dir, PidFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", dir, ErrNotRunning)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if free(f) {
		return fmt.Errorf("%s: %w (stale %s)", dir, ErrNotRunning, PidFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return fmt.Errorf("%s: bad pid %q", path, strings.TrimSpace(string(b)))
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal qlstack (pid %d): %w", pid, err)
	}
	log.Info("stopping the stack", "dir", dir, "pid", pid)
	begin := time.Now()
	for !free(f) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("qlstack (pid %d) still running after %v: %w", pid, time.Since(begin).Round(time.Second), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	log.Info("stack stopped", "dir", dir, "took", time.Since(begin).Round(time.Millisecond))
	return nil
}

// free reports whether nobody holds the pid file's lock.
func free(f *os.File) bool {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return false
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return true
}
