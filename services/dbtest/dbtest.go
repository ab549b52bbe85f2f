// Package dbtest runs one real MariaDB server for a test binary and hands
// each test a database of its own on it.
//
//	func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }
//	func TestX(t *testing.T) { dsn := dbtest.DSN(t, "order") ... }
//
// The server (Debian's mariadb-server; `make test` installs it) runs on a
// free loopback port in a temporary directory with the platform's durable
// settings, and stops when Main returns.
package dbtest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the driver database/sql opens
)

var (
	once    sync.Once
	server  *Server
	initErr error
	seq     atomic.Int64
)

// Server is a running MariaDB.
type Server struct {
	Dir  string
	Port int
	cmd  *exec.Cmd
}

// RootDSN is the DSN of the server without a database.
func (s *Server) RootDSN() string {
	return fmt.Sprintf("root@tcp(127.0.0.1:%d)/?parseTime=true&loc=UTC&charset=utf8mb4", s.Port)
}

// Main runs the tests and stops the server, if one was started.
func Main(m *testing.M) int {
	code := m.Run()
	if server != nil {
		server.Stop()
	}
	return code
}

// Shared returns the test binary's server, starting it on first use.
func Shared(t testing.TB) *Server {
	t.Helper()
	once.Do(func() { server, initErr = Start() })
	if initErr != nil {
		t.Fatalf("dbtest: %v", initErr)
	}
	return server
}

// DSN creates an empty database for this test and returns its DSN.
func DSN(t testing.TB, prefix string) string {
	t.Helper()
	s := Shared(t)
	name := fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), seq.Add(1))
	db, err := sql.Open("mysql", s.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE `" + name + "`"); err != nil {
		t.Fatalf("dbtest: create database: %v", err)
	}
	return fmt.Sprintf("root@tcp(127.0.0.1:%d)/%s?parseTime=true&loc=UTC&charset=utf8mb4", s.Port, name)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts a server in a new temporary directory.
func Start() (*Server, error) {
	if _, err := os.Stat("/usr/sbin/mariadbd"); err != nil {
		return nil, fmt.Errorf("mariadbd not installed (make test installs Debian's mariadb-server): %w", err)
	}
	dir, err := os.MkdirTemp("", "qianlang-mariadb-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cnf := filepath.Join(dir, "my.cnf")
	conf := fmt.Sprintf(`[mariadbd]
datadir=%[1]s/data
socket=%[1]s/mysqld.sock
pid-file=%[1]s/mysqld.pid
port=%[2]d
bind-address=127.0.0.1
log-error=%[1]s/error.log
innodb_flush_log_at_trx_commit=1
sync_binlog=1
log_bin=%[1]s/binlog
binlog_format=ROW
binlog_row_image=FULL
binlog_row_metadata=FULL
server_id=1
max_connections=500
innodb_buffer_pool_size=128M
skip-name-resolve
`, dir, port)
	if err := os.WriteFile(cnf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	install := exec.Command("mariadb-install-db", "--defaults-file="+cnf, "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db")
	if out, err := install.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb-install-db: %w: %s", err, out)
	}
	cmd := exec.Command("/usr/sbin/mariadbd", "--defaults-file="+cnf, "--user=root")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, Port: port, cmd: cmd}
	db, _ := sql.Open("mysql", s.RootDSN())
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		if err := db.PingContext(ctx); err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			s.Stop()
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return nil, fmt.Errorf("mariadbd not ready on port %s: %s", strconv.Itoa(port), log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops the server and removes its directory.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-done
		}
	}
	_ = os.RemoveAll(s.Dir)
}
