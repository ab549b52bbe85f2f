package stack

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Restart policy: the first restart after a crash is immediate; a process
// that keeps dying within crashWindow of its start waits twice as long
// each time, from backoffMin up to backoffMax.
const (
	crashWindow = 10 * time.Second
	backoffMin  = 250 * time.Millisecond
	backoffMax  = 10 * time.Second
)

// spec is what a supervised process runs.
type spec struct {
	name    string
	path    string
	args    []string
	env     []string // added to the launcher's environment
	logPath string   // stdout and stderr, appended
	// stopSignal ends the process gracefully (SIGTERM when 0).
	stopSignal syscall.Signal
}

// process runs one spec and restarts it whenever it exits unasked.
type process struct {
	spec
	log *slog.Logger
	// started is called with each new pid (first start and restarts).
	started func(name string, pid int)

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the current run has ended
	stopping bool
	runs     int       // starts so far
	crashes  int       // consecutive exits within crashWindow
	since    time.Time // start of the current run

	quit chan struct{} // closed by stop
	done chan struct{} // closed when supervision has ended
}

func newProcess(s spec, log *slog.Logger, started func(string, int)) *process {
	return &process{spec: s, log: log.With("process", s.name), started: started,
		quit: make(chan struct{}), done: make(chan struct{})}
}

// start runs the process for the first time and supervises it from then on.
func (p *process) start() error {
	p.mu.Lock()
	err := p.runLocked()
	p.mu.Unlock()
	if err != nil {
		close(p.done)
		return err
	}
	go p.supervise()
	return nil
}

// runLocked starts one run. p.mu must be held.
func (p *process) runLocked() error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: open log: %w", p.name, err)
	}
	defer logf.Close() // the child keeps its own descriptor
	fmt.Fprintf(logf, "=== qlstack %s: start %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), p.path, strings.Join(p.args, " "))
	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), p.env...)
	// Its own process group, so that whatever it forks (nginx's workers)
	// can be killed with it; and it dies with the launcher.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start %s: %w", p.name, p.path, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.cmd, p.exited, p.since = cmd, exited, time.Now()
	p.runs++
	if p.started != nil {
		p.started(p.name, cmd.Process.Pid)
	}
	return nil
}

// Pid is the current run's pid.
func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// restarts is the number of restarts so far.
func (p *process) restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(p.runs-1, 0)
}

func (p *process) supervise() {
	defer close(p.done)
	for {
		p.mu.Lock()
		cmd, exited := p.cmd, p.exited
		p.mu.Unlock()
		<-exited
		killGroup(cmd.Process.Pid)

		p.mu.Lock()
		if p.stopping {
			p.mu.Unlock()
			return
		}
		ran := time.Since(p.since)
		if ran >= crashWindow {
			p.crashes = 0
		}
		delay := time.Duration(0)
		if p.crashes > 0 {
			delay = min(backoffMin<<min(p.crashes-1, 10), backoffMax)
		}
		p.crashes++
		p.mu.Unlock()
		p.log.Warn("process exited; restarting", "pid", cmd.Process.Pid, "state", cmd.ProcessState.String(),
			"ran", ran.Round(time.Millisecond), "delay", delay, "log", p.logPath)

		for {
			select {
			case <-p.quit:
				return
			case <-time.After(delay):
			}
			p.mu.Lock()
			if p.stopping {
				p.mu.Unlock()
				return
			}
			err := p.runLocked()
			p.mu.Unlock()
			if err == nil {
				break
			}
			delay = min(max(2*delay, backoffMin), backoffMax)
			p.log.Error("restart failed", "err", err, "retry_in", delay)
		}
	}
}

// stop ends the process: stopSignal, then SIGKILL to its whole process
// group after timeout. It returns once supervision has ended; calling it
// again does nothing more.
func (p *process) stop(timeout time.Duration) error {
	p.mu.Lock()
	first := !p.stopping
	p.stopping = true
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if first {
		close(p.quit)
	}
	if cmd == nil {
		<-p.done
		return nil
	}
	sig := p.stopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	_ = cmd.Process.Signal(sig)
	var err error
	select {
	case <-exited:
	case <-time.After(timeout):
		err = fmt.Errorf("%s (pid %d) did not stop within %v after %v; killed", p.name, cmd.Process.Pid, timeout, sig)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	killGroup(cmd.Process.Pid)
	<-p.done
	return err
}

// killGroup kills what is left of the process group pgid (a crashed nginx
// master's workers still hold its port) and waits briefly for it to go.
func killGroup(pgid int) {
	if pgid <= 0 {
		return
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); errors.Is(err, syscall.ESRCH) {
		return
	}
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && groupAlive(pgid); {
		time.Sleep(5 * time.Millisecond)
	}
}
