package stack_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"qianlang.io/services/auth"
	"qianlang.io/services/events"
	"qianlang.io/services/stack"
	"qianlang.io/services/stacktest"
)

// infrastructure is everything but the business services and the provider.
var infrastructure = []string{"mariadb", "redis", "zookeeper", "namesrv", "broker", "nginx"}

// TestLauncherStartsSupervisesAndStopsTheInfrastructure runs the real
// qlstack with one Raft group and no business services.
func TestLauncherStartsSupervisesAndStopsTheInfrastructure(t *testing.T) {
	s := stacktest.Start(t, stacktest.Options{Groups: 1, Components: infrastructure})
	base := s.BasePort
	addr := func(off int) string { return "127.0.0.1:" + strconv.Itoa(base+off) }
	secrets := s.Secrets()

	t.Run("stack.json", func(t *testing.T) {
		require.Equal(t, "http://"+addr(80), s.Gateway)
		require.Empty(t, s.Provider, "the provider was not started")
		require.Empty(t, s.Console)
		require.Equal(t, []string{addr(1), addr(2)}, s.Namesrv)
		require.Equal(t, "root:"+secrets.MySQLRootPassword+"@tcp("+addr(306)+")/", s.MySQL)
		require.Equal(t, addr(379), s.Redis)
		require.Equal(t, addr(181), s.ZooKeeper)
		require.Equal(t, secrets.AdminToken, s.AdminToken)
		require.Equal(t, map[string]string{"broker-a-n0": addr(911), "broker-a-n1": addr(921), "broker-a-n2": addr(931)}, s.Brokers)
		var names []string
		for name, pid := range s.Processes {
			names = append(names, name)
			require.True(t, stacktest.Alive(pid), "%s (pid %d) is not running", name, pid)
		}
		slices.Sort(names)
		require.Equal(t, []string{"broker-a-n0", "broker-a-n1", "broker-a-n2", "mariadb", "namesrv-1", "namesrv-2", "nginx", "redis", "zookeeper"}, names)
		for _, f := range []string{stack.InfoFile, "secrets.json"} {
			st, err := os.Stat(filepath.Join(s.Dir, f))
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "%s holds secrets", f)
		}
		// The exact field names of the contract.
		b, err := os.ReadFile(filepath.Join(s.Dir, stack.InfoFile))
		require.NoError(t, err)
		var raw map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(b, &raw))
		for _, k := range []string{"gateway", "provider", "console", "namesrv", "mysql", "redis", "zookeeper", "admin_token", "brokers", "processes"} {
			require.Contains(t, raw, k)
		}
		for _, name := range []string{"mariadb", "redis", "zookeeper", "namesrv-1", "broker-a-n0", "nginx"} {
			require.FileExists(t, filepath.Join(s.Dir, "logs", name+".log"))
		}
	})

	t.Run("mariadb", func(t *testing.T) {
		db, err := sql.Open("mysql", s.MySQL)
		require.NoError(t, err)
		defer db.Close()
		var format, image, metadata string
		var syncBinlog, flushAtCommit, logBin, serverID, maxConn, pool int64
		require.NoError(t, db.QueryRow("SELECT @@binlog_format, @@binlog_row_image, @@sync_binlog, @@innodb_flush_log_at_trx_commit, @@binlog_row_metadata, @@log_bin, @@server_id, @@max_connections, @@innodb_buffer_pool_size").
			Scan(&format, &image, &syncBinlog, &flushAtCommit, &metadata, &logBin, &serverID, &maxConn, &pool))
		require.Equal(t, "ROW", format)
		require.Equal(t, "FULL", image)
		require.EqualValues(t, 1, syncBinlog)
		require.EqualValues(t, 1, flushAtCommit)
		require.Equal(t, "FULL", metadata)
		require.EqualValues(t, 1, logBin)
		require.EqualValues(t, 1, serverID)
		require.EqualValues(t, 1000, maxConn)
		require.EqualValues(t, 256<<20, pool)
		_, err = db.Exec("CREATE DATABASE IF NOT EXISTS qianlang_launcher_test")
		require.NoError(t, err)
		_, err = db.Exec("CREATE TABLE qianlang_launcher_test.t (id INT PRIMARY KEY)")
		require.NoError(t, err)
		_, err = db.Exec("INSERT INTO qianlang_launcher_test.t VALUES (1)")
		require.NoError(t, err)

		// Root over TCP needs the password.
		nopw, err := sql.Open("mysql", "root@tcp("+addr(306)+")/")
		require.NoError(t, err)
		defer nopw.Close()
		require.ErrorContains(t, nopw.Ping(), "Access denied")
	})

	t.Run("redis", func(t *testing.T) {
		require.Equal(t, "+PONG\r\n", ask(t, s.Redis, "PING\r\n", 1))
		require.Equal(t, "*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n", ask(t, s.Redis, "CONFIG GET appendonly\r\n", 5))
		require.Equal(t, "*2\r\n$11\r\nappendfsync\r\n$8\r\neverysec\r\n", ask(t, s.Redis, "CONFIG GET appendfsync\r\n", 5))
	})

	t.Run("zookeeper", func(t *testing.T) {
		require.Equal(t, "imok", ask(t, s.ZooKeeper, "ruok", -1))
		require.Contains(t, ask(t, s.ZooKeeper, "srvr", -1), "Mode: standalone")
	})

	t.Run("cluster", func(t *testing.T) {
		out, err := exec.Command(filepath.Join(s.BinDir, "mqadmin"), "clusterList", "-n", s.Namesrv[0], "-o", "json").Output()
		require.NoError(t, err)
		var rows []struct {
			BrokerName string            `json:"brokerName"`
			BrokerID   int64             `json:"brokerId"`
			Addr       string            `json:"addr"`
			Runtime    map[string]string `json:"runtime"`
		}
		require.NoError(t, json.Unmarshal(out, &rows))
		require.Len(t, rows, 3, "%s", out)
		leaders := 0
		for _, r := range rows {
			require.Equal(t, "broker-a", r.BrokerName)
			require.Contains(t, s.Brokers, "broker-a-"+r.Runtime["dLegerSelfId"])
			require.Equal(t, s.Brokers["broker-a-"+r.Runtime["dLegerSelfId"]], r.Addr)
			if r.Runtime["dLegerRole"] == "LEADER" {
				leaders++
				require.EqualValues(t, 0, r.BrokerID)
			}
		}
		require.Equal(t, 1, leaders)
		out, err = exec.Command(filepath.Join(s.BinDir, "mqadmin"), "topicList", "-n", s.Namesrv[1], "-o", "json").Output()
		require.NoError(t, err)
		var topics []string
		require.NoError(t, json.Unmarshal(out, &topics))
		for _, topic := range events.Topics {
			require.Contains(t, topics, topic)
		}
	})

	t.Run("gateway", func(t *testing.T) { testGateway(t, s, secrets) })

	t.Run("restart", func(t *testing.T) {
		for _, name := range []string{"broker-a-n0", "nginx", "mariadb"} {
			old := s.Kill(name)
			killed := time.Now()
			var pid int
			for {
				s.Reload()
				if pid = s.Processes[name]; pid != old && stacktest.Alive(pid) {
					break
				}
				require.Less(t, time.Since(killed), 2*time.Second, "%s (pid %d) not restarted within 2 s", name, old)
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("%s: pid %d killed, pid %d in stack.json after %v", name, old, pid, time.Since(killed).Round(time.Millisecond))
			require.Equal(t, pid, s.WaitRestarted(name, old))
		}
		// The restarted gateway serves again.
		require.Eventually(t, func() bool {
			resp, err := http.Get(s.Gateway + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, 5*time.Second, 20*time.Millisecond)
	})

	t.Run("stop", func(t *testing.T) {
		s.Reload()
		pids := s.Processes
		s.Stop()
		for name, pid := range pids {
			require.False(t, stacktest.Alive(pid), "%s (pid %d) still runs after the stack stopped", name, pid)
		}
		require.NoFileExists(t, filepath.Join(s.Dir, stack.PidFile))
		require.DirExists(t, filepath.Join(s.Dir, "mariadb", "data", "qianlang_launcher_test"), "the data stays")
		for _, off := range []int{1, 2, 80, 181, 306, 379, 911, 912, 921, 922, 931, 932} {
			l, err := net.Listen("tcp", addr(off))
			require.NoError(t, err, "port %d still taken", base+off)
			l.Close()
		}
	})
}

// testGateway checks the gateway's routing and authentication with every
// service down, then with a stand-in for order on order's port.
func testGateway(t *testing.T, s *stacktest.Stack, secrets stack.Secrets) {
	user := s.UserToken("u-1_A", time.Hour)
	expired := stacktest.SignUserToken(secrets.TokenSecret, "u-1_A", time.Now().Add(-time.Second))
	forged := stacktest.SignUserToken(strings.Repeat("0", 64), "u-1_A", time.Now().Add(time.Hour))
	tampered := strings.Replace(user, "u-1_A", "u-2_A", 1)
	tooLong := s.UserToken(strings.Repeat("x", 65), time.Hour)
	unauthorized := `{"error":{"code":"UNAUTHORIZED",`
	for _, tc := range []struct {
		method, path, token string
		status              int
		body                string // prefix
	}{
		{"GET", "/api/orders", "", 401, unauthorized},
		{"GET", "/api/orders", expired, 401, unauthorized},
		{"GET", "/api/orders", forged, 401, unauthorized},
		{"GET", "/api/orders", tampered, 401, unauthorized},
		{"GET", "/api/orders", tooLong, 401, unauthorized},
		{"GET", "/api/orders", secrets.AdminToken, 401, unauthorized},
		{"GET", "/api/nope", "", 401, unauthorized},
		{"GET", "/api/nope", user, 404, `{"error":{"code":"NOT_FOUND","message":"no such endpoint"}}`},
		{"GET", "/nope", "", 404, `{"error":{"code":"NOT_FOUND","message":"no such endpoint"}}`},
		{"GET", "/api/orders", user, 503, `{"error":{"code":"UNAVAILABLE",`},
		{"GET", "/api/orders/o-1", user, 503, `{"error":{"code":"UNAVAILABLE",`},
		{"POST", "/api/login", "", 503, `{"error":{"code":"UNAVAILABLE",`},     // public
		{"GET", "/api/login", "", 401, unauthorized},                           // only POST is public
		{"GET", "/api/skus/sku-1", "", 503, `{"error":{"code":"UNAVAILABLE",`}, // public
		{"PUT", "/api/skus/sku-1", "", 401, unauthorized},
		{"GET", "/api/points", user, 503, `{"error":{"code":"UNAVAILABLE",`},
		{"GET", "/api/coupons", user, 503, `{"error":{"code":"UNAVAILABLE",`},
		{"GET", "/api/notifications", user, 503, `{"error":{"code":"UNAVAILABLE",`},
		{"PUT", "/api/admin/skus/sku-1", "", 401, unauthorized},
		{"PUT", "/api/admin/skus/sku-1", "not-the-admin-token", 401, unauthorized},
		{"PUT", "/api/admin/skus/sku-1", user, 403, `{"error":{"code":"FORBIDDEN",`},
		{"PUT", "/api/admin/skus/sku-1", secrets.AdminToken, 503, `{"error":{"code":"UNAVAILABLE",`},
		{"PUT", "/api/admin/coupons/c-1", secrets.AdminToken, 503, `{"error":{"code":"UNAVAILABLE",`},
		{"GET", "/api/analytics/daily", user, 403, `{"error":{"code":"FORBIDDEN",`},
		{"GET", "/api/analytics/daily", "", 401, unauthorized},
		{"GET", "/api/admin/nope", secrets.AdminToken, 404, `{"error":{"code":"NOT_FOUND",`},
	} {
		resp := call(t, tc.method, s.Gateway+tc.path, tc.token, nil)
		body := readAll(t, resp)
		name := fmt.Sprintf("%s %s (token %.12s)", tc.method, tc.path, tc.token)
		require.Equal(t, tc.status, resp.StatusCode, "%s: %s", name, body)
		require.True(t, strings.HasPrefix(body, tc.body), "%s: %s", name, body)
		require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"), "%s: Content-Type %q", name, resp.Header.Get("Content-Type"))
		var e struct {
			Error struct{ Code, Message string }
		}
		require.NoError(t, json.Unmarshal([]byte(body), &e), "%s: %s", name, body)
		require.NotEmpty(t, e.Error.Message, name)
	}

	// A stand-in for order on order's port: the gateway forwards the
	// authenticated user as X-User-Id and drops what the client claims.
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(s.BasePort+101))
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.Path, "user": r.Header.Values("X-User-Id")})
	})}
	go srv.Serve(l)
	defer srv.Shutdown(context.Background())

	var seen struct {
		Path string
		User []string
	}
	resp := call(t, "GET", s.Gateway+"/api/orders?limit=5", user, http.Header{"X-User-Id": {"someone-else"}, "X-USER-ID": {"admin"}})
	require.Equal(t, 200, resp.StatusCode)
	require.NoError(t, json.Unmarshal([]byte(readAll(t, resp)), &seen))
	require.Equal(t, "/api/orders", seen.Path)
	require.Equal(t, []string{"u-1_A"}, seen.User)

	resp = call(t, "POST", s.Gateway+"/api/login", "", http.Header{"X-User-Id": {"someone-else"}})
	require.Equal(t, 200, resp.StatusCode)
	require.NoError(t, json.Unmarshal([]byte(readAll(t, resp)), &seen))
	require.Empty(t, seen.User, "a public endpoint gets no X-User-Id")

	// The services' own check accepts the tokens the gateway accepts.
	id, err := auth.NewTokens(secrets.Secrets).Verify(user)
	require.NoError(t, err)
	require.Equal(t, "u-1_A", id)
}

