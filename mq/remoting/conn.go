package remoting

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned for calls on a closed connection.
var ErrClosed = errors.New("remoting: connection closed")

// ErrTimeout is returned when a response does not arrive in time.
var ErrTimeout = errors.New("remoting: timeout waiting for response")

// Handler serves the requests arriving on a connection. It returns the
// response to write, or nil to write none. Each request runs in its own
// goroutine, so a handler may block (a long poll holds its request for
// seconds) without delaying the other requests of the connection. ctx is
// cancelled when the connection closes.
type Handler interface {
	ServeRemoting(ctx context.Context, c *Conn, req *Command) *Command
}

// InlineHandler is a Handler that serves some request codes on the
// connection's reader goroutine instead of a goroutine of their own. It is
// for handlers that never block — typically ones that queue the work and
// answer later with Respond — and saves a goroutine per request.
type InlineHandler interface {
	Handler
	Inline(code int32) bool
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, c *Conn, req *Command) *Command

// ServeRemoting calls f.
func (f HandlerFunc) ServeRemoting(ctx context.Context, c *Conn, req *Command) *Command {
	return f(ctx, c, req)
}

// ConnOptions tune a connection.
type ConnOptions struct {
	// MaxFrame bounds incoming frames; DefaultMaxFrame when 0.
	MaxFrame int
	// MaxInflight bounds the requests of one connection being served at once;
	// reading pauses (TCP back-pressure) while the bound is reached. 4096
	// when 0.
	MaxInflight int
	// WriteTimeout bounds one socket write; 30 s when 0.
	WriteTimeout time.Duration
	// MaxPendingWrite bounds the bytes queued for writing; senders wait
	// while it is exceeded. 64 MiB when 0.
	MaxPendingWrite int
	// OnClose, when set, runs once after the connection closed.
	OnClose func(*Conn)
	Logger  *slog.Logger
}

