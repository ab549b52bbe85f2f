package replica

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
)

// FuzzReadFrame feeds arbitrary bytes to the peer frame decoder: it must
// return a message or an error, never panic, decode exactly what raft's
// generated code decodes, and a decoded message must encode back to a
// frame that decodes to the same message.
func FuzzReadFrame(f *testing.F) {
	for _, m := range []pb.Message{
		{Type: pb.MsgHeartbeat, To: 2, From: 1, Term: 3, Commit: 10},
		{Type: pb.MsgApp, To: 3, From: 1, Term: 2, LogTerm: 2, Index: 7, Commit: 6,
			Entries: []pb.Entry{{Term: 2, Index: 8, Data: []byte{1, 0, 0, 0, 9}}, {Term: 2, Index: 9}}},
		{Type: pb.MsgVote, To: 1, From: 2, Term: 5, LogTerm: 4, Index: 100},
	} {
		b, err := appendFrame(nil, &m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	for _, body := range [][]byte{
		entryField(varintField(fieldEntryIndex, 5), bytesField(fieldEntryData, nil)),
		entryField(varintField(fieldEntryTerm, 1), bytesField(fieldEntryData, []byte{1}), bytesField(fieldEntryData, []byte{2, 3})),
		entryField(varintField(9, 1)),
		varintField(fieldMessageEntries, 1),
	} {
		f.Add(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var buf []byte
		var m pb.Message
		err := readFrame(bytes.NewReader(b), &buf, &m)
		if err != nil {
			if !errors.Is(err, ErrFrame) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if errors.Is(err, ErrFrame) && len(b) >= 4 {
				if n := binary.BigEndian.Uint32(b); n <= maxFrame && int(n) <= len(b)-4 {
					if _, gerr := generated(b[4 : 4+n]); gerr == nil {
						t.Fatalf("the generated decoder accepts what readFrame refused: %v", err)
					}
				}
			}
			return
		}
		want, gerr := generated(b[4 : 4+binary.BigEndian.Uint32(b)])
		if gerr != nil {
			t.Fatalf("readFrame accepted what the generated decoder refuses: %v", gerr)
		}
		if !reflect.DeepEqual(want, m) {
			t.Fatalf("decoded differently from the generated code:\n%v\n%v", want.String(), m.String())
		}
		again, err := appendFrame(nil, &m)
		if err != nil {
			t.Fatal(err)
		}
		var m2 pb.Message
		if err := readFrame(bytes.NewReader(again), &buf, &m2); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if m.String() != m2.String() {
			t.Fatalf("round trip changed the message:\n%v\n%v", m.String(), m2.String())
		}
	})
}
