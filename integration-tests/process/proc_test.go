// Package process runs the real mqnamesrv and mqbroker binaries as separate
// processes, to test what only a process can show: kill -9, a frozen
// broker, restarts on the same store.
package process

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/rlog"

	"qianlang.io/mq/admin"
	"qianlang.io/mq/protocol"
)

// binDir holds mqnamesrv, mqbroker and mqadmin: $QIANLANG_BIN, or built
// once for this run.
var binDir string

func TestMain(m *testing.M) {
	rlog.SetLogLevel("error")
	binDir = os.Getenv("QIANLANG_BIN")
	if binDir == "" {
		dir, err := os.MkdirTemp("", "qianlang-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cmd := exec.Command("go", "build", "-o", dir, "qianlang.io/mq/cmd/mqnamesrv", "qianlang.io/mq/cmd/mqbroker", "qianlang.io/mq/cmd/mqadmin")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building the binaries:", err)
			os.Exit(1)
		}
		binDir = dir
		defer os.RemoveAll(dir)
	}
	code := m.Run()
	if os.Getenv("QIANLANG_BIN") == "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// proc is a running daemon.
type proc struct {
	t       *testing.T
	name    string
	args    []string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current run ended
}

func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	dir := os.Getenv("QIANLANG_TEST_LOGS") // keep the daemons' logs there
	if dir == "" {
		dir = t.TempDir()
	}
	p := &proc{t: t, name: name, args: args, logPath: filepath.Join(dir, strings.ReplaceAll(t.Name()+"-"+name, "/", "_")+".log")}
	p.run()
	t.Cleanup(p.stop)
	return p
}

func (p *proc) run() {
	p.t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	bin := strings.Fields(p.name)[0]
	p.cmd = exec.Command(filepath.Join(binDir, bin), p.args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	exited := make(chan struct{})
	p.exited = exited
	cmd := p.cmd
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(exited) }()
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *proc) signal(sig syscall.Signal) {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// kill9 kills the process at once, as a crash would.
func (p *proc) kill9() {
	p.signal(syscall.SIGKILL)
	p.waitExit()
}

func (p *proc) waitExit() { <-p.exited }

// restart starts the same command again (same store, same port).
func (p *proc) restart() { p.run() }

func (p *proc) stop() {
	if p.cmd == nil {
		return
	}
	if p.running() {
		p.signal(syscall.SIGCONT)
		p.signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.waitExit(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			p.kill9()
		}
	}
	b, _ := os.ReadFile(p.logPath)
	if strings.Contains(string(b), "WARNING: DATA RACE") {
		p.t.Errorf("%s reported a data race", p.name)
	}
	if p.t.Failed() {
		p.t.Logf("--- %s log ---\n%s", p.name, tail(string(b), 60))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s is not listening", addr)
}

func writeConf(t *testing.T, name string, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// cluster is one NameServer and one broker as processes.
type cluster struct {
	nsAddr     string
	brokerAddr string
	namesrv    *proc
	broker     *proc
}

func startCluster(t *testing.T, nsLines, brokerLines []string) *cluster {
	t.Helper()
	nsPort, brPort := freePort(t), freePort(t)
	c := &cluster{nsAddr: fmt.Sprintf("127.0.0.1:%d", nsPort), brokerAddr: fmt.Sprintf("127.0.0.1:%d", brPort)}
	nsConf := writeConf(t, "namesrv.conf", append([]string{fmt.Sprintf("listenPort=%d", nsPort)}, nsLines...)...)
	c.namesrv = start(t, "mqnamesrv", "-c", nsConf)
	waitListening(t, c.nsAddr)
	brConf := writeConf(t, "broker.conf", append([]string{
		"brokerClusterName=ProcCluster", "brokerName=broker-a", "brokerId=0",
		fmt.Sprintf("listenPort=%d", brPort), "brokerIP1=127.0.0.1",
		"namesrvAddr=" + c.nsAddr, "storePathRootDir=" + filepath.Join(t.TempDir(), "store"),
		"mappedFileSizeCommitLog=67108864", "maxHashSlotNum=100000", "maxIndexNum=400000",
	}, brokerLines...)...)
	c.broker = start(t, "mqbroker", "-c", brConf)
	waitListening(t, c.brokerAddr)
	return c
}

func (c *cluster) admin(t *testing.T) *admin.Client {
	a, err := admin.New(c.nsAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// createTopic creates a topic on the broker and waits for its route.
func (c *cluster) createTopic(t *testing.T, topic string, queues int) {
	t.Helper()
	a := c.admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.CreateTopic(ctx, c.brokerAddr, protocol.TopicConfig{TopicName: topic, ReadQueueNums: queues, WriteQueueNums: queues, Perm: 6}); err != nil {
		t.Fatal(err)
	}
	c.waitRoute(t, topic, true, 10*time.Second)
}

// waitRoute waits until the topic is routed (or gone, with present false).
func (c *cluster) waitRoute(t *testing.T, topic string, present bool, timeout time.Duration) {
	t.Helper()
	a := c.admin(t)
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := a.Route(ctx, topic)
		cancel()
		if (err == nil) == present {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s present=%v not reached in %v (last error %v)", topic, present, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
