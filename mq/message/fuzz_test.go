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
