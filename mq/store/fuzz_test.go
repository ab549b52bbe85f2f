package store

import (
	"bytes"
	"errors"
	"testing"

	"qianlang.io/mq/message"
)

// FuzzDecodeEntry feeds arbitrary bytes to the CommitLog entry decoder and
// to the segment scanner's classification: neither may panic, errors wrap
// ErrCorrupt, and an accepted entry re-encodes to the same bytes.
func FuzzDecodeEntry(f *testing.F) {
	m := message.Message{Topic: "T", Body: []byte("body"), Properties: "TAGS\x01A\x02"}
	rec := message.AppendRecord(nil, &m)
	f.Add(AppendEntry(nil, EntryMessages, 3, 7, rec))
	f.Add(AppendEntry(nil, EntryNoop, 1, 1, nil))
	f.Add(blankMarker(64))
	f.Add(make([]byte, 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, payload, err := DecodeEntry(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error without ErrCorrupt: %v", err)
			}
		} else {
			again := AppendEntry(nil, h.Type, h.Term, h.Index, payload)
			if !bytes.Equal(again, data[:h.Size]) {
				t.Fatalf("re-encoded entry differs")
			}
		}
		if len(data) >= blankSize {
			_, st, err := peekEntry(data, len(data))
			if st == entryTorn && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("torn without ErrCorrupt: %v", err)
			}
		}
	})
}

// FuzzScanSegment runs the recovery scan over an arbitrary segment image:
// it must stop cleanly at the first damaged byte and never report an entry
// that does not check out.
func FuzzScanSegment(f *testing.F) {
	m := message.Message{Topic: "T", Body: []byte("b"), Properties: ""}
	rec := message.AppendRecord(nil, &m)
	seg := AppendEntry(AppendEntry(nil, EntryMessages, 1, 1, rec), EntryMessages, 1, 2, rec)
	f.Add(seg)
	f.Add(append(append([]byte{}, seg...), 0xde, 0xad))
	f.Fuzz(func(t *testing.T, data []byte) {
		const size = 4096
		if len(data) > size {
			data = data[:size]
		}
		img := make([]byte, size)
		copy(img, data)
		l := &commitLog{segSize: size}
		end, _, _ := l.scanChunk(img, 0, size, false, func(off int64, e []byte) error {
			if _, err := checkEntry(e); err != nil {
				t.Fatalf("scan accepted a bad entry at %d: %v", off, err)
			}
			return nil
		})
		if end < 0 || end > size {
			t.Fatalf("scan ended at %d", end)
		}
	})
}
