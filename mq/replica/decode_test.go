package replica

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// generated decodes b with raft's generated code, the reference.
func generated(b []byte) (pb.Message, error) {
	var m pb.Message
	err := m.Unmarshal(bytes.Clone(b))
	return m, err
}

func marshal(tb testing.TB, m pb.Message) []byte {
	tb.Helper()
	b, err := m.Marshal()
	require.NoError(tb, err)
	return b
}

// entryField encodes one Message.Entries field from raw Entry fields.
func entryField(fields ...[]byte) []byte {
	var e []byte
	for _, f := range fields {
		e = append(e, f...)
	}
	b := protowire.AppendTag(nil, fieldMessageEntries, protowire.BytesType)
	return protowire.AppendBytes(b, e)
}

func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func bytesField(num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
}

func TestDecodeMessageMatchesGeneratedCode(t *testing.T) {
	app := pb.Message{Type: pb.MsgApp, To: 2, From: 1, Term: 4, LogTerm: 3, Index: 10, Commit: 9,
		Entries: []pb.Entry{
			{Term: 4, Index: 11, Data: []byte{1, 'a', 'b'}},
			{Term: 4, Index: 12}, // a leader's empty entry: no data field
			{Term: 4, Index: 13, Type: pb.EntryConfChange, Data: []byte{8, 1}},
		}}
	tests := []struct {
		name    string
		b       []byte
		aliased bool
	}{
		{"append with entries", marshal(t, app), true},
		{"heartbeat", marshal(t, pb.Message{Type: pb.MsgHeartbeat, To: 2, From: 1, Term: 4, Commit: 9, Context: []byte("ctx")}), false},
		{"append response", marshal(t, pb.Message{Type: pb.MsgAppResp, To: 1, From: 2, Term: 4, Index: 13, Reject: true, RejectHint: 7}), false},
		{"snapshot", marshal(t, pb.Message{Type: pb.MsgSnap, To: 2, From: 1, Term: 4,
			Snapshot: &pb.Snapshot{Data: []byte(`{"a":1}`), Metadata: pb.SnapshotMetadata{Index: 100, Term: 3}}}), false},
		{"entries before the other fields", append(append(entryField(varintField(fieldEntryIndex, 5), bytesField(fieldEntryData, []byte{1, 2})),
			entryField(varintField(fieldEntryIndex, 6))...), marshal(t, pb.Message{Type: pb.MsgApp, To: 2, From: 1})...), true},
		{"present but empty data", entryField(varintField(fieldEntryIndex, 5), bytesField(fieldEntryData, nil)), true},
		{"a field given twice: the last counts", entryField(varintField(fieldEntryTerm, 1), varintField(fieldEntryTerm, 2),
			bytesField(fieldEntryData, []byte{1}), bytesField(fieldEntryData, []byte{2, 3})), true},
		{"type beyond int32 keeps its low bits", entryField(varintField(fieldEntryType, 1<<32|2)), true},
		{"unknown entry field: generated code decides", entryField(varintField(9, 1)), false},
		{"entry field with the wrong wire type", entryField(bytesField(fieldEntryTerm, []byte{1})), false},
		{"entries field with the wrong wire type", varintField(fieldMessageEntries, 1), false},
		{"truncated entry", entryField(varintField(fieldEntryIndex, 5), bytesField(fieldEntryData, []byte{1, 2, 3}))[:8], false},
		{"entry data longer than the entry", append(protowire.AppendBytes(protowire.AppendTag(nil, fieldMessageEntries, protowire.BytesType),
			[]byte{0x22, 9, 1}), 1, 2, 3, 4, 5, 6, 7, 8), false},
		{"garbage", []byte{0xff, 0xff, 0xff}, false},
		{"empty", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, wantErr := generated(tc.b)
			var got pb.Message
			aliased, err := decodeMessage(bytes.Clone(tc.b), &got)
			if wantErr != nil {
				require.ErrorIs(t, err, ErrFrame)
				return
			}
			require.NoError(t, err)
			require.Equal(t, want, got)
			require.Equal(t, tc.aliased, aliased)
		})
	}
}

func TestDecodeMessageEntriesAliasTheFrame(t *testing.T) {
	b := marshal(t, pb.Message{Type: pb.MsgApp, To: 2, From: 1,
		Entries: []pb.Entry{{Index: 1, Data: []byte("first")}, {Index: 2, Data: []byte("second")}}})
	var m pb.Message
	aliased, err := decodeMessage(b, &m)
	require.NoError(t, err)
	require.True(t, aliased)
	// No copy: the entry reads the frame's bytes ...
	i := bytes.Index(b, []byte("first"))
	b[i] = 'F'
	require.Equal(t, "First", string(m.Entries[0].Data))
	// ... and cannot append over its neighbour's.
	require.Equal(t, len(m.Entries[0].Data), cap(m.Entries[0].Data))
	_ = append(m.Entries[0].Data, 'x')
	require.Equal(t, "second", string(m.Entries[1].Data))
}

// A frame whose entries alias the read buffer leaves the buffer to the
// message: the next frame read does not overwrite the first one's entries.
func TestReadFrameHandsTheBufferToTheMessage(t *testing.T) {
	var wire []byte
	for _, d := range []string{"one", "two"} {
		m := pb.Message{Type: pb.MsgApp, To: 2, From: 1, Entries: []pb.Entry{{Index: 1, Data: []byte(d)}}}
		var err error
		wire, err = appendFrame(wire, &m)
		require.NoError(t, err)
	}
	r := bytes.NewReader(wire)
	var buf []byte
	var m1, m2 pb.Message
	require.NoError(t, readFrame(r, &buf, &m1))
	require.NoError(t, readFrame(r, &buf, &m2))
	require.Equal(t, "one", string(m1.Entries[0].Data))
	require.Equal(t, "two", string(m2.Entries[0].Data))
}

func BenchmarkDecodeAppend(b *testing.B) {
	m := pb.Message{Type: pb.MsgApp, To: 2, From: 1, Term: 4, LogTerm: 4, Index: 10, Commit: 9}
	for i := range 8 {
		m.Entries = append(m.Entries, pb.Entry{Term: 4, Index: uint64(11 + i), Data: make([]byte, 32<<10)})
	}
	frame := marshal(b, m)
	b.SetBytes(int64(len(frame)))
	b.Run("generated", func(b *testing.B) {
		for range b.N {
			var out pb.Message
			if err := out.Unmarshal(frame); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("aliasing", func(b *testing.B) {
		for range b.N {
			var out pb.Message
			if _, err := decodeMessage(frame, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
