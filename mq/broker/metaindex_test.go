package broker

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/protocol"
	"qianlang.io/mq/vfs"
)

// openMember loads the replicated tables of a member stored in dir, as a
// broker does at start, with nothing applied by the store yet.
func openMember(t *testing.T, dir string) *member {
	t.Helper()
	fs := vfs.Default
	b := &Broker{topics: newTopicTable(fs, dir), groups: newGroupTable(fs, dir), offsets: newOffsetTable(fs, dir),
		locks: newLockTable(), registerWake: make(chan struct{}, 1)}
	for _, load := range []func() error{b.topics.load, b.groups.load, b.offsets.load} {
		require.NoError(t, load())
	}
	m := &member{b: b, addrs: newMemberAddrs(fs, dir), tablesAt: newTablesAt(fs, dir)}
	require.NoError(t, m.tablesAt.load(0))
	return m
}

// A member applies each replicated table change once: an entry delivered
// again after a restart is older than the tables on disk and is skipped,
// a leader's own entries only mark what it holds, and a snapshot's tables
// always go in.
func TestReplicatedTablesSkipWhatTheyHold(t *testing.T) {
	topics := func(names ...string) metaEntry {
		e := metaEntry{Topics: map[string]protocol.TopicConfig{}, Groups: map[string]protocol.SubscriptionGroupConfig{},
			Version: &tableVersions{Topics: protocol.DataVersion{Counter: int64(len(names))}}}
		for _, n := range names {
			e.Topics[n] = protocol.TopicConfig{TopicName: n, ReadQueueNums: 1, WriteQueueNums: 1}
		}
		return e
	}
	offset := func(off int64) metaEntry {
		return metaEntry{OffsetUpdates: map[string]map[int32]int64{"t@g": {0: off}}}
	}
	type step struct {
		restart    bool
		index      uint64 // 0: a snapshot
		own        bool
		entry      metaEntry
		wantTopics []string
		wantOffset int64 // of t@g queue 0; -1: none
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"a restart delivers old entries again", []step{
			{index: 10, entry: topics("A"), wantTopics: []string{"A"}, wantOffset: -1},
			{index: 11, entry: offset(5), wantTopics: []string{"A"}, wantOffset: 5},
			{index: 12, entry: topics("A", "B"), wantTopics: []string{"A", "B"}, wantOffset: 5},
			{index: 13, entry: offset(9), wantTopics: []string{"A", "B"}, wantOffset: 9},
			{restart: true, wantTopics: []string{"A", "B"}, wantOffset: 9},
			{index: 10, entry: topics("A"), wantTopics: []string{"A", "B"}, wantOffset: 9},
			{index: 11, entry: offset(5), wantTopics: []string{"A", "B"}, wantOffset: 9},
			{index: 14, entry: topics("A", "B", "C"), wantTopics: []string{"A", "B", "C"}, wantOffset: 9},
			{index: 15, entry: offset(12), wantTopics: []string{"A", "B", "C"}, wantOffset: 12},
		}},
		{"a leader's own entries are older than its tables", []step{
			{index: 10, entry: topics("A", "B"), wantTopics: []string{"A", "B"}, wantOffset: -1},
			{index: 11, own: true, entry: topics("A"), wantTopics: []string{"A", "B"}, wantOffset: -1},
			{index: 12, own: true, entry: offset(3), wantTopics: []string{"A", "B"}, wantOffset: -1},
			{restart: true, wantTopics: []string{"A", "B"}, wantOffset: -1},
			{index: 11, entry: topics("A"), wantTopics: []string{"A", "B"}, wantOffset: -1},
			{index: 12, entry: offset(3), wantTopics: []string{"A", "B"}, wantOffset: -1},
			{index: 13, entry: topics("A", "C"), wantTopics: []string{"A", "C"}, wantOffset: -1},
		}},
		{"a snapshot replaces whatever is held", []step{
			{index: 20, entry: topics("A", "B"), wantTopics: []string{"A", "B"}, wantOffset: -1},
			{index: 0, entry: metaEntry{Topics: topics("Z").Topics, Version: topics("Z").Version, Offsets: map[string]map[int32]int64{"t@g": {0: 1}}},
				wantTopics: []string{"Z"}, wantOffset: 1},
			{index: 21, entry: topics("Z", "Y"), wantTopics: []string{"Y", "Z"}, wantOffset: 1},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			m := openMember(t, dir)
			for i, s := range tc.steps {
				if s.restart {
					require.NoError(t, m.b.offsets.persist())
					m = openMember(t, dir)
				} else {
					require.NoError(t, m.installTables(s.entry, s.index, s.own), "step %d", i)
				}
				names := m.b.topics.names()
				slices.Sort(names)
				require.Equal(t, s.wantTopics, names, "step %d: topics", i)
				off, ok := m.b.offsets.get("g", "t", 0)
				if !ok {
					off = -1
				}
				require.Equal(t, s.wantOffset, off, "step %d: offset", i)
			}
		})
	}
}
