package meta

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/protocol"
)

// openMember loads the replicated tables of a member stored in dir, as a
// broker does at start, with nothing applied by the store yet.
func openMember(t *testing.T, dir string) *Tables {
	t.Helper()
	tables, err := Open(nil, dir)
	require.NoError(t, err)
	require.NoError(t, tables.Members.Load())
	require.NoError(t, tables.Applied.Load(0))
	return tables
}

// A member applies each replicated table change once: an entry delivered
// again after a restart is older than the tables on disk and is skipped,
// a leader's own entries only mark what it holds, and a snapshot's tables
// always go in.
func TestReplicatedTablesSkipWhatTheyHold(t *testing.T) {
	topics := func(names ...string) Entry {
		e := Entry{Topics: map[string]protocol.TopicConfig{}, Groups: map[string]protocol.SubscriptionGroupConfig{},
			Version: &Versions{Topics: protocol.DataVersion{Counter: int64(len(names))}}}
		for _, n := range names {
			e.Topics[n] = protocol.TopicConfig{TopicName: n, ReadQueueNums: 1, WriteQueueNums: 1}
		}
		return e
	}
	offset := func(off int64) Entry {
		return Entry{OffsetUpdates: map[string]map[int32]int64{"t@g": {0: off}}}
	}
	type step struct {
		restart    bool
		index      uint64 // 0: a snapshot
		own        bool
		entry      Entry
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
			{index: 0, entry: Entry{Topics: topics("Z").Topics, Version: topics("Z").Version, Offsets: map[string]map[int32]int64{"t@g": {0: 1}}},
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
					require.NoError(t, m.Offsets.Flush())
					m = openMember(t, dir)
				} else {
					_, err := m.Install(s.entry, s.index, s.own)
					require.NoError(t, err, "step %d", i)
				}
				names := m.Topics.Names()
				slices.Sort(names)
				require.Equal(t, s.wantTopics, names, "step %d: topics", i)
				off, ok := m.Offsets.Get("g", "t", 0)
				if !ok {
					off = -1
				}
				require.Equal(t, s.wantOffset, off, "step %d: offset", i)
			}
		})
	}
}
