package replica

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
)

// Transport carries raft messages between the members of a group.
type Transport interface {
	// Send queues msgs for their destinations and never blocks. A message
	// that cannot be delivered is dropped (raft sends again) and its
	// destination reported unreachable.
	Send(msgs []pb.Message)
	Close() error
}

// maxFrame bounds one raft message on the wire.
const maxFrame = 64 << 20

// peerQueue is how many messages wait for one peer before new ones are
// dropped.
const peerQueue = 4096

// TCPOptions configure a TCP transport.
type TCPOptions struct {
	Self   uint64
	Listen string // address to accept peers on
	// Listener, when set, is used instead of listening on Listen.
	Listener net.Listener
	Peers    map[uint64]string // every member but Self
	Logger   *slog.Logger
	// Deliver receives each message from a peer; it may block, which
	// pushes back on that peer's connection.
	Deliver func(pb.Message)
	// Unreachable is told when a message to a peer was dropped.
	Unreachable func(id uint64)
}

// TCP is the transport between group members: one outbound connection per
// peer, written by its own goroutine, and the inbound connections each
// read by one. A frame is a 4-byte big-endian length and the message in
// raft's protobuf encoding.
type TCP struct {
	o      TCPOptions
	ln     net.Listener
	peers  map[uint64]*peerConn
	filter atomic.Pointer[Filter]

	mu      sync.Mutex
	inbound map[net.Conn]struct{} // guarded by mu
	closed  bool                  // guarded by mu
	wg      sync.WaitGroup
	stop    chan struct{}
	once    sync.Once
}

type peerConn struct {
	id   uint64
	addr string
	q    chan pb.Message
}

// ListenTCP starts a transport listening on o.Listen.
func ListenTCP(o TCPOptions) (*TCP, error) {
	ln := o.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", o.Listen); err != nil {
			return nil, fmt.Errorf("replica: listen for peers on %s: %w", o.Listen, err)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	t := &TCP{o: o, ln: ln, peers: make(map[uint64]*peerConn), inbound: make(map[net.Conn]struct{}), stop: make(chan struct{})}
	for id, addr := range o.Peers {
		if id == o.Self {
			continue
		}
		p := &peerConn{id: id, addr: addr, q: make(chan pb.Message, peerQueue)}
		t.peers[id] = p
		t.wg.Add(1)
		go t.writeLoop(p)
	}
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

// Addr is the address the transport accepts peers on.
func (t *TCP) Addr() string { return t.ln.Addr().String() }

// SetFilter installs drop, which is asked about every message sent or
// received and drops it when true; nil removes it. Tests use it to cut the
// network between members, or to lose chosen messages.
func (t *TCP) SetFilter(drop Filter) {
	if drop == nil {
		t.filter.Store(nil)
		return
	}
	t.filter.Store(&drop)
}

func (t *TCP) dropped(m *pb.Message) bool {
	f := t.filter.Load()
	if f == nil {
		return false
	}
	// The filter sees a summary by value, so m does not escape: without
	// a filter, sending allocates nothing per message.
	return (*f)(summary(m))
}

// TCPTransport is an Options.NewTransport that starts a TCP transport
// with o, the node's delivery and unreachable reports filled in, and
// hands it to started (when not nil) before the node uses it.
func TCPTransport(o TCPOptions, started func(*TCP)) func(deliver func(pb.Message), unreachable func(uint64)) (Transport, error) {
	return func(deliver func(pb.Message), unreachable func(uint64)) (Transport, error) {
		o.Deliver, o.Unreachable = deliver, unreachable
		tr, err := ListenTCP(o)
		if err == nil && started != nil {
			started(tr)
		}
		return tr, err
	}
}

func (t *TCP) Send(msgs []pb.Message) {
	for _, m := range msgs {
		p := t.peers[m.To]
		if p == nil || t.dropped(&m) {
			continue
		}
		select {
		case p.q <- m:
		default:
			t.unreachable(m.To)
		}
	}
}

func (t *TCP) unreachable(id uint64) {
	if t.o.Unreachable != nil {
		t.o.Unreachable(id)
	}
}

func (t *TCP) writeLoop(p *peerConn) {
	defer t.wg.Done()
	var conn net.Conn
	// Frames are marshalled straight into out and written with one call
	// per batch: no second copy through a buffered writer.
	var out []byte
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		var m pb.Message
		select {
		case m = <-p.q:
		case <-t.stop:
			return
		}
		if conn == nil {
			c, err := net.DialTimeout("tcp", p.addr, time.Second)
			if err != nil {
				t.unreachable(p.id)
				t.drain(p)
				select {
				case <-time.After(100 * time.Millisecond):
				case <-t.stop:
					return
				}
				continue
			}
			conn = c
		}
		var err error
		out, err = t.writeBatch(conn, p, m, out[:0])
		if cap(out) > 8<<20 {
			out = nil
		}
		if err != nil {
			t.o.Logger.Warn("peer connection lost", "peer", p.id, "addr", p.addr, "err", err)
			conn.Close()
			conn = nil
			t.unreachable(p.id)
		}
	}
}

