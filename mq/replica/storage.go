package replica

import (
	"encoding/json"
	"errors"
	"fmt"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"qianlang.io/mq/store"
)

// logStorage is raft's view of the store's CommitLog: the log raft reads
// back when it sends entries to a follower that is behind, and the state it
// restarts from. Writes do not go through it; the driver hands Ready
// entries to the store directly.
type logStorage struct {
	st     *store.Store
	voters []uint64
	ring   entryRing // driver goroutine only, as every raft call
	// appData returns the application metadata a snapshot carries.
	appData func() []byte
}

var _ raft.Storage = (*logStorage)(nil)

func (l *logStorage) InitialState() (pb.HardState, pb.ConfState, error) {
	hs := l.st.HardState()
	// A commit index past the log can come back after a crash lost an
	// unflushed tail (ASYNC_FLUSH): raft learns it again from the leader.
	commit := min(hs.Commit, l.st.LastIndex())
	return pb.HardState{Term: hs.Term, Vote: hs.Vote, Commit: commit}, pb.ConfState{Voters: l.voters}, nil
}

func (l *logStorage) Entries(lo, hi, maxSize uint64) ([]pb.Entry, error) {
	if ents, ok := l.ring.get(lo, hi, maxSize); ok {
		return ents, nil
	}
	var out []pb.Entry
	err := l.st.Entries(lo, hi, maxSize, func(e store.LogEntry) error {
		out = append(out, toRaft(e))
		return nil
	})
	return out, raftError(err)
}

func (l *logStorage) Term(i uint64) (uint64, error) {
	if i == 0 {
		return 0, nil
	}
	t, err := l.st.Term(i)
	return t, raftError(err)
}

func (l *logStorage) LastIndex() (uint64, error) { return l.st.LastIndex(), nil }

func (l *logStorage) FirstIndex() (uint64, error) { return l.st.FirstIndex(), nil }

// Snapshot describes the compacted prefix of the log, for a follower that
// needs entries retention removed: the log start, each queue's next offset
// there, and the application's metadata (appData).
func (l *logStorage) Snapshot() (pb.Snapshot, error) {
	start := l.st.LogStart()
	meta := pb.SnapshotMetadata{Index: start.Index, Term: start.Term, ConfState: pb.ConfState{Voters: l.voters}}
	if start.Index == 0 {
		return pb.Snapshot{Metadata: meta}, nil
	}
	ls, err := l.st.Snapshot()
	if err != nil {
		return pb.Snapshot{}, fmt.Errorf("replica: snapshot: %w", err)
	}
	sd := snapshotData{Log: ls}
	if l.appData != nil {
		sd.App = l.appData()
	}
	data, err := json.Marshal(sd)
	if err != nil {
		return pb.Snapshot{}, fmt.Errorf("replica: snapshot: %w", err)
	}
	return pb.Snapshot{Data: data, Metadata: meta}, nil
}

// snapshotData is the data of a snapshot.
type snapshotData struct {
	Log store.LogSnapshot `json:"log"`
	App json.RawMessage   `json:"app,omitempty"`
}

// raftError maps store errors to the sentinels raft compares against.
func raftError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrCompacted):
		return raft.ErrCompacted
	case errors.Is(err, store.ErrUnavailable):
		return raft.ErrUnavailable
	}
	return fmt.Errorf("replica: read log: %w", err)
}

// Entry data: an empty normal entry is a no-op (a new leader's first
// entry); otherwise the first byte of a normal entry's data is the store
// entry type and the rest its payload. Configuration changes keep raft's
// encoding and get store types of their own. See doc.go.

// Offsets in a normal entry's data.
const (
	dataOffType    = 0 // store.EntryType
	dataOffPayload = 1 // the payload, to the end
)

func toRaft(e store.LogEntry) pb.Entry {
	re := pb.Entry{Term: e.Term, Index: e.Index, Type: pb.EntryNormal}
	switch e.Type {
	case store.EntryNoop:
	case store.EntryConfig:
		re.Type = pb.EntryConfChange
		re.Data = append([]byte(nil), e.Payload...)
	case store.EntryConfigV2:
		re.Type = pb.EntryConfChangeV2
		re.Data = append([]byte(nil), e.Payload...)
	default:
		re.Data = make([]byte, dataOffPayload+len(e.Payload))
		re.Data[dataOffType] = byte(e.Type)
		copy(re.Data[dataOffPayload:], e.Payload)
	}
	return re
}

func fromRaft(e *pb.Entry) (store.LogEntry, error) {
	se := store.LogEntry{Term: e.Term, Index: e.Index}
	switch {
	case e.Type == pb.EntryConfChange:
		se.Type, se.Payload = store.EntryConfig, e.Data
	case e.Type == pb.EntryConfChangeV2:
		se.Type, se.Payload = store.EntryConfigV2, e.Data
	case len(e.Data) == 0:
		se.Type = store.EntryNoop
	default:
		se.Type, se.Payload = store.EntryType(e.Data[dataOffType]), e.Data[dataOffPayload:]
		if se.Type != store.EntryMessages && se.Type != store.EntryMeta {
			return se, fmt.Errorf("replica: entry %d has unknown type %d", e.Index, se.Type)
		}
	}
	return se, nil
}
