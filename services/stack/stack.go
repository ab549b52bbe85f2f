package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PidFile is the launcher's pid file in a stack directory, locked (flock)
// while the stack runs; `qlstack down` signals the pid it holds.
const PidFile = "qlstack.pid"

// crashLimit is how many restarts a component may need before it is ready
// before the start gives up on it.
const crashLimit = 3

// Stack is the platform's processes, started and supervised on loopback.
type Stack struct {
	opts     Options
	log      *slog.Logger
	secrets  Secrets
	comps    []*component // the selected components, in table order
	selected map[string]bool
	pidFile  *os.File

	mu    sync.Mutex
	procs map[string]*process
	pids  map[string]int
	ready bool

	closeOnce sync.Once
	closeErr  error
}

// New checks opts and returns a stack that is not started yet.
func New(opts Options) (*Stack, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	names, _ := selectComponents(opts.Components, opts.Groups) // checked by Validate
	s := &Stack{opts: opts, log: opts.Logger, selected: map[string]bool{},
		procs: map[string]*process{}, pids: map[string]int{}}
	for _, n := range names {
		s.selected[n] = true
	}
	for _, c := range componentTable(opts.Groups) {
		if s.selected[c.name] {
			s.comps = append(s.comps, c)
		}
	}
	return s, nil
}

// Run starts the stack, prints "ready", supervises it until ctx ends and
// then stops it in order.
func Run(ctx context.Context, opts Options) error {
	s, err := New(opts)
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		if cerr := s.Close(); cerr != nil {
			s.log.Warn("stopping after a failed start", "err", cerr)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted before the stack was ready: %w", err)
		}
		return err
	}
	<-ctx.Done()
	s.log.Info("stopping the stack")
	return s.Close()
}

func (s *Stack) addr(off int) string         { return loopback(s.opts.BasePort + off) }
func (s *Stack) confPath(name string) string { return filepath.Join(s.opts.Dir, "conf", name) }
func (s *Stack) logPath(name string) string  { return filepath.Join(s.opts.Dir, "logs", name+".log") }
func (s *Stack) secretsPath() string         { return filepath.Join(s.opts.Dir, "secrets.json") }

