package replica

import pb "go.etcd.io/raft/v3/raftpb"

// Filter decides which messages between members are lost: a transport
// asks it about every message it sends or receives and drops those it is
// true for. Fault-injection tests cut or thin out a group's network with
// it.
type Filter func(m Message) bool

// Message is what a Filter sees of a message between members.
type Message struct {
	Type MessageType
	From uint64 // member ids
	To   uint64
	Term uint64
	// Index is the log index the message is about: for an append, the
	// entry before its first; for an answer to one, the last entry the
	// sender holds.
	Index   uint64
	Commit  uint64 // the sender's commit index
	Entries int    // how many log entries the message carries
}

// MessageType is the kind of a message between members.
type MessageType uint8

// The kinds of message members exchange; MsgOther is any kind a
// transport does not carry in normal operation.
const (
	MsgOther MessageType = iota
	MsgApp
	MsgAppResp
	MsgHeartbeat
	MsgHeartbeatResp
	MsgVote
	MsgVoteResp
	MsgPreVote
	MsgPreVoteResp
	MsgSnap
	MsgProp
	MsgTransferLeader
	MsgTimeoutNow
	MsgReadIndex
	MsgReadIndexResp
)

var messageTypeNames = [...]string{"MsgOther", "MsgApp", "MsgAppResp", "MsgHeartbeat", "MsgHeartbeatResp",
	"MsgVote", "MsgVoteResp", "MsgPreVote", "MsgPreVoteResp", "MsgSnap", "MsgProp", "MsgTransferLeader",
	"MsgTimeoutNow", "MsgReadIndex", "MsgReadIndexResp"}

func (t MessageType) String() string {
	if int(t) < len(messageTypeNames) {
		return messageTypeNames[t]
	}
	return "MsgOther"
}

// messageTypes maps raft's message types onto ours.
var messageTypes = map[pb.MessageType]MessageType{
	pb.MsgApp: MsgApp, pb.MsgAppResp: MsgAppResp, pb.MsgHeartbeat: MsgHeartbeat, pb.MsgHeartbeatResp: MsgHeartbeatResp,
	pb.MsgVote: MsgVote, pb.MsgVoteResp: MsgVoteResp, pb.MsgPreVote: MsgPreVote, pb.MsgPreVoteResp: MsgPreVoteResp,
	pb.MsgSnap: MsgSnap, pb.MsgProp: MsgProp, pb.MsgTransferLeader: MsgTransferLeader, pb.MsgTimeoutNow: MsgTimeoutNow,
	pb.MsgReadIndex: MsgReadIndex, pb.MsgReadIndexResp: MsgReadIndexResp,
}

// summary is what a Filter sees of m.
func summary(m *pb.Message) Message {
	return Message{Type: messageTypes[m.Type], From: m.From, To: m.To, Term: m.Term,
		Index: m.Index, Commit: m.Commit, Entries: len(m.Entries)}
}
