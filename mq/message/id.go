package message

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"
)

// OffsetMsgID returns the offset message id of a record: upper-case hex of
// the store host's IP (4 or 16 bytes), its port (int32) and the record's
// physical offset (int64). IPv4 ids are 32 characters.
func OffsetMsgID(storeHost netip.AddrPort, physicalOffset int64) string {
	var b [28]byte
	n := 0
	a := storeHost.Addr().Unmap()
	switch {
	case !a.IsValid():
		n += 4
	case a.Is4():
		ip := a.As4()
		n += copy(b[:], ip[:])
	default:
		ip := a.As16()
		n += copy(b[:], ip[:])
	}
	binary.BigEndian.PutUint32(b[n:], uint32(storeHost.Port()))
	binary.BigEndian.PutUint64(b[n+4:], uint64(physicalOffset))
	return upperHex(b[:n+12])
}

const upperDigits = "0123456789ABCDEF"

// upperHex encodes b as upper-case hex with one allocation.
func upperHex(b []byte) string {
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = upperDigits[c>>4], upperDigits[c&0xF]
	}
	return string(out)
}

// ParseOffsetMsgID decodes an offset message id (32 or 56 hex characters).
func ParseOffsetMsgID(id string) (netip.AddrPort, int64, error) {
	if len(id) != 32 && len(id) != 56 {
		return netip.AddrPort{}, 0, fmt.Errorf("message: offset message id %q: want 32 or 56 hex characters", id)
	}
	raw, err := hex.DecodeString(id)
	if err != nil {
		return netip.AddrPort{}, 0, fmt.Errorf("message: offset message id %q: %w", id, err)
	}
	ipLen := len(raw) - 12
	a, _ := netip.AddrFromSlice(raw[:ipLen])
	port := binary.BigEndian.Uint32(raw[ipLen:])
	off := int64(binary.BigEndian.Uint64(raw[ipLen+4:]))
	return netip.AddrPortFrom(a, uint16(port)), off, nil
}

// TagsCode is the ConsumeQueue tags code of a tag: Java's String.hashCode
// over UTF-16 code units, sign-extended. An empty tag gives 0.
func TagsCode(tag string) int64 { return int64(JavaHash(0, tag)) }

// JavaHash continues Java's String.hashCode h over s, so the hash of a
// concatenation can be computed piece by piece without building it.
func JavaHash[S ~string | ~[]byte](h int32, s S) int32 {
	for _, r := range string(s) {
		if r >= 0x10000 {
			r1, r2 := utf16.EncodeRune(r)
			h = 31*h + int32(r1)
			h = 31*h + int32(r2)
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}

// UniqIDGenerator makes UNIQ_KEY values in Java's format: upper-case hex of
// the host IP, pid, a per-process number, milliseconds since the start of
// the month and a counter.
type UniqIDGenerator struct {
	prefix string
	mu     sync.Mutex
	month  time.Time
	count  atomic.Uint32
}

// NewUniqIDGenerator returns a generator for a host.
func NewUniqIDGenerator(ip netip.Addr) *UniqIDGenerator {
	var b []byte
	if a := ip.Unmap(); a.Is4() {
		v := a.As4()
		b = append(b, v[:]...)
	} else {
		v := ip.As16()
		b = append(b, v[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(os.Getpid()))
	b = binary.BigEndian.AppendUint32(b, uint32(time.Now().UnixNano()))
	return &UniqIDGenerator{prefix: upperHex(b)}
}

// Next returns a new id.
func (g *UniqIDGenerator) Next(now time.Time) string {
	g.mu.Lock()
	if y, mo, _ := now.Date(); g.month.Year() != y || g.month.Month() != mo {
		g.month = time.Date(y, mo, 1, 0, 0, 0, 0, now.Location())
	}
	ms := uint32(now.Sub(g.month).Milliseconds())
	g.mu.Unlock()
	var b [6]byte
	binary.BigEndian.PutUint32(b[:], ms)
	binary.BigEndian.PutUint16(b[4:], uint16(g.count.Add(1)))
	return g.prefix + upperHex(b[:])
}