func call(t *testing.T, method, url, token string, h http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for k, v := range h {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	return resp
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// ask sends req over TCP and reads lines replies (-1: until the server
// closes).
func ask(t *testing.T, addr, req string, lines int) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(conn, req)
	require.NoError(t, err)
	if lines < 0 {
		b, err := io.ReadAll(conn)
		require.NoError(t, err)
		return string(b)
	}
	r := bufio.NewReader(conn)
	var b strings.Builder
	for i := 0; i < lines; i++ {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		b.WriteString(line)
	}
	return b.String()
}

// TestDownStopsABackgroundStack runs qlstack up as a background process,
// refuses a second launcher on the same directory, and stops it with
// qlstack down.
func TestDownStopsABackgroundStack(t *testing.T) {
	bin, ok := stacktest.BinDir()
	if !ok {
		t.Skip("requires bin/qlstack: run make build")
	}
	qlstack := filepath.Join(bin, "qlstack")
	dir := t.TempDir()
	base := stacktest.FreeBasePort(t, 1)
	up := exec.Command(qlstack, "up", "--dir", dir, "--base-port", strconv.Itoa(base), "--groups", "1", "--components", "redis")
	stdout, err := up.StdoutPipe()
	require.NoError(t, err)
	logf, err := os.Create(filepath.Join(dir, "up.log"))
	require.NoError(t, err)
	defer logf.Close()
	up.Stderr = logf
	require.NoError(t, up.Start())
	exited := make(chan error, 1)
	defer func() {
		_ = up.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "up.log"))
			t.Logf("qlstack up log:\n%s", b)
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "ready\n", line)
	go func() { exited <- up.Wait() }()
	info, err := stack.ReadInfo(dir)
	require.NoError(t, err)
	redisPid := info.Processes["redis"]
	require.True(t, stacktest.Alive(redisPid))
	require.Equal(t, map[string]int{"redis": redisPid}, info.Processes)

	out, err := exec.Command(qlstack, "up", "--dir", dir, "--base-port", strconv.Itoa(base+1000), "--components", "redis").CombinedOutput()
	require.Error(t, err, "a second launcher on the same directory")
	require.Contains(t, string(out), "a stack already runs in "+dir)

	begin := time.Now()
	out, err = exec.Command(qlstack, "down", "--dir", dir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Logf("qlstack down took %v", time.Since(begin).Round(time.Millisecond))
	select {
	case err := <-exited:
		require.NoError(t, err, "qlstack up exits 0 when stopped")
	case <-time.After(5 * time.Second):
		t.Fatal("qlstack up still running after qlstack down returned")
	}
	require.False(t, stacktest.Alive(redisPid))
	require.NoFileExists(t, filepath.Join(dir, stack.PidFile))

	out, err = exec.Command(qlstack, "down", "--dir", dir).CombinedOutput()
	require.NoError(t, err, "down of a stopped stack is fine")
	require.Contains(t, string(out), "no stack runs there")
}