func (o *ConnOptions) defaults() {
	if o.MaxFrame <= 0 {
		o.MaxFrame = DefaultMaxFrame
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = 4096
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.MaxPendingWrite <= 0 {
		o.MaxPendingWrite = 64 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

var connIDs atomic.Uint64

// Conn is one remoting connection, used the same way by servers and clients:
// it serves incoming requests with its Handler, matches incoming responses to
// the requests it sent, and writes frames atomically, coalescing the frames
// queued while a write is in progress into one system call.
type Conn struct {
	nc      net.Conn
	id      uint64
	opts    ConnOptions
	handler Handler
	ctx     context.Context
	cancel  context.CancelFunc

	wmu      sync.Mutex
	wcond    *sync.Cond
	wbuf     []byte // frames waiting for the writer; guarded by wmu
	wclosed  bool   // guarded by wmu
	wakeup   chan struct{}
	inflight chan struct{}

	pmu     sync.Mutex
	pending map[int32]*call // guarded by pmu
	opaque  atomic.Int32

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
	closeErr  error // set before done is closed
}

type call struct {
	deadline time.Time
	ch       chan *Command         // for Invoke
	cb       func(*Command, error) // for InvokeAsync
}

// NewConn wraps nc and starts its reader and writer. handler may be nil when
// the peer never sends requests.
func NewConn(nc net.Conn, handler Handler, opts ConnOptions) *Conn {
	opts.defaults()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{
		nc:       nc,
		id:       connIDs.Add(1),
		opts:     opts,
		handler:  handler,
		ctx:      ctx,
		cancel:   cancel,
		wakeup:   make(chan struct{}, 1),
		inflight: make(chan struct{}, opts.MaxInflight),
		pending:  make(map[int32]*call),
		done:     make(chan struct{}),
	}
	c.wcond = sync.NewCond(&c.wmu)
	c.wg.Add(3)
	go c.readLoop()
	go c.writeLoop()
	go c.expireLoop()
	return c
}

// ID is a process-unique number of the connection.
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr is this side's address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// Done is closed when the connection has closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection closed, once Done is closed.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.closeErr
	default:
		return nil
	}
}

// Close closes the connection; pending calls fail with ErrClosed. It is
// idempotent.
func (c *Conn) Close() error {
	c.closeWith(ErrClosed)
	return nil
}

func (c *Conn) closeWith(err error) {
	c.closeOnce.Do(func() {
		c.closeErr = err
		c.cancel()
		_ = c.nc.Close()
		c.wmu.Lock()
		c.wclosed = true
		c.wcond.Broadcast()
		c.wmu.Unlock()
		close(c.done)
		c.failPending()
		if c.opts.OnClose != nil {
			go c.opts.OnClose(c)
		}
	})
}

func (c *Conn) failPending() {
	c.pmu.Lock()
	calls := c.pending
	c.pending = make(map[int32]*call)
	c.pmu.Unlock()
	for _, cl := range calls {
		cl.finish(nil, ErrClosed)
	}
}

func (cl *call) finish(resp *Command, err error) {
	if cl.cb != nil {
		cl.cb(resp, err)
		return
	}
	if err == nil {
		cl.ch <- resp
	} else {
		close(cl.ch)
	}
}

// Send writes c without waiting for a response. It is how responses and
// oneway requests go out.
func (c *Conn) Send(cmd *Command) error {
	if err := c.Queue(cmd); err != nil {
		return err
	}
	c.Kick()
	return nil
}

// Queue adds cmd to the write buffer without waking the writer; Kick does.
// Callers that produce many frames at once (a batch of completions) queue
// them all and kick once, so one system call carries them.
func (c *Conn) Queue(cmd *Command) error {
	c.wmu.Lock()
	for len(c.wbuf) > c.opts.MaxPendingWrite && !c.wclosed {
		c.wcond.Wait()
	}
	if c.wclosed {
		c.wmu.Unlock()
		return ErrClosed
	}
	c.wbuf = AppendFrame(c.wbuf, cmd)
	c.wmu.Unlock()
	return nil
}

// Kick wakes the writer to write what is queued.
func (c *Conn) Kick() {
	select {
	case c.wakeup <- struct{}{}:
	default:
	}
}

// Invoke sends req and waits for its response until ctx ends.
func (c *Conn) Invoke(ctx context.Context, req *Command) (*Command, error) {
	ch := make(chan *Command, 1)
	if err := c.start(req, &call{ch: ch}); err != nil {
		return nil, err
	}
	select {
	case resp, ok := <-ch:
		if !ok {
			return nil, ErrClosed
		}
		return resp, nil
	case <-ctx.Done():
		c.forget(req.Opaque)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w: code %d to %s", ErrTimeout, req.Code, c.nc.RemoteAddr())
		}
		return nil, ctx.Err()
	}
}

// InvokeAsync sends req and calls cb with its response, or with an error
// when the connection closes or timeout passes. cb runs on the reader
// goroutine of the connection (or the expiry loop) and must not block.
func (c *Conn) InvokeAsync(req *Command, timeout time.Duration, cb func(*Command, error)) error {
	return c.start(req, &call{cb: cb, deadline: time.Now().Add(timeout)})
}

// Oneway sends req as a oneway request.
func (c *Conn) Oneway(req *Command) error {
	req.Opaque = c.opaque.Add(1)
	req.Flag |= FlagOneway
	return c.Send(req)
}

func (c *Conn) start(req *Command, cl *call) error {
	req.Opaque = c.opaque.Add(1)
	req.Flag &^= FlagResponse
	c.pmu.Lock()
	if c.Err() != nil {
		c.pmu.Unlock()
		return ErrClosed
	}
	c.pending[req.Opaque] = cl
	c.pmu.Unlock()
	if err := c.Send(req); err != nil {
		c.forget(req.Opaque)
		return err
	}
	return nil
}

