package remoting

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	codeSlow = 900
	codeEcho = 901
)

func startServer(t *testing.T, h Handler) (*Server, string) {
	t.Helper()
	s := NewServer(h, ServerOptions{})
	require.NoError(t, s.Listen("127.0.0.1:0"))
	t.Cleanup(func() { _ = s.Close() })
	return s, s.Addr().String()
}

func echoHandler(release <-chan struct{}) Handler {
	return HandlerFunc(func(ctx context.Context, c *Conn, req *Command) *Command {
		switch req.Code {
		case codeSlow:
			select {
			case <-release:
			case <-ctx.Done():
				return nil
			}
			return req.Response(Success, "slow")
		case codeEcho:
			resp := req.Response(Success, "")
			resp.ExtFields = req.ExtFields
			resp.Body = req.Body
			return resp
		}
		return req.Errorf(RequestCodeNotSupported, " request type %d not supported", req.Code)
	})
}

func TestConnLongRequestDoesNotBlockOthers(t *testing.T) {
	release := make(chan struct{})
	_, addr := startServer(t, echoHandler(release))
	cl := NewClient(ClientOptions{})
	defer cl.Close()
	ctx := context.Background()

	slowDone := make(chan *Command, 1)
	go func() {
		resp, _ := cl.Invoke(ctx, addr, NewRequest(codeSlow, nil, nil))
		slowDone <- resp
	}()
	for i := range 100 {
		resp, err := cl.InvokeTimeout(addr, NewRequest(codeEcho, Fields{{"i", "x"}}, []byte{byte(i)}), 2*time.Second)
		require.NoError(t, err)
		require.Equal(t, []byte{byte(i)}, resp.Body)
	}
	select {
	case <-slowDone:
		t.Fatal("slow request answered before release")
	default:
	}
	close(release)
	resp := <-slowDone
	require.NotNil(t, resp)
	require.Equal(t, "slow", resp.Remark)
}

func TestConnUnknownCodeAnsweredNotSupported(t *testing.T) {
	_, addr := startServer(t, echoHandler(nil))
	cl := NewClient(ClientOptions{})
	defer cl.Close()
	resp, err := cl.InvokeTimeout(addr, NewRequest(12345, nil, nil), 2*time.Second)
	require.NoError(t, err)
	require.Equal(t, int32(RequestCodeNotSupported), resp.Code)
}

func TestConnMalformedFrameClosesOnlyThatConnection(t *testing.T) {
	_, addr := startServer(t, echoHandler(nil))
	good := NewClient(ClientOptions{})
	defer good.Close()
	_, err := good.InvokeTimeout(addr, NewRequest(codeEcho, nil, nil), 2*time.Second)
	require.NoError(t, err)

	for _, garbage := range [][]byte{
		{0, 0, 0, 6, 0, 0, 0, 2, '{', '{'}, // bad header
		{0x7f, 0xff, 0xff, 0xff},           // too large
		{0, 0, 0, 6, 9, 0, 0, 2, '{', '}'}, // bad serialization type
	} {
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		_, err = nc.Write(garbage)
		require.NoError(t, err)
		_ = nc.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := nc.Read(make([]byte, 1))
		require.Equal(t, 0, n)
		require.Error(t, err, "server must close the broken connection")
		_ = nc.Close()
	}

	resp, err := good.InvokeTimeout(addr, NewRequest(codeEcho, nil, []byte("still")), 2*time.Second)
	require.NoError(t, err)
	require.Equal(t, "still", string(resp.Body))
}

func TestConnConcurrentResponsesNeverInterleave(t *testing.T) {
	_, addr := startServer(t, echoHandler(nil))
	cl := NewClient(ClientOptions{})
	defer cl.Close()
	var wg sync.WaitGroup
	var bad atomic.Int32
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				body := make([]byte, 1+(g*131+i*17)%5000)
				for j := range body {
					body[j] = byte(g + i + j)
				}
				resp, err := cl.InvokeTimeout(addr, NewRequest(codeEcho, nil, body), 5*time.Second)
				if err != nil || string(resp.Body) != string(body) {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.Zero(t, bad.Load())
}

func TestConnAsyncTimeoutAndCloseFailPending(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	_, addr := startServer(t, echoHandler(release))
	cl := NewClient(ClientOptions{})
	cn, err := cl.Conn(context.Background(), addr)
	require.NoError(t, err)

	errs := make(chan error, 2)
	require.NoError(t, cn.InvokeAsync(NewRequest(codeSlow, nil, nil), 200*time.Millisecond, func(_ *Command, err error) { errs <- err }))
	require.ErrorIs(t, <-errs, ErrTimeout)

	require.NoError(t, cn.InvokeAsync(NewRequest(codeSlow, nil, nil), time.Minute, func(_ *Command, err error) { errs <- err }))
	require.NoError(t, cl.Close())
	require.ErrorIs(t, <-errs, ErrClosed)
	require.NoError(t, cl.Close(), "Close is idempotent")
}

func TestServerOnCloseHookRunsWhenPeerLeaves(t *testing.T) {
	closed := make(chan uint64, 1)
	s := NewServer(echoHandler(nil), ServerOptions{Conn: ConnOptions{OnClose: func(c *Conn) { closed <- c.ID() }}})
	require.NoError(t, s.Listen("127.0.0.1:0"))
	defer s.Close()
	cl := NewClient(ClientOptions{})
	_, err := cl.InvokeTimeout(s.Addr().String(), NewRequest(codeEcho, nil, nil), time.Second)
	require.NoError(t, err)
	require.Len(t, s.Conns(), 1)
	require.NoError(t, cl.Close())
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("OnClose not called")
	}
	require.Empty(t, s.Conns())
}
