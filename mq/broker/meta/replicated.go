package meta

import (
	"errors"
	"fmt"
	"time"

	"qianlang.io/mq/protocol"
	"qianlang.io/mq/vfs"
)

// Tables are a broker's metadata.
type Tables struct {
	Topics  *Topics
	Groups  *Groups
	Offsets *Offsets
	Locks   *Locks
	// Members and Applied serve a Raft group's members, which load them
	// when they join.
	Members *Table[uint64, string]
	Applied *Applied
}

// Open returns the tables stored under root, with the topics, groups and
// offsets loaded.
func Open(fs vfs.FS, root string) (*Tables, error) {
	t := &Tables{
		Topics: NewTopics(fs, root), Groups: NewGroups(fs, root), Offsets: NewOffsets(fs, root),
		Locks: NewLocks(), Members: NewMembers(fs, root), Applied: NewApplied(fs, root),
	}
	for _, load := range []func() error{t.Topics.Load, t.Groups.Load, t.Offsets.Load} {
		if err := load(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Part names parts of the metadata a group's leader replicates.
type Part uint8

// The parts of the metadata.
const (
	TopicsAndGroups Part = 1 << iota
	ConsumerOffsets
	QueueLocks
)

func (p Part) String() string {
	switch p {
	case TopicsAndGroups:
		return "tables"
	case ConsumerOffsets:
		return "offsets"
	case QueueLocks:
		return "locks"
	}
	return fmt.Sprintf("part %d", uint8(p))
}

// Entry is a replicated metadata entry: whole tables, or the consumer
// offsets that changed, so applying the entries in log order is idempotent
// and a follower that becomes leader holds the last replicated state.
type Entry struct {
	Leader *Leader                                     `json:"leader,omitempty"`
	Topics map[string]protocol.TopicConfig             `json:"topics,omitempty"`
	Groups map[string]protocol.SubscriptionGroupConfig `json:"groups,omitempty"`
	// Offsets is the whole offset table; an empty one is sent as {} and
	// replaces the table, an absent one (null) leaves it.
	Offsets map[string]map[int32]int64 `json:"offsets"`
	// OffsetUpdates and OffsetRemovals are the offsets committed and the
	// "topic@group" keys deleted since the leader last replicated them;
	// removals apply first.
	OffsetUpdates  map[string]map[int32]int64 `json:"offsetUpdates,omitempty"`
	OffsetRemovals []string                   `json:"offsetRemovals,omitempty"`
	Version        *Versions                  `json:"version,omitempty"`
	Members        map[uint64]string          `json:"members,omitempty"`
	Locks          *[]LockRecord              `json:"locks,omitempty"`
}

// Versions are the versions of the replicated topic and group tables.
type Versions struct{ Topics, Groups protocol.DataVersion }

// Leader announces a group's new leader and its client address.
type Leader struct {
	ID   uint64 `json:"id"`
	Addr string `json:"addr"`
}

// TableEntry is an entry with the whole topic and group tables and their
// versions.
func (t *Tables) TableEntry() Entry {
	topics, tv := t.Topics.Snapshot()
	groups, gv := t.Groups.Snapshot()
	return Entry{Topics: topics, Groups: groups, Version: &Versions{tv, gv}}
}

// Snapshot is what a far-behind follower gets with a Raft snapshot: every
// replicated table and the members' addresses.
func (t *Tables) Snapshot() Entry {
	e := t.TableEntry()
	e.Offsets, _ = t.Offsets.Snapshot()
	e.Members, _ = t.Members.Snapshot()
	locks := t.Locks.Owners()
	e.Locks = &locks
	return e
}

// Install replaces this member's tables with a leader's entry, given the
// entry's index (0 for a snapshot's tables, installed whatever the member
// holds). A table skips entries at or below the index it last took (an
// entry delivered again after a restart is older than the table on disk);
// own marks a leader's own entry, whose tables it only notes as held. It
// reports whether the topic table was replaced: the NameServers route by
// it. Only the tables change: a deleted topic's queues stay, as on the
// leader, since queue offsets must stay a function of the log on every
// member.
func (t *Tables) Install(e Entry, index uint64, own bool) (topics bool, err error) {
	var errs []error
	for id, addr := range e.Members {
		_, err := t.Members.Put(id, addr)
		errs = append(errs, err)
	}
	if e.Topics != nil && e.Version != nil && (index == 0 || index > t.Applied.Index()) {
		if !own {
			errs = append(errs, t.Topics.Replace(e.Topics, e.Version.Topics), t.Groups.Replace(e.Groups, e.Version.Groups))
			topics = true
		}
		if index > 0 {
			errs = append(errs, t.Applied.Set(index))
		}
	}
	offsets := e.Offsets != nil || e.OffsetUpdates != nil || e.OffsetRemovals != nil
	if offsets && (index == 0 || index > t.Offsets.MetaAt()) {
		if !own {
			if e.Offsets != nil {
				t.Offsets.Replace(e.Offsets)
			}
			if e.OffsetUpdates != nil || e.OffsetRemovals != nil {
				t.Offsets.Apply(e.OffsetUpdates, e.OffsetRemovals)
			}
		}
		t.Offsets.SetMetaAt(index)
	}
	if e.Locks != nil && !own {
		t.Locks.Replace(*e.Locks, time.Now())
	}
	return topics, errors.Join(errs...)
}
