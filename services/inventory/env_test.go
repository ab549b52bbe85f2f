package inventory_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/mqtest"
	"qianlang.io/services/auth"
	"qianlang.io/services/bus"
	"qianlang.io/services/daemon"
	"qianlang.io/services/dbtest"
	"qianlang.io/services/events"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

var testSecrets = auth.Secrets{
	TokenSecret:    "test-token-secret-0123456789",
	AdminToken:     "test-admin-token-0123456789",
	ProviderSecret: "test-provider-secret-0123456789",
}

// env is one service under test, run in-process with daemon.Run against
// a real MariaDB and an in-process queue cluster, and a producer that
// plays the order service.
type env struct {
	t      *testing.T
	base   string
	group  string // the consumer group whose deliveries waitConsumed counts
	tokens *auth.Tokens
	orders *bus.Producer
	db     *sql.DB
	logs   *logCapture
}

// startEnv starts the service of spec with the topics it uses.
func startEnv(t *testing.T, spec daemon.Spec, group string, topics ...string) *env {
	t.Helper()
	c := mqtest.Start(t, mqtest.Options{})
	for _, topic := range topics {
		c.CreateTopic(topic, 4)
	}
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets.json")
	b, err := json.Marshal(testSecrets)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(secrets, b, 0o600))
	dsn := dbtest.DSN(t, spec.Name)

	logs := newLogCapture()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, spec, []string{"--listen", "127.0.0.1:0", "--dsn", dsn,
			"--namesrv", c.NamesrvAddr(), "--secrets", secrets, "--log-level", "info"}, logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", spec.Name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop", spec.Name)
		}
		if t.Failed() {
			t.Logf("%s logs:\n%s", spec.Name, logs.tail(200))
		}
	})
	var addr string
	select {
	case addr = <-logs.addr:
	case err := <-done:
		t.Fatalf("%s stopped: %v\n%s", spec.Name, err, logs.tail(50))
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start\n%s", spec.Name, logs.tail(50))
	}
	p, err := bus.NewProducer(bus.ProducerOptions{NameServers: c.NamesrvAddrs(), Group: "test_order_producer"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	db, err := sql.Open("mysql", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return &env{t: t, base: "http://" + addr, group: group, tokens: auth.NewTokens(testSecrets), orders: p, db: db, logs: logs}
}

// user returns a login token for id.
func (e *env) user(id string) string {
	tok, err := e.tokens.Sign(id, time.Now().Add(time.Hour))
	require.NoError(e.t, err)
	return tok
}

func (e *env) admin() string { return testSecrets.AdminToken }

// do sends a request with an optional bearer token and JSON body (a
// string is sent as is) and returns the status and the body.
func (e *env) do(t *testing.T, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, out
}

// errorCode returns the contract error code of a body.
func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &e), string(body))
	return e.Error.Code
}

// send publishes an event as the order service does.
func (e *env) send(t *testing.T, topic, orderID, eventID string, payload any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, e.orders.Send(ctx, topic, events.Key(orderID), eventID, payload))
}

// request sends a request-reply request and decodes the answer.
func (e *env) request(t *testing.T, topic, orderID string, req, resp any) {
	t.Helper()
	require.NoError(t, e.orders.Request(context.Background(), topic, events.Key(orderID), req, resp, 15*time.Second))
}

// consumed returns how many deliveries of topic the group handled
// successfully, from the service's /metrics.
func (e *env) consumed(t *testing.T, topic string) int {
	t.Helper()
	resp, err := http.Get(e.base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "qianlang_messages_consumed_total{") ||
			!strings.Contains(l, `group="`+e.group+`"`) || !strings.Contains(l, `topic="`+topic+`"`) ||
			strings.Contains(l, `outcome="failed"`) {
			continue
		}
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		require.NoError(t, err)
		n += int(v)
	}
	return n
}

// waitConsumed waits until the group has handled at least n deliveries of
// topic.
func (e *env) waitConsumed(t *testing.T, topic string, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return e.consumed(t, topic) >= n }, 30*time.Second, 20*time.Millisecond,
		"%s: %d of %d deliveries handled", topic, e.consumed(t, topic), n)
}

// sendTwice publishes the same event twice (same event id) and waits until
// both deliveries were handled.
func (e *env) sendTwice(t *testing.T, topic, orderID, eventID string, payload any) {
	t.Helper()
	base := e.consumed(t, topic)
	e.send(t, topic, orderID, eventID, payload)
	e.send(t, topic, orderID, eventID, payload)
	e.waitConsumed(t, topic, base+2)
}

// logCapture collects the service's log lines and reports the address it
// serves on.
type logCapture struct {
	mu    sync.Mutex
	lines []string
	part  []byte
	addr  chan string
}

func newLogCapture() *logCapture { return &logCapture{addr: make(chan string, 1)} }

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.part = append(l.part, p...)
	for {
		i := bytes.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		line := string(l.part[:i])
		l.part = l.part[i+1:]
		l.lines = append(l.lines, line)
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" && rec.Addr != "" {
			select {
			case l.addr <- rec.Addr:
			default:
			}
		}
	}
	return len(p), nil
}

func (l *logCapture) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	from := max(0, len(l.lines)-n)
	return strings.Join(l.lines[from:], "\n")
}

// unique returns an id unique in this run.
var seq struct {
	sync.Mutex
	n int
}

func unique(prefix string) string {
	seq.Lock()
	defer seq.Unlock()
	seq.n++
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1_000_000, seq.n)
}