// writeBatch writes m and whatever else is queued for p, in writes of
// about writeBatchBytes.
func (t *TCP) writeBatch(conn net.Conn, p *peerConn, m pb.Message, out []byte) ([]byte, error) {
	for {
		var err error
		if out, err = appendFrame(out, &m); err != nil {
			return out, err
		}
		more := false
		select {
		case m = <-p.q:
			more = true
		default:
		}
		if !more || len(out) >= writeBatchBytes {
			if _, err := conn.Write(out); err != nil {
				return out, err
			}
			out = out[:0]
		}
		if !more {
			return out, nil
		}
	}
}

// writeBatchBytes is about how much a peer connection writes at once.
const writeBatchBytes = 256 << 10

// drain drops what is queued for an unreachable peer.
func (t *TCP) drain(p *peerConn) {
	for {
		select {
		case <-p.q:
		default:
			return
		}
	}
}

func appendFrame(dst []byte, m *pb.Message) ([]byte, error) {
	n := m.Size()
	if n > maxFrame {
		return dst, fmt.Errorf("replica: message of %d bytes exceeds %d", n, maxFrame)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	start := len(dst)
	dst = slices.Grow(dst, n)[:start+n]
	if _, err := m.MarshalToSizedBuffer(dst[start:]); err != nil {
		return dst, err
	}
	return dst, nil
}

// ErrFrame is wrapped by errors about a malformed peer frame.
var ErrFrame = errors.New("replica: bad frame")

// readFrame reads one message. buf is reused between calls until a
// message's entries alias it; it is then left to the message.
func readFrame(r io.Reader, buf *[]byte, m *pb.Message) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return fmt.Errorf("%w: %d bytes exceeds %d", ErrFrame, n, maxFrame)
	}
	// A buffer far larger than the frame is not kept alive by entries
	// that alias a small part of it.
	if c := cap(*buf); c < int(n) || c > 2*int(n)+64<<10 {
		*buf = make([]byte, n)
	}
	b := (*buf)[:n]
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	aliased, err := decodeMessage(b, m)
	if aliased {
		*buf = nil
	}
	return err
}

func (t *TCP) acceptLoop() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			select {
			case <-t.stop:
				return
			default:
			}
			t.o.Logger.Warn("accepting a peer failed", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			c.Close()
			return
		}
		t.inbound[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.readLoop(c)
	}
}

func (t *TCP) readLoop(c net.Conn) {
	defer t.wg.Done()
	defer func() {
		t.mu.Lock()
		delete(t.inbound, c)
		t.mu.Unlock()
		c.Close()
	}()
	r := bufio.NewReaderSize(c, 256<<10)
	var buf []byte
	for {
		var m pb.Message
		if err := readFrame(r, &buf, &m); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				t.o.Logger.Warn("peer frame unreadable; closing the connection", "remote", c.RemoteAddr().String(), "err", err)
			}
			return
		}
		if m.To != t.o.Self || t.dropped(&m) {
			continue
		}
		t.o.Deliver(m)
	}
}

// Close stops the transport: the listener, every connection and goroutine.
// It is idempotent.
func (t *TCP) Close() error {
	t.once.Do(func() {
		close(t.stop)
		t.mu.Lock()
		t.closed = true
		for c := range t.inbound {
			c.Close()
		}
		t.mu.Unlock()
		t.ln.Close()
	})
	t.wg.Wait()
	return nil
}
