package replica

import (
	"testing"

	"github.com/stretchr/testify/require"
	pb "go.etcd.io/raft/v3/raftpb"
)

func TestFilterSeesASummary(t *testing.T) {
	for _, tc := range []struct {
		raft pb.MessageType
		want MessageType
	}{
		{pb.MsgApp, MsgApp}, {pb.MsgAppResp, MsgAppResp}, {pb.MsgHeartbeat, MsgHeartbeat},
		{pb.MsgHeartbeatResp, MsgHeartbeatResp}, {pb.MsgVote, MsgVote}, {pb.MsgVoteResp, MsgVoteResp},
		{pb.MsgPreVote, MsgPreVote}, {pb.MsgPreVoteResp, MsgPreVoteResp}, {pb.MsgSnap, MsgSnap},
		{pb.MsgProp, MsgProp}, {pb.MsgTransferLeader, MsgTransferLeader}, {pb.MsgTimeoutNow, MsgTimeoutNow},
		{pb.MsgReadIndex, MsgReadIndex}, {pb.MsgReadIndexResp, MsgReadIndexResp},
		{pb.MsgHup, MsgOther}, {pb.MsgStorageAppend, MsgOther},
	} {
		m := pb.Message{Type: tc.raft, From: 1, To: 2, Term: 3, Index: 4, Commit: 5, Entries: make([]pb.Entry, 6)}
		require.Equal(t, Message{Type: tc.want, From: 1, To: 2, Term: 3, Index: 4, Commit: 5, Entries: 6}, summary(&m), tc.raft.String())
		if tc.want != MsgOther {
			require.Equal(t, tc.raft.String(), tc.want.String())
		}
	}
}

func TestTCPFilterDrops(t *testing.T) {
	tr := &TCP{peers: map[uint64]*peerConn{2: {id: 2, q: make(chan pb.Message, 4)}}}
	tr.SetFilter(func(m Message) bool { return m.Type == MsgAppResp && m.To == 2 })
	tr.Send([]pb.Message{{Type: pb.MsgAppResp, To: 2}, {Type: pb.MsgApp, To: 2}})
	require.Len(t, tr.peers[2].q, 1)
	require.Equal(t, pb.MsgApp, (<-tr.peers[2].q).Type)
	tr.SetFilter(nil)
	tr.Send([]pb.Message{{Type: pb.MsgAppResp, To: 2}})
	require.Len(t, tr.peers[2].q, 1, "nil removes the filter")
}
