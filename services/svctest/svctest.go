// Package svctest runs one service in-process for its tests: daemon.Run
// against a real MariaDB (dbtest) and an in-process queue cluster
// (mqtest), with a producer that plays the services around it, a login
// token signer, the admin token, and counts of what the service consumed
// read from its /metrics.
//
//	func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }
//	e := svctest.Start(t, points.Spec(), events.GroupCredit, events.TopicOrderPaySuccess)
package svctest

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
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

// Secrets are the secrets every service under test reads.
var Secrets = auth.Secrets{
	TokenSecret:    "test-token-secret-0123456789",
	AdminToken:     "test-admin-token-0123456789",
	ProviderSecret: "test-provider-secret-0123456789",
}

// Env is one service under test.
type Env struct {
	t *testing.T
	// Base is the service's base URL, e.g. http://127.0.0.1:41234.
	Base string
	// Group is the consumer group whose deliveries WaitConsumed counts.
	Group string
	// Tokens signs user tokens the service accepts.
	Tokens *auth.Tokens
	// Producer plays the services around this one.
	Producer *bus.Producer
	// DB is the service's own database, for checks the API cannot show.
	DB *sql.DB
	// Cluster is the queue the service uses.
	Cluster *mqtest.Cluster
	logs    *logCapture
}

// Options adjust Start.
type Options struct {
	// Args are more flags for the service.
	Args []string
	// Listen is the address the service serves on (default
	// 127.0.0.1:0). A service that must know its own URL before it starts
	// (a callback address it hands out) takes a fixed one from FreeAddr.
	Listen string
	// Queue shapes the test cluster (e.g. a broker's shorter redelivery
	// delays).
	Queue mqtest.Options
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// Start runs the service of spec with the topics it uses created, and
// stops it when the test ends; group is the consumer group WaitConsumed
// counts.
func Start(t *testing.T, spec daemon.Spec, group string, topics ...string) *Env {
	return StartWith(t, spec, Options{}, group, topics...)
}

// StartWith is Start with options.
func StartWith(t *testing.T, spec daemon.Spec, o Options, group string, topics ...string) *Env {
	t.Helper()
	c := mqtest.Start(t, o.Queue)
	for _, topic := range topics {
		c.CreateTopic(topic, 4)
	}
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets.json")
	b, err := json.Marshal(Secrets)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(secrets, b, 0o600))
	dsn := dbtest.DSN(t, spec.Name)

	logs := newLogCapture()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		listen := o.Listen
		if listen == "" {
			listen = "127.0.0.1:0"
		}
		args := []string{"--listen", listen, "--dsn", dsn, "--secrets", secrets, "--log-level", "info"}
		if spec.Queue {
			args = append(args, "--namesrv", c.NamesrvAddr())
		}
		done <- daemon.Run(ctx, spec, append(args, o.Args...), logs)
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
	return &Env{t: t, Base: "http://" + addr, Group: group, Tokens: auth.NewTokens(Secrets), Producer: p, DB: db, Cluster: c, logs: logs}
}

// User returns a login token for id.
func (e *Env) User(id string) string {
	tok, err := e.Tokens.Sign(id, time.Now().Add(time.Hour))
	require.NoError(e.t, err)
	return tok
}

// Admin returns the admin token.
func (e *Env) Admin() string { return Secrets.AdminToken }

// Do sends a request with an optional bearer token and JSON body (a
// string is sent as is) and returns the status and the body.
func (e *Env) Do(t *testing.T, method, path, token string, body any) (int, []byte) {
	t.Helper()
	return e.DoWith(t, method, path, token, nil, body)
}

// DoWith is Do with more request headers.
func (e *Env) DoWith(t *testing.T, method, path, token string, hdr map[string]string, body any) (int, []byte) {
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
	req, err := http.NewRequest(method, e.Base+path, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
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

// ErrorCode returns the contract error code of a body.
func ErrorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &e), string(body))
	return e.Error.Code
}

// Send publishes an event as the service's neighbours do.
func (e *Env) Send(t *testing.T, topic, orderID, eventID string, payload any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, e.Producer.Send(ctx, topic, events.Key(orderID), eventID, payload))
}

// Request sends a request-reply request and decodes the answer.
func (e *Env) Request(t *testing.T, topic, orderID string, req, resp any) {
	t.Helper()
	require.NoError(t, e.Producer.Request(context.Background(), topic, events.Key(orderID), req, resp, 15*time.Second))
}

// Consumed returns how many deliveries of topic the group handled
// successfully, from the service's /metrics.
func (e *Env) Consumed(t *testing.T, topic string) int {
	t.Helper()
	resp, err := http.Get(e.Base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "qianlang_messages_consumed_total{") ||
			!strings.Contains(l, `group="`+e.Group+`"`) || !strings.Contains(l, `topic="`+topic+`"`) ||
			strings.Contains(l, `outcome="failed"`) {
			continue
		}
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		require.NoError(t, err)
		n += int(v)
	}
	return n
}

// WaitConsumed waits until the group has handled at least n deliveries of
// topic. It polls on the test goroutine, where require may fail.
func (e *Env) WaitConsumed(t *testing.T, topic string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for got := e.Consumed(t, topic); got < n; got = e.Consumed(t, topic) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d deliveries handled", topic, got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SendTwice publishes the same event twice (same event id) and waits until
// both deliveries were handled.
func (e *Env) SendTwice(t *testing.T, topic, orderID, eventID string, payload any) {
	t.Helper()
	base := e.Consumed(t, topic)
	e.Send(t, topic, orderID, eventID, payload)
	e.Send(t, topic, orderID, eventID, payload)
	e.WaitConsumed(t, topic, base+2)
}

// Logs returns the service's last n log lines.
func (e *Env) Logs(n int) string { return e.logs.tail(n) }

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

var seq struct {
	sync.Mutex
	n int
}

// Unique returns an id unique in this run.
func Unique(prefix string) string {
	seq.Lock()
	defer seq.Unlock()
	seq.n++
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1_000_000, seq.n)
}