func (c *Conn) forget(opaque int32) {
	c.pmu.Lock()
	delete(c.pending, opaque)
	c.pmu.Unlock()
}

func (c *Conn) readLoop() {
	defer c.wg.Done()
	r := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		cmd, err := ReadFrame(r, c.opts.MaxFrame)
		if err != nil {
			c.readFailed(err)
			return
		}
		if cmd.IsResponse() {
			c.deliver(cmd)
			continue
		}
		if ih, ok := c.handler.(InlineHandler); ok && ih.Inline(cmd.Code) {
			if resp := ih.ServeRemoting(c.ctx, c, cmd); resp != nil {
				c.Respond(cmd, resp)
			}
			continue
		}
		select {
		case c.inflight <- struct{}{}:
		case <-c.done:
			return
		}
		go c.serve(cmd)
	}
}

func (c *Conn) readFailed(err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		c.closeWith(ErrClosed)
	case errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrBadFrame), errors.Is(err, ErrBadHeader):
		c.opts.Logger.Warn("closing connection after malformed frame", "remote", c.nc.RemoteAddr().String(), "err", err)
		c.closeWith(err)
	default:
		c.closeWith(fmt.Errorf("%w: %w", ErrClosed, err))
	}
}

func (c *Conn) deliver(resp *Command) {
	c.pmu.Lock()
	cl, ok := c.pending[resp.Opaque]
	delete(c.pending, resp.Opaque)
	c.pmu.Unlock()
	if ok {
		cl.finish(resp, nil)
	}
}

func (c *Conn) serve(req *Command) {
	defer func() { <-c.inflight }()
	var resp *Command
	if c.handler == nil {
		resp = req.Errorf(RequestCodeNotSupported, " request type %d not supported", req.Code)
	} else {
		resp = c.handler.ServeRemoting(c.ctx, c, req)
	}
	if resp != nil {
		c.Respond(req, resp)
	}
}

// Respond writes resp as the response to req. Handlers that return nil use
// it to answer later, from any goroutine.
func (c *Conn) Respond(req, resp *Command) {
	c.RespondQueued(req, resp)
	c.Kick()
}

// RespondQueued queues resp as the response to req without waking the
// writer (see Queue).
func (c *Conn) RespondQueued(req, resp *Command) {
	resp.Opaque = req.Opaque
	resp.Flag |= FlagResponse
	_ = c.Queue(resp)
}

func (c *Conn) writeLoop() {
	defer c.wg.Done()
	var spare []byte
	for {
		select {
		case <-c.wakeup:
		case <-c.done:
			return
		}
		// Let the goroutines that are about to queue frames (a batch of
		// completions) do so, so one write carries them all.
		runtime.Gosched()
		for {
			c.wmu.Lock()
			buf := c.wbuf
			c.wbuf = spare[:0]
			c.wcond.Broadcast()
			c.wmu.Unlock()
			if len(buf) == 0 {
				spare = buf
				break
			}
			_ = c.nc.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
			if _, err := c.nc.Write(buf); err != nil {
				c.closeWith(fmt.Errorf("%w: write: %w", ErrClosed, err))
				return
			}
			if cap(buf) > 4<<20 {
				buf = nil // do not pin a huge buffer after a burst
			}
			spare = buf
		}
	}
}

// expireLoop fails async calls whose deadline passed.
func (c *Conn) expireLoop() {
	defer c.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			c.expire(now)
		}
	}
}

func (c *Conn) expire(now time.Time) {
	var expired []*call
	c.pmu.Lock()
	for op, cl := range c.pending {
		if cl.cb != nil && now.After(cl.deadline) {
			expired = append(expired, cl)
			delete(c.pending, op)
		}
	}
	c.pmu.Unlock()
	for _, cl := range expired {
		cl.finish(nil, ErrTimeout)
	}
}

// Wait blocks until the connection's goroutines have exited.
func (c *Conn) Wait() { c.wg.Wait() }
