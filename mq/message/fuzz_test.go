package message

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// FuzzDecodeRecord feeds arbitrary bytes to the stored-message decoder: it
// must not panic, must fail only with ErrCorrupt, and a record it accepts
// must re-encode to the same bytes when written V1.
func FuzzDecodeRecord(f *testing.F) {
	m := sample()
	f.Add(AppendRecord(nil, &m))
	m.BornHost = netip.MustParseAddrPort("[2001:db8::1]:9")
	f.Add(AppendRecord(nil, &m))
	f.Add([]byte{0, 0, 0, 8, 0xDA, 0xA3, 0x20, 0xA7})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, n, err := DecodeRecord(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error without ErrCorrupt: %v", err)
			}
			return
		}
		if n <= 0 || n > len(data) {
			t.Fatalf("size %d of %d bytes", n, len(data))
		}
		if len(m.Topic) > MaxTopicLen || m.Validate() != nil {
			return // V2 records with long topics are decodable but never written
		}
		m2, _, err := DecodeRecord(AppendRecord(nil, &m))
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if m2.Topic != m.Topic || !bytes.Equal(m2.Body, m.Body) || m2.Properties != m.Properties || m2.QueueOffset != m.QueueOffset {
			t.Fatalf("round trip changed the record")
		}
	})
}

// FuzzDecodeBatch checks the batch body decoder on arbitrary input.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(AppendBatchItem(AppendBatchItem(nil, BatchItem{Body: []byte("a")}), BatchItem{Flag: 3, Body: []byte("bb"), Properties: "K\x01V\x02"}))
	f.Add([]byte{0, 0, 0, 22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := DecodeBatch(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error without ErrCorrupt: %v", err)
			}
			return
		}
		var again []byte
		for _, it := range items {
			again = AppendBatchItem(again, it)
		}
		if len(again) != len(data) {
			t.Fatalf("re-encoded batch has %d bytes, input %d", len(again), len(data))
		}
	})
}

// parseRecordFieldByField is ParseRecord written as a walk over the fields
// with a reader that checks every step: the reference FuzzParseRecord holds
// the offset-based parser to.
func parseRecordFieldByField(b []byte) (RecordRef, bool) {
	var m RecordRef
	r := reader{b: b}
	total := int(r.u32())
	magic := r.u32()
	if r.err != nil || (magic != MagicV1 && magic != MagicV2) || total > len(b) {
		return m, false
	}
	r.b = b[:total]
	m.Size = int32(total)
	r.u32() // body crc
	m.QueueID = int32(r.u32())
	m.Flag = int32(r.u32())
	m.QueueOffset = int64(r.u64())
	m.PhysicalOffset = int64(r.u64())
	m.SysFlag = int32(r.u32())
	r.u64() // born timestamp
	r.host(m.SysFlag&FlagBornHostV6 != 0)
	m.StoreTimestamp = int64(r.u64())
	r.host(m.SysFlag&FlagStoreHostV6 != 0)
	r.u32() // reconsume times
	r.u64() // prepared transaction offset
	m.Body = r.bytes(int(r.u32()))
	topicLen := int(r.u8())
	if magic == MagicV2 {
		topicLen = topicLen<<8 | int(r.u8())
	}
	m.Topic = r.bytes(topicLen)
	m.Properties = r.bytes(int(r.u16()))
	return m, r.err == nil && r.off == total
}

// FuzzParseRecord checks that ParseRecord accepts exactly what the
// field-by-field reader accepts, with the same fields, and fails only with
// ErrCorrupt.
func FuzzParseRecord(f *testing.F) {
	m := sample()
	f.Add(AppendRecord(nil, &m))
	m.BornHost = netip.MustParseAddrPort("[2001:db8::1]:9")
	m.StoreHost = netip.MustParseAddrPort("[2001:db8::2]:10")
	f.Add(AppendRecord(nil, &m))
	f.Add([]byte{0, 0, 0, 8, 0xDA, 0xA3, 0x20, 0xA7})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseRecord(data)
		want, ok := parseRecordFieldByField(data)
		if (err == nil) != ok {
			t.Fatalf("ParseRecord err=%v, field-by-field ok=%v", err, ok)
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error without ErrCorrupt: %v", err)
			}
			return
		}
		same := got.Size == want.Size && got.QueueID == want.QueueID && got.Flag == want.Flag &&
			got.QueueOffset == want.QueueOffset && got.PhysicalOffset == want.PhysicalOffset &&
			got.SysFlag == want.SysFlag && got.StoreTimestamp == want.StoreTimestamp &&
			bytes.Equal(got.Topic, want.Topic) && bytes.Equal(got.Properties, want.Properties) &&
			bytes.Equal(got.Body, want.Body) && (got.Body == nil) == (want.Body == nil) &&
			(got.Topic == nil) == (want.Topic == nil) && (got.Properties == nil) == (want.Properties == nil)
		if !same {
			t.Fatalf("ParseRecord %+v, field by field %+v", got, want)
		}
	})
}