// TestLauncherRunsTheServicesBehindTheGateway runs the whole table with a
// stand-in binary for every service and the provider: they get their
// flags, create their databases through --dsn, answer /healthz, and the
// gateway routes each path to its service. The stop order is checked in
// qlstack's log.
func TestLauncherRunsTheServicesBehindTheGateway(t *testing.T) {
	realBin, ok := stacktest.BinDir()
	if !ok {
		t.Skip("requires bin/qlstack: run make build")
	}
	bin := t.TempDir()
	stub := filepath.Join(bin, "stubservice")
	build := exec.Command("go", "build", "-o", stub, "./testdata/stubservice")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, name := range []string{"order", "inventory", "points", "marketing", "push", "warehouse", "provider"} {
		require.NoError(t, os.Symlink(stub, filepath.Join(bin, name)))
	}
	for _, name := range []string{"qlstack", "mqnamesrv", "mqbroker", "mqadmin"} {
		require.NoError(t, os.Symlink(filepath.Join(realBin, name), filepath.Join(bin, name)))
	}

	s := stacktest.Start(t, stacktest.Options{BinDir: bin, Groups: 1, OrderTimeout: 5 * time.Second})
	require.Equal(t, "http://127.0.0.1:"+strconv.Itoa(s.BasePort+90), s.Provider)
	for _, name := range []string{"order", "inventory", "points", "marketing", "push", "warehouse", "provider", "nginx", "broker-a-n2", "mariadb"} {
		require.True(t, stacktest.Alive(s.Processes[name]), name)
	}
	b, err := os.ReadFile(filepath.Join(s.Dir, "stub-order.json"))
	require.NoError(t, err)
	var args []string
	require.NoError(t, json.Unmarshal(b, &args))
	require.Contains(t, strings.Join(args, " "), "--order-timeout 5s --seckill-order-rate 500")

	db, err := sql.Open("mysql", s.MySQL)
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.Query("SHOW DATABASES LIKE 'qianlang\\_%'")
	require.NoError(t, err)
	var dbs []string
	for rows.Next() {
		var d string
		require.NoError(t, rows.Scan(&d))
		dbs = append(dbs, d)
	}
	require.NoError(t, rows.Err())
	require.ElementsMatch(t, []string{"qianlang_order", "qianlang_inventory", "qianlang_points", "qianlang_marketing",
		"qianlang_push", "qianlang_warehouse", "qianlang_provider"}, dbs)

	user := s.UserToken("u7", time.Hour)
	admin := s.AdminToken
	for _, tc := range []struct{ method, path, token, service, user string }{
		{"POST", "/api/login", "", "order", ""},
		{"GET", "/api/orders", user, "order", "u7"},
		{"POST", "/api/orders", user, "order", "u7"},
		{"GET", "/api/orders/o-1", user, "order", "u7"},
		{"POST", "/api/orders/o-1/pay", user, "order", "u7"},
		{"POST", "/api/orders/o-1/cancel", user, "order", "u7"},
		{"GET", "/api/skus/sku-1", "", "inventory", ""},
		{"GET", "/api/skus/sku-1", user, "inventory", ""}, // public: a token is not looked at
		{"PUT", "/api/admin/skus/sku-1", admin, "inventory", ""},
		{"PUT", "/api/admin/coupons/c-1", admin, "marketing", ""},
		{"GET", "/api/coupons", user, "marketing", "u7"},
		{"GET", "/api/points", user, "points", "u7"},
		{"GET", "/api/notifications", user, "push", "u7"},
	} {
		resp := call(t, tc.method, s.Gateway+tc.path, tc.token, nil)
		body := readAll(t, resp)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s %s: %s", tc.method, tc.path, body)
		var got struct{ Service, Path, User string }
		require.NoError(t, json.Unmarshal([]byte(body), &got))
		require.Equal(t, tc.service, got.Service, "%s %s", tc.method, tc.path)
		require.Equal(t, tc.path, got.Path)
		require.Equal(t, tc.user, got.User, "%s %s", tc.method, tc.path)
	}

	old := s.Kill("order")
	killed := time.Now()
	pid := s.WaitRestarted("order", old)
	require.Less(t, time.Since(killed), 2*time.Second)
	require.True(t, stacktest.Alive(pid))
	require.Eventually(t, func() bool {
		resp := call(t, "GET", s.Gateway+"/api/orders", user, nil)
		readAll(t, resp)
		return resp.StatusCode == http.StatusOK
	}, 5*time.Second, 20*time.Millisecond, "the restarted order serves through the gateway")

	s.Stop()
	log, err := os.ReadFile(s.LogPath)
	require.NoError(t, err)
	at := func(components string) int {
		i := strings.Index(string(log), "msg=stopped components="+components+" ")
		require.GreaterOrEqual(t, i, 0, "no stop of %s in the log", components)
		return i
	}
	order := []int{at("nginx"), at("provider,order,inventory,points,marketing,push,warehouse"), at("broker-a-n0,broker-a-n1,broker-a-n2"),
		at("namesrv-1,namesrv-2"), at("zookeeper"), at("redis"), at("mariadb")}
	require.True(t, slices.IsSorted(order), "stop order: gateway, services, brokers, NameServers, ZooKeeper, Redis, MariaDB\n%s", log)
}

