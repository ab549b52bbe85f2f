// Package replica makes a broker group's CommitLog a Raft log, in the
// part DLedger plays for RocketMQ. Each member of a group runs a Node: it
// drives etcd raft's RawNode, writes the entries raft hands it straight
// into the member's store (package store, replicated mode), carries
// raft's messages to the other members over TCP, and makes committed
// entries readable. The CommitLog is the Raft log, so nothing is written
// twice, and every member holds the same bytes at the same offsets
// (CheckLogs compares them).
//
// # The Ready loop
//
// One goroutine, the driver (Node.run), owns the RawNode. Each turn it
// takes one event:
//
//   - a tick (TickInterval): RawNode.Tick; then fail the puts older than
//     PutTimeout; once every ElectionTicks ticks the preferred member asks
//     for leadership;
//   - messages from peers: Step each, up to 257 in one turn;
//   - a peer reported unreachable: ReportUnreachable;
//   - a control function (Campaign, TransferLeadership): run it;
//   - a wake-up for new puts: propose them;
//   - Close: fail every put still waiting, and return.
//
// Then, while raft has a Ready, handleReady processes it in this order:
//
//  1. SoftState: follow the role and the leader. A member that stops
//     leading fails its proposals in flight (ErrLeadershipLost) and the
//     puts still waiting (ErrNotLeader).
//  2. A leader sends Messages now, before it writes: it counts its own
//     copy only once written (Raft thesis §10.2.1).
//  3. Snapshot: install it; the log restarts at the leader's log start.
//  4. Entries: write them to the CommitLog (store.AppendEntries), which
//     sets each record's queue and physical offset; keep them in the
//     entry ring that raft reads recent entries back from.
//  5. HardState: record it; a new term or vote is fsynced at once.
//  6. With SyncFlush, fsync the CommitLog when raft says MustSync.
//  7. A follower sends Messages now, after its write: its
//     acknowledgements promise only what it holds.
//  8. CommittedEntries: apply configuration changes, hand metadata
//     entries to OnMeta, Commit the last index in the store (its
//     dispatcher then makes the records readable), and complete the puts
//     of this member's proposals they carry, then call OnCompletions.
//  9. Advance, then publish the status; OnStatus hears of changes of
//     role, term, leader and Settled.
//
// After the Readys, puts that gathered while the leader's pipeline was
// full (MaxPipeline proposals uncommitted) are proposed if it has room
// now, and the loop goes round again.
//
// # Goroutines
//
//	driver (Node.run)          the RawNode and every raft call; logStorage
//	                           and its entryRing; inflight, role, lead,
//	                           lastTerm; the store's log writes. It calls
//	                           OnMeta, SnapshotData, RestoreData, the put
//	                           callbacks and OnCompletions.
//	notifier (notifyLoop)      calls OnStatus with the newest status
//	Put and ProposeMeta        any goroutine: queue the put in pending and
//	                           wake the driver
//	TCP writer, one per peer   its connection and frame buffer: dials,
//	                           writes batches of frames
//	TCP acceptor               the listener
//	TCP reader, one per        its connection and read buffer: decodes
//	inbound connection         frames and hands each message to the
//	                           driver, blocking (which pushes back on the
//	                           peer)
//
// Status is readable from any goroutine (an atomic pointer).
//
// Locks: Node.pmu guards the waiting puts (pending, pendingBytes,
// pendingSince); TCP.mu guards the inbound connections and closed. Each
// is held only for its own fields: never with the other, never while a
// callback, the store or the transport is called. The store's own locks
// (package store) are taken only inside its calls.
//
// # Transport frame
//
// Each member dials every other member and writes its messages on that
// connection; it reads what the others send on the connections they
// dialled. There is no handshake: a reader drops a message addressed to
// another member. Frames follow one another, batched into writes of up
// to about 256 KiB:
//
//	| offset | size | field                                            |
//	|--------|------|--------------------------------------------------|
//	| 0      | 4    | n: size of the message, big-endian, ≤ 64 MiB     |
//	| 4      | n    | raftpb.Message in protobuf encoding              |
//
// raft's generated code writes a message's fields in this order, each a
// tag byte and a value (a varint, or a varint length and that many
// bytes):
//
//	| tag  | field      | value                                       |
//	|------|------------|---------------------------------------------|
//	| 0x08 | type       | varint raftpb.MessageType                   |
//	| 0x10 | to         | varint member id                            |
//	| 0x18 | from       | varint member id                            |
//	| 0x20 | term       | varint                                      |
//	| 0x28 | logTerm    | varint                                      |
//	| 0x30 | index      | varint                                      |
//	| 0x3a | entries    | length, raftpb.Entry; once per entry        |
//	| 0x40 | commit     | varint                                      |
//	| 0x4a | snapshot   | length, raftpb.Snapshot; only when set      |
//	| 0x50 | reject     | 0 or 1                                      |
//	| 0x58 | rejectHint | varint                                      |
//	| 0x62 | context    | length, bytes; only when set                |
//	| 0x68 | vote       | varint                                      |
//	| 0x72 | responses  | length, raftpb.Message; once per response   |
//
// An entry:
//
//	| tag  | field | value                                             |
//	|------|-------|---------------------------------------------------|
//	| 0x08 | Type  | varint: 0 normal, 1 conf change, 2 conf change v2 |
//	| 0x10 | Term  | varint                                            |
//	| 0x18 | Index | varint                                            |
//	| 0x22 | Data  | length, bytes; absent when Data is nil            |
//
// decodeMessage decodes the entries itself, their Data aliasing the
// frame's buffer instead of being copied; the other fields, and any frame
// it does not fully understand, go to the generated decoder.
//
// # Entry data
//
// The Data of a normal entry is the type and payload of the CommitLog
// entry it becomes (dataOffType, dataOffPayload):
//
//	| offset | size | field                                       |
//	|--------|------|---------------------------------------------|
//	| 0      | 1    | store entry type: 1 messages, 4 metadata    |
//	| 1      | …    | payload                                     |
//
// Empty Data is a no-op (store type 2), as a new leader's first entry. A
// configuration change (entry Type 1 or 2) keeps raft's encoding in Data
// and is stored whole as the payload of store type 3 or 5. Entry Term and
// Index become the term and index of the CommitLog entry header
// (store/doc.go).
//
// A messages payload is one or more stored-message records back to back
// (message.AppendRecord), encoded once by the leader with its store time;
// each member's store sets every record's QUEUEOFFSET and PHYSICALOFFSET
// as it writes the entry, and since members write the same entries in the
// same order at the same offsets, they set the same values. A metadata
// payload belongs to the application (the broker's tables, in JSON); each
// member hands it to OnMeta once the entry commits.
//
// # A send, from request to answer
//
// A send that reaches a follower broker is forwarded to the leader's;
// on the leader:
//
//	client   broker            driver (leader)         store        follower
//	  |  SEND  |                     |                    |              |
//	  |------->| Node.Put            |                    |              |
//	  |        |-- pending, wake --->|                    |              |
//	  |        |                     | propose: pack the  |              |
//	  |        |                     | puts into entries, |              |
//	  |        |                     | Step(MsgProp)      |              |
//	  |        |                     |---- MsgApp (entries) ------------>|
//	  |        |                     |-- AppendEntries -->|              | its driver:
//	  |        |                     |   (offsets set)    |              | AppendEntries,
//	  |        |                     |                    |              | [SyncLog]
//	  |        |                     |<--------------------- MsgAppResp -|
//	  |        |                     | a majority holds   |              |
//	  |        |                     | it: committed      |              |
//	  |        |                     |-- Commit(index) -->| dispatcher:  |
//	  |        |                     |                    | queues,      |
//	  |        |<- done(nil) --------|                    | long polls   |
//	  |        |   answer queued     |                    |              |
//	  |        |<- OnCompletions ----|                    |              |
//	  |<-------| (writers kicked)    |                    |              |
//	  |        |                     |---- MsgApp (commit index) ------->|
//	  |        |                     |                    |              | Commit
//
// The answer can leave before the dispatcher has run: readers see the
// messages a moment later. If the leader loses leadership before the
// entry commits, the put fails with ErrLeadershipLost (the new leader may
// still commit it); if it is not committed within PutTimeout, with
// ErrCommitTimeout.
package replica
