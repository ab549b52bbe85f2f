package remoting

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// ServerOptions configure a Server.
type ServerOptions struct {
	Conn ConnOptions
	// OnConnect, when set, runs for each accepted connection before its
	// first request is read.
	OnConnect func(*Conn)
	Logger    *slog.Logger
}

// Server accepts remoting connections and serves them with one Handler.
type Server struct {
	handler Handler
	opts    ServerOptions
	log     *slog.Logger

	mu     sync.Mutex
	ln     net.Listener
	conns  map[*Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewServer returns a server that serves requests with h.
func NewServer(h Handler, opts ServerOptions) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Conn.Logger == nil {
		opts.Conn.Logger = opts.Logger
	}
	return &Server{handler: h, opts: opts, log: opts.Logger, conns: make(map[*Conn]struct{})}
}

// Listen binds addr ("host:port"; port 0 picks one) and starts serving.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return ErrClosed
	}
	s.ln = ln
	s.mu.Unlock()
	s.wg.Add(1)
	go s.acceptLoop(ln)
	return nil
}

// Addr is the bound address, or nil before Listen.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

func (s *Server) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.add(nc)
	}
}

func (s *Server) add(nc net.Conn) {
	opts := s.opts.Conn
	userClose := opts.OnClose
	opts.OnClose = func(c *Conn) {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		if userClose != nil {
			userClose(c)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = nc.Close()
		return
	}
	c := NewConn(nc, s.handler, opts)
	s.conns[c] = struct{}{}
	if s.opts.OnConnect != nil {
		s.opts.OnConnect(c)
	}
}

// Conns returns the open connections.
func (s *Server) Conns() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// CloseListener stops accepting new connections and leaves the open ones
// serving (the first step of a graceful shutdown).
func (s *Server) CloseListener() {
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
}

// Close stops accepting, closes every connection and waits for the accept
// loop and the connections' goroutines. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ln := s.ln
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	for _, c := range conns {
		_ = c.Close()
	}
	s.wg.Wait()
	for _, c := range conns {
		c.Wait()
	}
	return nil
}

// Shutdown closes the listener, then waits up to ctx for the connections to
// be closed by their peers, then closes the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.CloseListener()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for len(s.Conns()) > 0 {
		select {
		case <-ctx.Done():
			return s.Close()
		case <-t.C:
		}
	}
	return s.Close()
}
