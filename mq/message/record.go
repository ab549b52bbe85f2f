package message

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
)

// Magic codes of stored records.
const (
	MagicV1    = 0xDAA320A7
	MagicV2    = 0xDAA320AB
	MagicBlank = 0xCBD43194
)

// SysFlag bits of a message.
const (
	FlagCompressed      = 0x1
	FlagMultiTags       = 0x2
	TransactionNotType  = 0x0
	TransactionPrepared = 0x4
	TransactionCommit   = 0x8
	TransactionRollback = 0xC
	TransactionMask     = 0xC
	FlagBornHostV6      = 0x10
	FlagStoreHostV6     = 0x20
)

// Limits of the V1 record.
const (
	MaxTopicLen      = 127
	MaxPropertiesLen = 32767
)

// ErrCorrupt is wrapped by every decoding error.
var ErrCorrupt = errors.New("message: corrupt record")

// Message is one message as stored.
type Message struct {
	Topic                     string
	QueueID                   int32
	Flag                      int32
	QueueOffset               int64
	PhysicalOffset            int64
	SysFlag                   int32
	BornTimestamp             int64
	BornHost                  netip.AddrPort
	StoreTimestamp            int64
	StoreHost                 netip.AddrPort
	ReconsumeTimes            int32
	PreparedTransactionOffset int64
	Body                      []byte
	Properties                string
	// BodyCRC is filled by decoding; encoding computes it.
	BodyCRC uint32
	// StoreSize is filled by decoding.
	StoreSize int32
}

func hostLen(h netip.AddrPort) int {
	if h.Addr().Unmap().Is4() || !h.Addr().IsValid() {
		return 8
	}
	return 20
}

// Validate checks the limits a record must respect.
func (m *Message) Validate() error {
	switch {
	case len(m.Topic) == 0:
		return fmt.Errorf("message: empty topic")
	case len(m.Topic) > MaxTopicLen:
		return fmt.Errorf("message: topic of %d bytes exceeds %d", len(m.Topic), MaxTopicLen)
	case len(m.Properties) > MaxPropertiesLen:
		return fmt.Errorf("message: properties of %d bytes exceed %d", len(m.Properties), MaxPropertiesLen)
	}
	return nil
}

// EncodedSize is the size of m's record.
func (m *Message) EncodedSize() int {
	return 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + hostLen(m.BornHost) + 8 + hostLen(m.StoreHost) + 4 + 8 +
		4 + len(m.Body) + 1 + len(m.Topic) + 2 + len(m.Properties)
}

// BodyChecksum is the BODYCRC of a body.
func BodyChecksum(body []byte) uint32 { return crc32.ChecksumIEEE(body) & 0x7FFFFFFF }

// AppendRecord appends m as a V1 record to dst. The host flags of SysFlag
// follow the hosts; m must pass Validate.
func AppendRecord(dst []byte, m *Message) []byte {
	sys := m.SysFlag &^ (FlagBornHostV6 | FlagStoreHostV6)
	if hostLen(m.BornHost) == 20 {
		sys |= FlagBornHostV6
	}
	if hostLen(m.StoreHost) == 20 {
		sys |= FlagStoreHostV6
	}
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(m.EncodedSize()))
	dst = be.AppendUint32(dst, MagicV1)
	dst = be.AppendUint32(dst, BodyChecksum(m.Body))
	dst = be.AppendUint32(dst, uint32(m.QueueID))
	dst = be.AppendUint32(dst, uint32(m.Flag))
	dst = be.AppendUint64(dst, uint64(m.QueueOffset))
	dst = be.AppendUint64(dst, uint64(m.PhysicalOffset))
	dst = be.AppendUint32(dst, uint32(sys))
	dst = be.AppendUint64(dst, uint64(m.BornTimestamp))
	dst = appendHost(dst, m.BornHost)
	dst = be.AppendUint64(dst, uint64(m.StoreTimestamp))
	dst = appendHost(dst, m.StoreHost)
	dst = be.AppendUint32(dst, uint32(m.ReconsumeTimes))
	dst = be.AppendUint64(dst, uint64(m.PreparedTransactionOffset))
	dst = be.AppendUint32(dst, uint32(len(m.Body)))
	dst = append(dst, m.Body...)
	dst = append(dst, byte(len(m.Topic)))
	dst = append(dst, m.Topic...)
	dst = be.AppendUint16(dst, uint16(len(m.Properties)))
	return append(dst, m.Properties...)
}

