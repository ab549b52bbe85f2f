package provider_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/services/auth"
	"qianlang.io/services/daemon"
	"qianlang.io/services/dbtest"
	"qianlang.io/services/provider"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

const secret = "provider-secret-for-tests-0123456789"

// instance is a provider running in-process through daemon.Run.
type instance struct {
	t    *testing.T
	URL  string
	stop func()
}

// start runs the provider on dsn's database until stop or the test's end.
func start(t *testing.T, dsn string) *instance {
	t.Helper()
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets.json")
	b, _ := json.Marshal(auth.Secrets{TokenSecret: "token-secret-0123456789", AdminToken: "admin-token-0123456789", ProviderSecret: secret})
	require.NoError(t, os.WriteFile(secrets, b, 0o600))
	logs := &logWriter{addr: make(chan string, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	spec := daemon.Spec{Name: "provider", Migrations: provider.Migrations, Setup: provider.Setup}
	args := []string{"--listen", "127.0.0.1:0", "--dsn", dsn, "--secrets", secrets, "--log-level", "debug"}
	go func() { done <- daemon.Run(ctx, spec, args, logs) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("provider log:\n%s", logs.String())
		}
	})
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	select {
	case addr := <-logs.addr:
		return &instance{t: t, URL: "http://" + addr, stop: stop}
	case err := <-done:
		t.Fatalf("provider stopped at start: %v\n%s", err, logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("provider did not start\n%s", logs.String())
	}
	return nil
}

// logWriter keeps the daemon's JSON log and reports the address it serves on.
type logWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	addr chan string
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var rec struct{ Msg, Addr string }
	if json.Unmarshal(p, &rec) == nil && rec.Msg == "serving" {
		w.addr <- rec.Addr
	}
	return w.buf.Write(p)
}

func (w *logWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// reply is one answer of the provider.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// decode decodes the answer's body into a fresh T.
func decode[T any](t *testing.T, r reply) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(r.Body, &v), "body %s", r.Body)
	return v
}

func (r reply) code() string {
	var e struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

// noReuse sends every call on a new connection, so a dropped connection is
// seen as it is (a reused connection's request would be retried by the
// transport).
var noReuse = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}

// send makes one call; body is JSON-encoded unless it is a string.
func (p *instance) send(method, path, key string, body any) (reply, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return reply{}, err
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, p.URL+path, rd)
	if err != nil {
		return reply{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := noReuse.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, err
}

// try makes one call from any goroutine: a transport error is a reply of
// status -1 with the error as its body.
func (p *instance) try(method, path, key string, body any) reply {
	r, err := p.send(method, path, key, body)
	if err != nil {
		return reply{Status: -1, Body: []byte(err.Error())}
	}
	return r
}

// call makes one call that must be answered with want.
func (p *instance) call(method, path, key string, body any, want int) reply {
	p.t.Helper()
	r, err := p.send(method, path, key, body)
	require.NoError(p.t, err, "%s %s", method, path)
	require.Equal(p.t, want, r.Status, "%s %s: %s", method, path, r.Body)
	return r
}

func (p *instance) setFaults(faults map[string]any) provider.Faults {
	p.t.Helper()
	return decode[provider.Faults](p.t, p.call("PUT", "/provider/faults", "", faults, 200))
}

func (p *instance) ledger(orderID string) provider.Ledger {
	p.t.Helper()
	return decode[provider.Ledger](p.t, p.call("GET", "/provider/ledger?order_id="+orderID, "", nil, 200))
}

// pay opens and confirms a payment, returning its id.
func (p *instance) pay(orderID string, cents int64, notifyURL string) string {
	p.t.Helper()
	open := decode[provider.PaymentAnswer](p.t, p.call("POST", "/provider/payments", "", provider.PaymentRequest{
		OrderID: orderID, UserID: "u1", Cents: cents, NotifyURL: notifyURL}, 200))
	p.call("POST", "/provider/payments/"+open.PaymentID+"/confirm", "", nil, 200)
	return open.PaymentID
}

// metric returns the value of the sample named exactly series ("name{labels}").
func (p *instance) metric(series string) float64 {
	p.t.Helper()
	r := p.call("GET", "/metrics", "", nil, 200)
	for _, line := range strings.Split(string(r.Body), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			_, err := fmt.Sscan(rest, &v)
			require.NoError(p.t, err)
			return v
		}
	}
	return 0
}

// receiver is the platform's callback endpoint: it checks signatures,
// answers 500 to the first failFirst good attempts, then 2xx.
type receiver struct {
	*httptest.Server
	mu        sync.Mutex
	failFirst int
	attempts  []time.Time // good-signature attempts
	accepted  [][]byte    // bodies answered 2xx
	forged    int         // bad signatures
}

func newReceiver(t *testing.T, failFirst int) *receiver {
	rc := &receiver{failFirst: failFirst}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if r.Header.Get("Content-Type") != "application/json" || !auth.VerifyBody(secret, body, r.Header.Get(auth.SignatureHeader)) {
		rc.forged++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	rc.attempts = append(rc.attempts, time.Now())
	if len(rc.attempts) <= rc.failFirst {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	rc.accepted = append(rc.accepted, body)
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) setFailFirst(n int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.failFirst = n
}

// snapshot returns the attempts, the accepted bodies and the forged count.
func (rc *receiver) snapshot() ([]time.Time, [][]byte, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]time.Time(nil), rc.attempts...), append([][]byte(nil), rc.accepted...), rc.forged
}

func (rc *receiver) acceptedCount() int {
	_, acc, _ := rc.snapshot()
	return len(acc)
}

// waitAccepted waits until n bodies were accepted and returns them.
func (rc *receiver) waitAccepted(t *testing.T, n int, within time.Duration) [][]byte {
	t.Helper()
	require.Eventually(t, func() bool { return rc.acceptedCount() >= n }, within, 10*time.Millisecond, "want %d callbacks accepted", n)
	_, acc, forged := rc.snapshot()
	require.Zero(t, forged, "callbacks with a bad signature")
	return acc
}

// utc parses an RFC 3339 time that must be in UTC.
func utc(t *testing.T, s string) time.Time {
	t.Helper()
	require.True(t, strings.HasSuffix(s, "Z"), "%q is not UTC", s)
	at, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return at
}
