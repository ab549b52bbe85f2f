// Package store is the broker's message store: one CommitLog shared by all
// topics, a ConsumeQueue per (topic, queue id) and an IndexFile by message
// key, all reached through the vfs seam.
//
// # Directory layout
//
//	<Dir>/FORMAT                              "qianlang-store 1"
//	<Dir>/lock                                flock held while open
//	<Dir>/checkpoint                          two 64-byte slots, see below
//	<CommitLogDir>/<20-digit start offset>    CommitLog segments (1 GiB)
//	<Dir>/consumequeue/<topic>/<id>/<20-digit start byte offset>
//	<Dir>/index/<yyyyMMddHHmmssSSS>           IndexFiles
//
// # CommitLog
//
// The CommitLog is a sequence of entries. An entry is the unit a producer's
// request becomes, and the unit a Raft group replicates: its header carries
// a term and an index, so the CommitLog can serve as the Raft log without a
// second write-ahead log. Entries never span segments; when an entry and an
// 8-byte marker no longer fit, a blank marker fills the rest of the segment
// and the entry starts the next one. Segments are preallocated, so zeros
// mark the end of written data.
//
//	| offset | size | field                                           |
//	|--------|------|-------------------------------------------------|
//	| 0      | 4    | size of the entry, header included              |
//	| 4      | 4    | magic 0x514C4531 ("QLE1")                       |
//	| 8      | 4    | CRC-32C of bytes [12, size)                     |
//	| 12     | 1    | type: 1 messages, 2 no-op, 3 config, 4 metadata, 5 config v2 |
//	| 13     | 3    | reserved, zero                                  |
//	| 16     | 8    | term                                            |
//	| 24     | 8    | index                                           |
//	| 32     | …    | payload                                         |
//
//	Blank marker: | 0 | 4 | bytes left in the segment | 4 | 4 | 0x514C4530 |
//
// The payload of a messages entry is one or more stored-message records
// (package message) back to back. A record's PHYSICALOFFSET is the global
// CommitLog offset of the record itself, inside its entry, so pulls return
// records straight from the log and offset message ids point at them.
//
// # ConsumeQueue
//
// One file per 300,000 entries (QueueFileEntries); entry n of the queue is
// at byte (n - fileBase) * 20 of the file named by fileBase * 20.
//
//	| offset | size | field                                   |
//	|--------|------|-----------------------------------------|
//	| 0      | 8    | physical offset of the record           |
//	| 8      | 4    | record size                             |
//	| 12     | 8    | tags code (Java hash of TAGS, or 0)     |
//
// An entry with size 0 is empty (files are sparse until written).
//
// # IndexFile
//
//	| offset             | size           | field                            |
//	|--------------------|----------------|----------------------------------|
//	| 0                  | 8              | store time of the first record   |
//	| 8                  | 8              | store time of the last record    |
//	| 16                 | 8              | physical offset of the first     |
//	| 24                 | 8              | physical offset of the last      |
//	| 32                 | 4              | hash slot count                  |
//	| 36                 | 4              | entry count                      |
//	| 40                 | 4 × slots      | slot: number of the newest entry |
//	| 40 + 4 × slots     | 20 × entries   | entries, numbered from 1         |
//
//	Entry: key hash (4), physical offset (8), seconds since the first
//	record (4), number of the previous entry in the slot's chain (4).
//
// Keys are "topic#key" for every KEYS word and the UNIQ_KEY, hashed as
// Java's Math.abs(String.hashCode()). The newest file keeps its slot table
// in memory and appends entries as they come; the header and slots are
// written when it fills up or the store closes. After a crash its slots are
// rebuilt by replaying its entries.
//
// # Checkpoint
//
//	| offset | size | field                                                  |
//	|--------|------|--------------------------------------------------------|
//	| 0      | 8    | sequence number                                        |
//	| 8      | 8    | CommitLog offset known fsynced                         |
//	| 16     | 8    | CommitLog offset whose records are in fsynced ConsumeQueues |
//	| 24     | 8    | time written (ms)                                      |
//	| 32     | 8    | index of the entry ending at the fsynced offset        |
//	| 40     | 8    | term of that entry                                     |
//	| 48     | 8    | index of the entry ending at the dispatched offset (applied) |
//	| 56     | 8    | log start: index of the entry before the first stored  |
//	| 64     | 8    | log start: its term                                    |
//	| 72     | 8    | log start: CommitLog offset where stored data begins   |
//	| 80     | 8    | Raft hard state: term                                  |
//	| 88     | 8    | Raft hard state: vote                                  |
//	| 96     | 8    | Raft hard state: commit index                          |
//	| 124    | 4    | CRC-32C of bytes [0, 124)                              |
//
// Two 128-byte copies alternate between offsets 0 and 512; the valid one
// with the higher sequence number wins. (The first format had 64-byte
// slots holding the first four fields, with the CRC at 60; it is still
// read.) The fields from 32 on serve the replicated mode: a new Raft term
// or vote is written and fsynced at once, the commit index goes out with
// the next periodic checkpoint.
//
// # Replicated mode
//
// With Options.Replicated the CommitLog is a Raft log (replicated.go):
// entries arrive through AppendEntries with their term and index, every
// member writes each at the same offset and assigns the same queue
// offsets, and only entries made visible by Commit reach the
// ConsumeQueues. A snapshot (snapshot.go) restarts a far-behind member's
// log at the leader's log start.
//
// # Threads
//
//   - the appender: takes queued puts, assigns offsets, writes entries;
//   - the sync flusher (SYNC_FLUSH): one fsync per batch of waiting puts;
//   - the dispatcher: reads confirmed entries and appends ConsumeQueue and
//     index entries, then wakes long polls (entries it reads from the tail
//     cache were sealed by this process and are not checksummed again;
//     entries read from the files are). Both gather their newest entries
//     in memory, readable there, and write them in runs;
//   - the periodic flusher: CommitLog (ASYNC_FLUSH; the tail page is first
//     filled with a no-op entry so later writes never wait on a page under
//     writeback), and once a second ConsumeQueues, index, checkpoint;
//   - the cleaner: disk usage and retention.
//
// # Locks
//
// Each mutex and what it guards:
//
//	Store.appendMu          the append position: lastIndex, term,
//	                        queueOffsets, topicNames, wbuf; held for a whole
//	                        append, truncation, roll-back, snapshot install
//	                        or topic deletion
//	Store.pmu               pending (queued Puts); Close closes closing
//	                        under it
//	Store.fmu               flushWait (SYNC_FLUSH puts awaiting an fsync)
//	Store.dmu               dispatchedIdx; dcond waits on it
//	Store.qmu               queues
//	positions.mu            the log start and where recent entries are
//	commitLog.flushMu       one fsync, write-back, reset or segment removal
//	                        at a time; evicted
//	commitLog.mu            segs
//	commitLog.prepMu        prep (the segment prepared ahead) and closed
//	tailCache.mu            the cached chunks
//	consumeQueue.pmu        the gathered entries (pending, pendFrom)
//	consumeQueue.mu         files
//	indexService.mu         files
//	indexFile.mu            one IndexFile's header fields and slots
//	checkpointFile.mu       last, hard; held across the checkpoint write
//
// They are taken in this order: a lock may be taken while one that leads
// to it is held, and no path goes the other way.
//
//	Store.appendMu
//	  → Store.qmu
//	  → consumeQueue.pmu → consumeQueue.mu
//	  → indexService.mu → indexFile.mu
//	  → commitLog.flushMu → commitLog.mu, commitLog.prepMu, tailCache.mu
//	  → positions.mu, Store.fmu, Store.dmu, checkpointFile.mu
//
// Every mutex other than appendMu is held only for its own data, with no
// other store lock taken inside, except along the arrows above;
// Store.pmu is never held with another. Three rules come with the order:
//
//   - The dispatcher never takes appendMu: holders of appendMu wait for it
//     (waitDispatched, on dcond) before they cut the log or recount queues.
//   - Put callbacks and OnCompletions can run with appendMu held (the
//     appender completes ASYNC_FLUSH puts as it writes them; a failed
//     write or fsync fails them under it), so they must not call anything
//     that takes appendMu; Put itself takes only pmu.
//   - The arrival listener runs on the dispatcher with no store lock held.
//
// # Recovery
//
// See (*Store).recover: scan the CommitLog from the checkpoint, cut a torn
// tail by checksum, drop ConsumeQueue entries past the end, replay the
// index, re-dispatch from the checkpoint.
package store
