package remoting

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"
)

// DefaultMaxFrame is the largest frame accepted by default (16 MiB, as Java).
const DefaultMaxFrame = 16 << 20

// ErrFrameTooLarge is returned for a frame whose length word exceeds the
// limit. The connection cannot be resynchronised after it.
var ErrFrameTooLarge = errors.New("remoting: frame too large")

// ErrBadFrame is wrapped by every framing error other than size.
var ErrBadFrame = errors.New("remoting: malformed frame")

// AppendFrame appends the wire form of c to dst.
func AppendFrame(dst []byte, c *Command) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0) // total length, header-length word
	if c.Serialize == SerializeRocketMQ {
		dst = appendBinaryHeader(dst, c)
	} else {
		dst = appendJSONHeader(dst, c)
	}
	headerLen := len(dst) - start - 8
	dst = append(dst, c.Body...)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	binary.BigEndian.PutUint32(dst[start+4:], uint32(c.Serialize)<<24|uint32(headerLen)&0xFFFFFF)
	return dst
}

// ReadFrame reads one frame from r and decodes it. maxFrame bounds the
// length word (DefaultMaxFrame when 0). The body aliases a buffer owned by
// the returned command.
//
// A returned error wrapping io.EOF or io.ErrUnexpectedEOF means the stream
// ended; ErrFrameTooLarge, ErrBadFrame and ErrBadHeader mean the peer is
// broken and the connection should be closed.
func ReadFrame(r io.Reader, maxFrame int) (*Command, error) {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	var lenBuf [4]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(lenBuf[:])
	if n > uint32(maxFrame) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, maxFrame)
	}
	if n < 4 {
		return nil, fmt.Errorf("%w: length %d", ErrBadFrame, n)
	}
	ref := getFrameBuf(int(n))
	buf := *ref
	if _, err := io.ReadFull(r, buf); err != nil {
		putFrameBuf(ref)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	c, err := DecodeFrame(buf)
	if err != nil {
		putFrameBuf(ref)
		return nil, err
	}
	c.frame = ref
	return c, nil
}

// Frame buffers up to 64 KiB come from pools by power-of-two size, so the
// hot path (sends) reuses them instead of allocating and zeroing a buffer
// per request. A command's buffer returns to its pool only when its owner
// calls Release.
const (
	minPooledShift = 9  // 512 B
	maxPooledShift = 16 // 64 KiB
)

var framePools [maxPooledShift + 1]sync.Pool

// getFrameBuf returns a buffer of n bytes. The pools hold pointers, which
// travel with the buffer (Command.frame), so putting one back allocates
// nothing.
func getFrameBuf(n int) *[]byte {
	shift := max(bits.Len(uint(n-1)), minPooledShift)
	if shift <= maxPooledShift {
		if p, ok := framePools[shift].Get().(*[]byte); ok {
			*p = (*p)[:n]
			return p
		}
	}
	size := n
	if shift <= maxPooledShift {
		size = 1 << shift
	}
	b := make([]byte, n, size)
	return &b
}

func putFrameBuf(p *[]byte) {
	c := cap(*p)
	shift := bits.Len(uint(c)) - 1
	if c != 1<<shift || shift < minPooledShift || shift > maxPooledShift {
		return
	}
	framePools[shift].Put(p)
}

// Release returns the command's frame buffer for reuse. The caller must
// hold no reference to the body (or anything aliasing it) afterwards. It
// is optional: without it the buffer is simply garbage collected.
func (c *Command) Release() {
	if c.frame != nil {
		putFrameBuf(c.frame)
		c.frame, c.Body = nil, nil
	}
}

// DecodeFrame decodes the part of a frame after the total-length word.
func DecodeFrame(buf []byte) (*Command, error) {
	if len(buf) < 4 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadFrame, len(buf))
	}
	word := binary.BigEndian.Uint32(buf)
	typ := byte(word >> 24)
	h := int(word & 0xFFFFFF)
	if h > len(buf)-4 {
		return nil, fmt.Errorf("%w: header length %d exceeds frame of %d", ErrBadFrame, h, len(buf))
	}
	header := buf[4 : 4+h]
	c := &Command{Serialize: typ}
	var err error
	switch typ {
	case SerializeJSON:
		err = decodeJSONHeader(header, c)
	case SerializeRocketMQ:
		err = decodeBinaryHeader(header, c)
	default:
		err = fmt.Errorf("%w: unknown serialization type %d", ErrBadFrame, typ)
	}
	if err != nil {
		return nil, err
	}
	if body := buf[4+h:]; len(body) > 0 {
		c.Body = body
	}
	return c, nil
}
