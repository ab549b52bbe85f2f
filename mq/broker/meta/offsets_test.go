package meta

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A follower that applies the leader's changes, round after round, holds
// the leader's table.
func TestOffsetChangesBringAFollowerToTheLeadersTable(t *testing.T) {
	type op struct {
		commit      bool
		group       string
		topic       string
		queue       int32
		off         int64
		deleteGroup string
		deleteTopic string
	}
	commit := func(g, tp string, q int32, off int64) op {
		return op{commit: true, group: g, topic: tp, queue: q, off: off}
	}
	tests := []struct {
		name   string
		rounds [][]op
	}{
		{"commits", [][]op{
			{commit("g1", "t1", 0, 5), commit("g1", "t1", 1, 7)},
			{commit("g1", "t1", 0, 9), commit("g2", "t1", 3, 1)},
			{}, // nothing changed
		}},
		{"same offset again is no change", [][]op{
			{commit("g1", "t1", 0, 5)},
			{commit("g1", "t1", 0, 5)},
		}},
		{"group deleted", [][]op{
			{commit("g1", "t1", 0, 5), commit("g1", "t2", 0, 5), commit("g2", "t1", 0, 3)},
			{{deleteGroup: "g1"}},
		}},
		{"topic deleted", [][]op{
			{commit("g1", "t1", 0, 5), commit("g2", "t1", 0, 5), commit("g2", "t2", 0, 3)},
			{{deleteTopic: "t1"}},
		}},
		{"committed then deleted in one round", [][]op{
			{commit("g1", "t1", 0, 5), commit("g1", "t1", 1, 6)},
			{commit("g1", "t1", 0, 8), {deleteGroup: "g1"}},
		}},
		{"deleted then committed again in one round", [][]op{
			{commit("g1", "t1", 0, 5), commit("g1", "t1", 1, 6)},
			{{deleteGroup: "g1"}, commit("g1", "t1", 1, 2)},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			leader := NewOffsets(nil, t.TempDir())
			follower := NewOffsets(nil, t.TempDir())
			for _, round := range tc.rounds {
				for _, o := range round {
					switch {
					case o.commit:
						leader.Commit(o.group, o.topic, o.queue, o.off)
					case o.deleteGroup != "":
						leader.DeleteGroup(o.deleteGroup)
					case o.deleteTopic != "":
						leader.DeleteTopic(o.deleteTopic)
					}
				}
				updates, removals, _ := leader.TakeChanges()
				follower.Apply(updates, removals)
				want, _ := leader.Snapshot()
				got, _ := follower.Snapshot()
				require.Equal(t, want, got)
			}
			updates, removals, _ := leader.TakeChanges()
			require.Empty(t, updates, "changes are forgotten once taken")
			require.Empty(t, removals)
		})
	}
}

func TestOffsetChangesCarryOnlyWhatChanged(t *testing.T) {
	o := NewOffsets(nil, t.TempDir())
	for q := range int32(100) {
		o.Commit("g", "t", q, 1)
	}
	_, _ = o.TakeAll()
	o.Commit("g", "t", 42, 2)
	updates, removals, _ := o.TakeChanges()
	require.Equal(t, map[string]map[int32]int64{"t@g": {42: 2}}, updates)
	require.Empty(t, removals)
}
