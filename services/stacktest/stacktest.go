// Package stacktest starts the whole platform for a test: it runs
// `bin/qlstack up` as a subprocess in a temporary directory, waits for its
// "ready" line, reads stack.json, and stops the stack when the test ends.
//
//	s := stacktest.Start(t, stacktest.Options{Groups: 1})
//	resp, err := http.Get(s.Gateway + "/api/skus/sku-1")
//	s.Kill("broker-a-n0")
//
// The binaries come from $QIANLANG_BIN when it holds qlstack, else from
// the repository's bin/ (make build); without qlstack the test is skipped.
package stacktest

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"qianlang.io/services/stack"
)

// Options choose the stack's flags. Zero values take qlstack's defaults,
// except Groups (1) and BasePort (a free range).
type Options struct {
	// Dir is the stack directory; empty means a fresh t.TempDir(), or a
	// directory under $QIANLANG_TEST_LOGS (kept after the test) when set.
	Dir string
	// BasePort is --base-port; 0 picks a range whose ports are free.
	BasePort int
	// Groups is --groups; 0 means 1 (one Raft group of three brokers).
	Groups           int
	OrderTimeout     time.Duration
	SeckillOrderRate int
	QuizMinAnswerMs  int
	// Components is --components; empty means everything.
	Components []string
	// BinDir holds qlstack and the binaries it runs; empty means BinDir().
	BinDir string
	// Args are more flags for `qlstack up`.
	Args []string
	// ReadyTimeout bounds the wait for "ready"; 0 means 3 minutes.
	ReadyTimeout time.Duration
	// StopTimeout bounds the wait for the stack to stop at the end of the
	// test before qlstack is killed; 0 means 2 minutes.
	StopTimeout time.Duration
}

// Stack is a running stack. Its Info fields are stack.json as of the last
// Reload (Start reads it once).
type Stack struct {
	stack.Info
	// Dir is the stack directory, BinDir the binaries', BasePort its
	// --base-port.
	Dir      string
	BinDir   string
	BasePort int
	// LogPath is qlstack's own log (its stderr).
	LogPath string

	t       testing.TB
	cmd     *exec.Cmd
	exited  chan struct{}
	stopMu  sync.Mutex
	stopped bool
	stopTO  time.Duration
}

// BinDir returns the directory holding qlstack: $QIANLANG_BIN when it has
// one, else the repository's bin/. ok is false when neither has it.
func BinDir() (dir string, ok bool) {
	if d := os.Getenv("QIANLANG_BIN"); d != "" {
		if isFile(filepath.Join(d, "qlstack")) {
			return d, true
		}
	}
	root, err := RepoRoot()
	if err != nil {
		return "", false
	}
	d := filepath.Join(root, "bin")
	return d, isFile(filepath.Join(d, "qlstack"))
}

// RepoRoot is the directory of go.work above the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isFile(filepath.Join(dir, "go.work")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory")
		}
		dir = parent
	}
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Start runs `qlstack up` and returns once it printed "ready". The stack
// stops (SIGTERM, then SIGKILL if stuck) when the test ends; on failure
// the test log gets the end of qlstack's log.
func Start(t testing.TB, opts Options) *Stack {
	t.Helper()
	binDir := opts.BinDir
	if binDir == "" {
		var ok bool
		if binDir, ok = BinDir(); !ok {
			t.Skip("requires bin/qlstack: run make build")
		}
	} else if !isFile(filepath.Join(binDir, "qlstack")) {
		t.Fatalf("no qlstack in %s", binDir)
	}
	if opts.Dir == "" {
		opts.Dir = stackDir(t)
	}
	if opts.Groups == 0 {
		opts.Groups = 1
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 3 * time.Minute
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 2 * time.Minute
	}
	// A range picked free can be taken before qlstack binds it: try a few.
	var last string
	for attempt := 0; attempt < 3; attempt++ {
		base := opts.BasePort
		if base == 0 {
			base = FreeBasePort(t, opts.Groups)
		}
		s, out, err := start(t, binDir, base, opts)
		if err == nil {
			return s
		}
		last = fmt.Sprintf("%v\n--- end of %s ---\n%s", err, s.LogPath, out)
		if opts.BasePort != 0 || !strings.Contains(out, "is in use") {
			break
		}
	}
	t.Fatalf("qlstack up: %s", last)
	return nil
}