// startUp runs `qlstack up` with args in the background and waits for its
// ready line; the returned channel yields its exit.
func startUp(t *testing.T, qlstack, logPath string, args ...string) (*exec.Cmd, <-chan error) {
	t.Helper()
	up := exec.Command(qlstack, append([]string{"up"}, args...)...)
	stdout, err := up.StdoutPipe()
	require.NoError(t, err)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	defer logf.Close()
	up.Stderr = logf
	require.NoError(t, up.Start())
	t.Cleanup(func() {
		_ = up.Process.Signal(syscall.SIGTERM)
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("qlstack up log:\n%s", b)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "no ready line")
	require.Equal(t, "ready\n", line)
	exited := make(chan error, 1)
	go func() { exited <- up.Wait() }()
	return up, exited
}

// TestUpCleansUpAfterAKilledLauncher kills qlstack itself: its children
// die with it, but nginx's workers would keep the gateway's port; the next
// qlstack up on the directory kills them and starts.
func TestUpCleansUpAfterAKilledLauncher(t *testing.T) {
	bin, ok := stacktest.BinDir()
	if !ok {
		t.Skip("requires bin/qlstack: run make build")
	}
	qlstack := filepath.Join(bin, "qlstack")
	dir := t.TempDir()
	base := strconv.Itoa(stacktest.FreeBasePort(t, 1))
	args := []string{"--dir", dir, "--base-port", base, "--groups", "1", "--components", "nginx,redis"}
	if root, err := stacktest.RepoRoot(); err == nil {
		args = append(args, "--deploy-dir", filepath.Join(root, "deploy"))
	}
	up, exited := startUp(t, qlstack, filepath.Join(dir, "up.log"), args...)
	info, err := stack.ReadInfo(dir)
	require.NoError(t, err)
	master, redis := info.Processes["nginx"], info.Processes["redis"]
	workers := groupPids(t, master)
	require.Len(t, workers, 3, "nginx master and two workers")

	require.NoError(t, up.Process.Kill())
	<-exited
	require.Eventually(t, func() bool { return !stacktest.Alive(master) && !stacktest.Alive(redis) }, 5*time.Second, 10*time.Millisecond,
		"the launcher's children die with it")
	var orphans []int
	for _, pid := range workers {
		if pid != master && stacktest.Alive(pid) {
			orphans = append(orphans, pid)
		}
	}
	require.NotEmpty(t, orphans, "nginx's workers outlive their master (else this test shows nothing)")

	_, exited = startUp(t, qlstack, filepath.Join(dir, "up.log"), args...)
	for _, pid := range orphans {
		require.False(t, stacktest.Alive(pid), "orphaned worker %d still runs", pid)
	}
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(mustAtoi(t, base)+80) + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out, err := exec.Command(qlstack, "down", "--dir", dir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NoError(t, <-exited)
}

// TestUpFailsFastForACrashingComponent: a component that exits at once is
// restarted a few times, then qlstack up gives up with the end of its log
// and exits 1, its pid file gone.
func TestUpFailsFastForACrashingComponent(t *testing.T) {
	realBin, ok := stacktest.BinDir()
	if !ok {
		t.Skip("requires bin/qlstack: run make build")
	}
	bin, dir := t.TempDir(), t.TempDir()
	require.NoError(t, os.Symlink(filepath.Join(realBin, "qlstack"), filepath.Join(bin, "qlstack")))
	// qlstack resolves its own symlink for the default --bin-dir, hence --bin-dir below.
	require.NoError(t, os.WriteFile(filepath.Join(bin, "provider"), []byte("#!/bin/sh\necho 'provider: cannot open the database' >&2\nexit 1\n"), 0o755))
	begin := time.Now()
	out, err := exec.Command(filepath.Join(bin, "qlstack"), "up", "--dir", dir, "--base-port", strconv.Itoa(stacktest.FreeBasePort(t, 1)),
		"--bin-dir", bin, "--components", "provider").CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s", out)
	require.Equal(t, 1, exit.ExitCode())
	require.Less(t, time.Since(begin), 10*time.Second)
	require.Contains(t, string(out), "provider exited 3 times before it was ready")
	require.Contains(t, string(out), "provider: cannot open the database")
	require.NotContains(t, string(out), "\nready\n")
	require.NoFileExists(t, filepath.Join(dir, stack.PidFile))
	require.NoFileExists(t, filepath.Join(dir, stack.InfoFile))
}

func mustAtoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}

// groupPids lists the live processes of process group pgid.
func groupPids(t *testing.T, pgid int) []int {
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			out = append(out, pid)
		}
	}
	return out
}