func appendHost(dst []byte, h netip.AddrPort) []byte {
	a := h.Addr().Unmap()
	switch {
	case !a.IsValid():
		dst = append(dst, 0, 0, 0, 0)
	case a.Is4():
		b := a.As4()
		dst = append(dst, b[:]...)
	default:
		b := a.As16()
		dst = append(dst, b[:]...)
	}
	return binary.BigEndian.AppendUint32(dst, uint32(h.Port()))
}

// Offsets of fixed fields in a record, for in-place reads and patches.
const (
	OffTotalSize      = 0
	OffMagic          = 4
	OffQueueID        = 12
	OffQueueOffset    = 20
	OffPhysicalOffset = 28
	OffSysFlag        = 36
	OffBornTimestamp  = 40
	OffBornHost       = 48
)

// RecordRef is a stored record's fields with its variable parts as slices
// of the encoded bytes: decoding it allocates nothing.
type RecordRef struct {
	Size           int32
	QueueID        int32
	Flag           int32
	QueueOffset    int64
	PhysicalOffset int64
	SysFlag        int32
	StoreTimestamp int64
	Topic          []byte
	Properties     []byte
	Body           []byte
}

// ParseRecord decodes the record at the start of b without copying. The
// record must be well formed, as for DecodeRecord. It reads the fixed
// fields at their offsets after one bounds check (every member parses each
// record twice: when it numbers it and when it dispatches it).
func ParseRecord(b []byte) (RecordRef, error) {
	var m RecordRef
	if len(b) < OffQueueID {
		return m, corrupt("truncated header")
	}
	be := binary.BigEndian
	total := int(be.Uint32(b))
	magic := be.Uint32(b[OffMagic:])
	if magic != MagicV1 && magic != MagicV2 {
		return m, corrupt("magic %#x", magic)
	}
	if total > len(b) {
		return m, corrupt("total size %d exceeds %d bytes", total, len(b))
	}
	b = b[:total]
	if total < OffBornHost {
		return m, corrupt("fixed fields overrun %d bytes", total)
	}
	m.Size = int32(total)
	m.QueueID = int32(be.Uint32(b[OffQueueID:]))
	m.Flag = int32(be.Uint32(b[OffQueueID+4:]))
	m.QueueOffset = int64(be.Uint64(b[OffQueueOffset:]))
	m.PhysicalOffset = int64(be.Uint64(b[OffPhysicalOffset:]))
	m.SysFlag = int32(be.Uint32(b[OffSysFlag:]))
	storeTS := OffBornHost + hostSize(m.SysFlag&FlagBornHostV6 != 0)
	// store timestamp, store host, reconsume times, prepared offset
	bodyLenAt := storeTS + 8 + hostSize(m.SysFlag&FlagStoreHostV6 != 0) + 4 + 8
	if total < bodyLenAt+4 {
		return m, corrupt("fixed fields overrun %d bytes", total)
	}
	m.StoreTimestamp = int64(be.Uint64(b[storeTS:]))
	pos := bodyLenAt + 4
	var ok bool
	if m.Body, pos, ok = field(b, pos, uint64(be.Uint32(b[bodyLenAt:]))); !ok {
		return m, corrupt("body overruns %d bytes", total)
	}
	var topicLen uint64
	switch {
	case magic == MagicV1 && pos < total:
		topicLen, pos = uint64(b[pos]), pos+1
	case magic == MagicV2 && pos+2 <= total:
		topicLen, pos = uint64(be.Uint16(b[pos:])), pos+2
	default:
		return m, corrupt("topic length overruns %d bytes", total)
	}
	if m.Topic, pos, ok = field(b, pos, topicLen); !ok {
		return m, corrupt("topic overruns %d bytes", total)
	}
	if pos+2 > total {
		return m, corrupt("properties length overruns %d bytes", total)
	}
	if m.Properties, pos, ok = field(b, pos+2, uint64(be.Uint16(b[pos:]))); !ok {
		return m, corrupt("properties overrun %d bytes", total)
	}
	if pos != total {
		return m, corrupt("fields end at %d, total size %d", pos, total)
	}
	return m, nil
}

