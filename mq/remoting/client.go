package remoting

import (
	"context"
	"net"
	"sync"
	"time"
)

// ClientOptions configure a Client.
type ClientOptions struct {
	Conn ConnOptions
	// Handler serves requests the servers send back (may be nil).
	Handler Handler
	// DialTimeout bounds a dial; 3 s when 0.
	DialTimeout time.Duration
}

// Client keeps one connection per server address and sends requests on it.
type Client struct {
	opts ClientOptions

	mu     sync.Mutex
	conns  map[string]*Conn
	dials  map[string]*dial
	closed bool
}

type dial struct {
	done chan struct{}
	conn *Conn
	err  error
}

// NewClient returns a client.
func NewClient(opts ClientOptions) *Client {
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 3 * time.Second
	}
	return &Client{opts: opts, conns: make(map[string]*Conn), dials: make(map[string]*dial)}
}

// Conn returns the open connection to addr, dialing it when needed.
// Concurrent callers share one dial.
func (c *Client) Conn(ctx context.Context, addr string) (*Conn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if cn, ok := c.conns[addr]; ok && cn.Err() == nil {
		c.mu.Unlock()
		return cn, nil
	}
	d, ok := c.dials[addr]
	if !ok {
		d = &dial{done: make(chan struct{})}
		c.dials[addr] = d
		go c.dial(addr, d)
	}
	c.mu.Unlock()
	select {
	case <-d.done:
		return d.conn, d.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *Client) dial(addr string, d *dial) {
	nc, err := net.DialTimeout("tcp", addr, c.opts.DialTimeout)
	c.mu.Lock()
	delete(c.dials, addr)
	if err == nil && c.closed {
		_ = nc.Close()
		err = ErrClosed
	}
	if err != nil {
		d.err = err
		c.mu.Unlock()
		close(d.done)
		return
	}
	opts := c.opts.Conn
	userClose := opts.OnClose
	opts.OnClose = func(cn *Conn) {
		c.mu.Lock()
		if c.conns[addr] == cn {
			delete(c.conns, addr)
		}
		c.mu.Unlock()
		if userClose != nil {
			userClose(cn)
		}
	}
	d.conn = NewConn(nc, c.opts.Handler, opts)
	c.conns[addr] = d.conn
	c.mu.Unlock()
	close(d.done)
}

// Invoke sends req to addr and waits for the response until ctx ends.
func (c *Client) Invoke(ctx context.Context, addr string, req *Command) (*Command, error) {
	cn, err := c.Conn(ctx, addr)
	if err != nil {
		return nil, err
	}
	return cn.Invoke(ctx, req)
}

// InvokeTimeout is Invoke with a timeout instead of a context.
func (c *Client) InvokeTimeout(addr string, req *Command, timeout time.Duration) (*Command, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Invoke(ctx, addr, req)
}

// Oneway sends req to addr without waiting for an answer.
func (c *Client) Oneway(ctx context.Context, addr string, req *Command) error {
	cn, err := c.Conn(ctx, addr)
	if err != nil {
		return err
	}
	return cn.Oneway(req)
}

// CloseConn closes the connection to addr, if any.
func (c *Client) CloseConn(addr string) {
	c.mu.Lock()
	cn := c.conns[addr]
	delete(c.conns, addr)
	c.mu.Unlock()
	if cn != nil {
		_ = cn.Close()
	}
}

// Close closes every connection. It is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	conns := c.conns
	c.conns = make(map[string]*Conn)
	c.mu.Unlock()
	for _, cn := range conns {
		_ = cn.Close()
		cn.Wait()
	}
	return nil
}
