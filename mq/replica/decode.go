package replica

import (
	"fmt"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of raftpb.Message and raftpb.Entry that decodeMessage
// reads itself (raft.proto).
const (
	fieldMessageEntries = 7
	fieldEntryType      = 1
	fieldEntryTerm      = 2
	fieldEntryIndex     = 3
	fieldEntryData      = 4
)

// decodeMessage decodes a raft message from b, the wire encoding raft's
// generated code writes. The data of the message's entries alias b
// instead of being copied (aliased reports it): b then belongs to the
// message and must not be reused. Every other field is copied.
//
// The entries are the only bulk of a message that appends to a follower,
// and copying them out of the read buffer was the largest single cost of a
// follower's loop. A frame whose entries carry anything but the four
// fields of raftpb.Entry, or that does not parse, goes to the generated
// decoder whole, so the result (or the error) is always the one it gives.
func decodeMessage(b []byte, m *pb.Message) (aliased bool, err error) {
	*m = pb.Message{}
	if ents, rest, ok := splitEntries(b); ok {
		if err := m.Unmarshal(rest); err == nil {
			m.Entries = ents
			return true, nil
		}
		*m = pb.Message{}
	}
	if err := m.Unmarshal(b); err != nil {
		return false, fmt.Errorf("%w: %w", ErrFrame, err)
	}
	return false, nil
}

// splitEntries walks the fields of an encoded raftpb.Message: it decodes
// the entries, their data aliasing b, and returns the other fields'
// encodings, in their order. ok is false when b has no entries or when any
// field is one the generated decoder must judge.
func splitEntries(b []byte) (ents []pb.Entry, rest []byte, ok bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, nil, false
		}
		v := protowire.ConsumeFieldValue(num, typ, b[n:])
		if v < 0 {
			return nil, nil, false
		}
		if num != fieldMessageEntries {
			rest = append(rest, b[:n+v]...)
			b = b[n+v:]
			continue
		}
		if typ != protowire.BytesType {
			return nil, nil, false
		}
		body, _ := protowire.ConsumeBytes(b[n:])
		e, ok := decodeEntry(body)
		if !ok {
			return nil, nil, false
		}
		ents = append(ents, e)
		b = b[n+v:]
	}
	return ents, rest, len(ents) > 0
}

// decodeEntry decodes an encoded raftpb.Entry whose fields are all known;
// its data aliases b, with no room to append over what follows.
func decodeEntry(b []byte) (e pb.Entry, ok bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return e, false
		}
		b = b[n:]
		switch {
		case typ == protowire.VarintType && (num == fieldEntryType || num == fieldEntryTerm || num == fieldEntryIndex):
			x, k := protowire.ConsumeVarint(b)
			if k < 0 {
				return e, false
			}
			b = b[k:]
			switch num {
			case fieldEntryType:
				e.Type = pb.EntryType(int32(x)) // an int32 enum keeps the low 32 bits, as the generated code does
			case fieldEntryTerm:
				e.Term = x
			default:
				e.Index = x
			}
		case typ == protowire.BytesType && num == fieldEntryData:
			d, k := protowire.ConsumeBytes(b)
			if k < 0 {
				return e, false
			}
			e.Data = d[:len(d):len(d)]
			b = b[k:]
		default:
			return e, false
		}
	}
	return e, true
}