// hostSize is the encoded size of a host: address and port.
func hostSize(v6 bool) int {
	if v6 {
		return 16 + 4
	}
	return 4 + 4
}

// field returns the n bytes of b at pos and the position after them.
func field(b []byte, pos int, n uint64) ([]byte, int, bool) {
	if n > uint64(len(b)-pos) {
		return nil, pos, false
	}
	end := pos + int(n)
	return b[pos:end:end], end, true
}

// DecodeRecord decodes the record at the start of b and returns it with its
// size. Body aliases b. The record must be well formed: a V1 or V2 magic,
// lengths that stay inside TOTALSIZE and add up to it exactly.
func DecodeRecord(b []byte) (Message, int, error) {
	var m Message
	ref, err := ParseRecord(b)
	if err != nil {
		return m, 0, err
	}
	r := reader{b: b[:ref.Size]}
	r.off = 8
	m.StoreSize = ref.Size
	m.BodyCRC = r.u32()
	m.QueueID = int32(r.u32())
	m.Flag = int32(r.u32())
	m.QueueOffset = int64(r.u64())
	m.PhysicalOffset = int64(r.u64())
	m.SysFlag = int32(r.u32())
	m.BornTimestamp = int64(r.u64())
	m.BornHost = r.host(m.SysFlag&FlagBornHostV6 != 0)
	m.StoreTimestamp = int64(r.u64())
	m.StoreHost = r.host(m.SysFlag&FlagStoreHostV6 != 0)
	m.ReconsumeTimes = int32(r.u32())
	m.PreparedTransactionOffset = int64(r.u64())
	m.Body = ref.Body
	m.Topic = string(ref.Topic)
	m.Properties = string(ref.Properties)
	return m, int(ref.Size), nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// reader reads big-endian fields, remembering the first overrun.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.err = fmt.Errorf("field of %d bytes at %d overruns %d", n, r.off, len(r.b))
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *reader) u8() uint8 {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if p := r.take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (r *reader) bytes(n int) []byte {
	p := r.take(n)
	if p == nil && r.err == nil {
		return []byte{}
	}
	return p
}

func (r *reader) host(v6 bool) netip.AddrPort {
	n := 4
	if v6 {
		n = 16
	}
	ip := r.take(n)
	port := r.u32()
	if r.err != nil {
		return netip.AddrPort{}
	}
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a, uint16(port))
}

// BatchItem is one message of a batch body.
type BatchItem struct {
	Flag       int32
	Body       []byte
	Properties string
}

// DecodeBatch splits a SEND_BATCH_MESSAGE body into its messages. Bodies
// alias b.
func DecodeBatch(b []byte) ([]BatchItem, error) {
	var items []BatchItem
	for off := 0; off < len(b); {
		r := reader{b: b[off:]}
		total := int(r.u32())
		if r.err != nil || total < 22 || total > len(b)-off {
			return nil, corrupt("batch item at %d: size %d of %d remaining", off, total, len(b)-off)
		}
		r.b = r.b[:total]
		r.u32() // magic
		r.u32() // body crc
		var it BatchItem
		it.Flag = int32(r.u32())
		it.Body = r.bytes(int(r.u32()))
		it.Properties = string(r.bytes(int(r.u16())))
		if r.err != nil || r.off != total {
			return nil, corrupt("batch item at %d: fields do not add up to %d", off, total)
		}
		items = append(items, it)
		off += total
	}
	if len(items) == 0 {
		return nil, corrupt("empty batch")
	}
	return items, nil
}

// AppendBatchItem appends one message in the batch body layout.
func AppendBatchItem(dst []byte, it BatchItem) []byte {
	be := binary.BigEndian
	dst = be.AppendUint32(dst, uint32(20+len(it.Body)+2+len(it.Properties)))
	dst = be.AppendUint32(dst, 0)
	dst = be.AppendUint32(dst, 0)
	dst = be.AppendUint32(dst, uint32(it.Flag))
	dst = be.AppendUint32(dst, uint32(len(it.Body)))
	dst = append(dst, it.Body...)
	dst = be.AppendUint16(dst, uint16(len(it.Properties)))
	return append(dst, it.Properties...)
}