// Start brings every selected component up, stage by stage, writes
// stack.json and prints "ready". On error the caller must Close.
func (s *Stack) Start(ctx context.Context) error {
	begin := time.Now()
	for _, d := range []string{s.opts.Dir, filepath.Join(s.opts.Dir, "logs"), filepath.Join(s.opts.Dir, "conf")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return err
		}
	}
	if err := s.lockPidFile(); err != nil {
		return err
	}
	s.reapLeftovers()
	if err := s.ensurePackages(ctx); err != nil {
		return err
	}
	var err error
	if s.secrets, err = loadOrCreateSecrets(s.secretsPath()); err != nil {
		return err
	}
	if err := checkPortsFree(s.opts.BasePort, s.comps); err != nil {
		return err
	}
	// Configuration files and one-off initialisation, all at once
	// (mariadb-install-db is the slow one).
	errs := make([]error, len(s.comps))
	var wg sync.WaitGroup
	for i, c := range s.comps {
		if c.prepare == nil {
			continue
		}
		wg.Go(func() {
			if err := os.MkdirAll(filepath.Join(s.opts.Dir, c.name), 0o750); err != nil {
				errs[i] = err
			} else if err := c.prepare(ctx, s); err != nil {
				errs[i] = fmt.Errorf("prepare %s: %w", c.name, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.log.Info("prepared", "dir", s.opts.Dir, "base_port", s.opts.BasePort, "components", len(s.comps), "took", time.Since(begin).Round(time.Millisecond))
	for stage := stageStorage; stage <= stageGateway; stage++ {
		if err := s.startStage(ctx, stage); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.ready = true
	err = s.writeInfoLocked()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.log.Info("stack ready", "took", time.Since(begin).Round(time.Millisecond), "stack_json", filepath.Join(s.opts.Dir, InfoFile))
	if s.opts.Stdout != nil {
		fmt.Fprintln(s.opts.Stdout, "ready")
	}
	return nil
}

// startStage starts a stage's components together and waits until all of
// them are ready and the stage's gate passed.
func (s *Stack) startStage(ctx context.Context, stage int) error {
	var comps []*component
	for _, c := range s.comps {
		if c.stage == stage {
			comps = append(comps, c)
		}
	}
	if len(comps) == 0 {
		return nil
	}
	begin := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.opts.ReadyTimeout)
	defer cancel()
	for _, c := range comps {
		p := newProcess(spec{name: c.name, path: c.binary(s), args: c.args(s), logPath: s.logPath(c.name)}, s.log, s.started)
		s.mu.Lock()
		s.procs[c.name] = p
		s.mu.Unlock()
		if err := p.start(); err != nil {
			return err
		}
	}
	errs := make([]error, len(comps))
	var wg sync.WaitGroup
	for i, c := range comps {
		wg.Go(func() { errs[i] = s.waitReady(ctx, c, begin) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if stage == stageBrokers {
		if err := s.brokersGate(ctx); err != nil {
			return err
		}
	}
	return nil
}

// waitReady polls c's readiness until it passes, the context ends, or the
// process keeps crashing.
func (s *Stack) waitReady(ctx context.Context, c *component, begin time.Time) error {
	s.mu.Lock()
	p := s.procs[c.name]
	s.mu.Unlock()
	var last error
	for {
		if last = c.ready(ctx, s); last == nil {
			s.log.Info("ready", "component", c.name, "pid", p.pid(), "addr", s.addr(c.ports[0]), "took", time.Since(begin).Round(time.Millisecond))
			return nil
		}
		if n := p.restarts(); n >= crashLimit {
			return fmt.Errorf("%s exited %d times before it was ready (last probe: %v); the end of %s:\n%s",
				c.name, n, last, s.logPath(c.name), tailFile(s.logPath(c.name), 20))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v: %v; the end of %s:\n%s",
				c.name, time.Since(begin).Round(time.Millisecond), last, s.logPath(c.name), tailFile(s.logPath(c.name), 20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// brokersGate waits until every group has a settled leader known to every
// NameServer, then creates the platform's topics.
func (s *Stack) brokersGate(ctx context.Context) error {
	begin := time.Now()
	var last error
	for {
		if last = s.clusterSettled(ctx); last == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("broker groups not settled after %v: %w", time.Since(begin).Round(time.Millisecond), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.log.Info("ready", "component", "broker groups", "groups", s.opts.Groups, "took", time.Since(begin).Round(time.Millisecond))
	begin = time.Now()
	for {
		if last = s.createTopics(ctx); last == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("creating the topics: %w", last)
		case <-time.After(200 * time.Millisecond):
		}
	}
	s.log.Info("created topics", "topics", len(platformTopics()), "took", time.Since(begin).Round(time.Millisecond))
	return nil
}

// started records a process's new pid (in DIR/qlstack.pids at once) and,
// once the stack is ready, rewrites stack.json.
func (s *Stack) started(name string, pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.pids[name]
	s.pids[name] = pid
	if b, err := json.Marshal(s.pids); err == nil {
		if err := writeFileAtomic(filepath.Join(s.opts.Dir, pidsFile), b, 0o644); err != nil {
			s.log.Warn("recording pids", "err", err)
		}
	}
	if !s.ready {
		return
	}
	if err := s.writeInfoLocked(); err != nil {
		s.log.Error("rewriting stack.json", "err", err)
	}
	s.log.Info("restarted", "process", name, "old_pid", old, "pid", pid)
}

// Info returns what stack.json says.
func (s *Stack) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.infoLocked()
}

func (s *Stack) infoLocked() Info {
	info := Info{Namesrv: []string{}, Brokers: map[string]string{}, Processes: map[string]int{}, Services: map[string]string{},
		AdminToken: s.secrets.AdminToken}
	for _, c := range s.comps {
		addr := s.addr(c.ports[0])
		switch {
		case c.name == "nginx":
			info.Gateway = "http://" + addr
		case c.name == "provider":
			info.Provider = "http://" + addr
		case c.name == "mariadb":
			info.MySQL = s.rootDSN("")
		case c.name == "redis":
			info.Redis = addr
		case c.name == "zookeeper":
			info.ZooKeeper = addr
		case c.kind == kindNamesrv:
			info.Namesrv = append(info.Namesrv, addr)
		case c.kind == kindBroker:
			info.Brokers[c.name] = addr
		}
		if c.kind == kindService {
			info.Services[c.name] = "http://" + addr
		}
		if pid, ok := s.pids[c.name]; ok {
			info.Processes[c.name] = pid
		}
	}
	return info
}

func (s *Stack) writeInfoLocked() error {
	b, err := json.MarshalIndent(s.infoLocked(), "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.opts.Dir, InfoFile), append(b, '\n'), 0o600)
}

// Close stops every process in order (gateway, services, brokers,
// NameServers, ZooKeeper, Redis, MariaDB), each with SIGTERM and, after its
// timeout, SIGKILL, and removes the pid file. The data stays. Calling it
// again returns the first result.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.stopAll() })
	return s.closeErr
}

func (s *Stack) stopAll() error {
	s.mu.Lock()
	var ranks []int
	for _, c := range s.comps {
		if _, ok := s.procs[c.name]; ok && !slices.Contains(ranks, c.stopRank) {
			ranks = append(ranks, c.stopRank)
		}
	}
	s.mu.Unlock()
	slices.Sort(ranks)
	var errs []error
	for _, rank := range ranks {
		begin := time.Now()
		var names []string
		var wg sync.WaitGroup
		var emu sync.Mutex
		for _, c := range s.comps {
			s.mu.Lock()
			p := s.procs[c.name]
			s.mu.Unlock()
			if p == nil || c.stopRank != rank {
				continue
			}
			names = append(names, c.name)
			wg.Go(func() {
				if err := p.stop(c.stopTimeout); err != nil {
					emu.Lock()
					errs = append(errs, err)
					emu.Unlock()
				}
			})
		}
		wg.Wait()
		s.log.Info("stopped", "components", strings.Join(names, ","), "took", time.Since(begin).Round(time.Millisecond))
	}
	s.unlockPidFile()
	return errors.Join(errs...)
}

// lockPidFile takes DIR/qlstack.pid: one launcher per directory.
func (s *Stack) lockPidFile() error {
	path := filepath.Join(s.opts.Dir, PidFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		return fmt.Errorf("a stack already runs in %s (qlstack pid %s): stop it with qlstack down --dir %s",
			s.opts.Dir, strings.TrimSpace(string(b)), s.opts.Dir)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return err
	}
	s.pidFile = f
	return nil
}

func (s *Stack) unlockPidFile() {
	if s.pidFile == nil {
		return
	}
	_ = os.Remove(s.pidFile.Name())
	_ = s.pidFile.Close() // releases the lock
	s.pidFile = nil
}

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) string {
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