// stackDir is a fresh directory: under $QIANLANG_TEST_LOGS, kept for
// inspection, or a t.TempDir().
func stackDir(t testing.TB) string {
	keep := os.Getenv("QIANLANG_TEST_LOGS")
	if keep == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(keep, 0o755); err != nil {
		t.Fatal(err)
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	dir, err := os.MkdirTemp(keep, name+"-")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func start(t testing.TB, binDir string, base int, opts Options) (*Stack, string, error) {
	args := []string{"up", "--dir", opts.Dir, "--base-port", strconv.Itoa(base), "--groups", strconv.Itoa(opts.Groups),
		"--bin-dir", binDir}
	if root, err := RepoRoot(); err == nil && isFile(filepath.Join(root, "deploy", stack.GatewayTemplate)) {
		args = append(args, "--deploy-dir", filepath.Join(root, "deploy"))
	}
	if opts.OrderTimeout > 0 {
		args = append(args, "--order-timeout", opts.OrderTimeout.String())
	}
	if opts.SeckillOrderRate > 0 {
		args = append(args, "--seckill-order-rate", strconv.Itoa(opts.SeckillOrderRate))
	}
	if opts.QuizMinAnswerMs > 0 {
		args = append(args, "--quiz-min-answer-ms", strconv.Itoa(opts.QuizMinAnswerMs))
	}
	if len(opts.Components) > 0 {
		args = append(args, "--components", strings.Join(opts.Components, ","))
	}
	args = append(args, opts.Args...)

	s := &Stack{Dir: opts.Dir, BinDir: binDir, BasePort: base, t: t, exited: make(chan struct{}), stopTO: opts.StopTimeout,
		LogPath: filepath.Join(opts.Dir, fmt.Sprintf("qlstack-%d.log", base))}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== %s %s\n", filepath.Join(binDir, "qlstack"), strings.Join(args, " "))
	s.cmd = exec.Command(filepath.Join(binDir, "qlstack"), args...)
	s.cmd.Stderr = logf
	// If the test binary dies, the stack still stops in order.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start qlstack: %v", err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		said := false
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" && !said {
				said = true
				close(ready)
			}
		}
	}()
	go func() { _ = s.cmd.Wait(); close(s.exited) }()

	select {
	case <-ready:
	case <-s.exited:
		return s, tail(s.LogPath, 60), fmt.Errorf("qlstack exited before ready: %s", s.cmd.ProcessState)
	case <-time.After(opts.ReadyTimeout):
		s.Stop()
		return s, tail(s.LogPath, 60), fmt.Errorf("no ready line within %v", opts.ReadyTimeout)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("--- end of %s ---\n%s\n(component logs in %s)", s.LogPath, tail(s.LogPath, 40), filepath.Join(s.Dir, "logs"))
		}
	})
	s.Reload()
	return s, "", nil
}

// Reload rereads stack.json into s.Info.
func (s *Stack) Reload() {
	s.t.Helper()
	info, err := stack.ReadInfo(s.Dir)
	if err != nil {
		s.t.Fatalf("read stack.json: %v", err)
	}
	s.Info = info
}

// Pid is process name's pid in stack.json (reread); it fails the test
// for an unknown name.
func (s *Stack) Pid(name string) int {
	s.t.Helper()
	s.Reload()
	pid, ok := s.Processes[name]
	if !ok {
		s.t.Fatalf("no process %q in stack.json (have %v)", name, s.processNames())
	}
	return pid
}

func (s *Stack) processNames() []string {
	var out []string
	for n := range s.Processes {
		out = append(out, n)
	}
	return out
}

// Kill sends SIGKILL to process name and returns the pid it killed.
func (s *Stack) Kill(name string) int {
	s.t.Helper()
	pid := s.Pid(name)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		s.t.Fatalf("kill %s (pid %d): %v", name, pid, err)
	}
	return pid
}

// WaitRestarted waits (up to 10 s) until stack.json names a new, running
// pid for name and returns it.
func (s *Stack) WaitRestarted(name string, oldPid int) int {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if info, err := stack.ReadInfo(s.Dir); err == nil {
			if pid := info.Processes[name]; pid != 0 && pid != oldPid && Alive(pid) {
				s.Info = info
				return pid
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s (pid %d) not restarted within 10 s", name, oldPid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop sends qlstack SIGTERM and waits until it has stopped the stack
// (SIGKILL after the stop timeout). It runs at the end of the test too;
// calling it again does nothing.
func (s *Stack) Stop() {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if st := s.cmd.ProcessState; st != nil && !st.Success() {
			s.t.Errorf("qlstack exited with %s after SIGTERM; end of %s:\n%s", st, s.LogPath, tail(s.LogPath, 30))
		}
	case <-time.After(s.stopTO):
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.t.Errorf("qlstack did not stop within %v; killed it", s.stopTO)
	}
}

// Secrets reads the stack's secrets file.
func (s *Stack) Secrets() stack.Secrets {
	s.t.Helper()
	sec, err := stack.LoadSecrets(filepath.Join(s.Dir, "secrets.json"))
	if err != nil {
		s.t.Fatalf("secrets: %v", err)
	}
	return sec
}

// UserToken returns a user token for userID valid for ttl, signed with the
// stack's token secret.
func (s *Stack) UserToken(userID string, ttl time.Duration) string {
	s.t.Helper()
	return SignUserToken(s.Secrets().TokenSecret, userID, time.Now().Add(ttl))
}

// SignUserToken makes a user token as the gateway checks it:
// v1.<user_id>.<exp_unix_seconds>.<sig>, sig = base64url without padding
// of HMAC-SHA1(key = tokenSecret's bytes as written, "v1.<user_id>.<exp>").
//
// It signs whatever it is given, unlike auth.Tokens.Sign, so that tests can
// make tokens the gateway must refuse (an over-long user id, a stale
// expiry): the gateway's Lua is checked against this independent signer.
func SignUserToken(tokenSecret, userID string, exp time.Time) string {
	payload := "v1." + userID + "." + strconv.FormatInt(exp.Unix(), 10)
	m := hmac.New(sha1.New, []byte(tokenSecret))
	m.Write([]byte(payload))
	return payload + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Alive reports whether pid is a running process (not a zombie).
func Alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || len(b) < i+3 || (b[i+2] != 'Z' && b[i+2] != 'X')
}

// FreeBasePort picks a base port below Linux's ephemeral range whose whole
// port plan is free right now.
func FreeBasePort(t testing.TB, groups int) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		n, _ := rand.Int(rand.Reader, big.NewInt(20))
		base := 12000 + 1000*int(n.Int64()) // 12000..31000: B+962 stays below 32768
		if portsFree(base, groups) {
			return base
		}
	}
	t.Fatal("no free port range found")
	return 0
}

func portsFree(base, groups int) bool {
	for _, p := range stack.PortPlan(base, groups) {
		l, err := net.Listen("tcp", net.JoinHostPort("0.0.0.0", strconv.Itoa(p.Port)))
		if err != nil {
			return false
		}
		_ = l.Close()
	}
	return true
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
