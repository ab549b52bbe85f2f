package meta

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/protocol"
)

// The files are written as json.MarshalIndent writes the structs they
// were first written with (and Java's brokers read), byte for byte.
func TestTablesWriteTheirFilesAsBefore(t *testing.T) {
	dv := protocol.DataVersion{Timestamp: 1700000000000, Counter: 3}
	topic := protocol.TopicConfig{TopicName: "T<&>", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6, TopicFilterType: "SINGLE_TAG", Attributes: map[string]string{}}
	group := protocol.DefaultSubscriptionGroup("G")
	type topicsFile struct {
		TopicConfigTable map[string]protocol.TopicConfig `json:"topicConfigTable"`
		DataVersion      protocol.DataVersion            `json:"dataVersion"`
	}
	type offsetsFile struct {
		OffsetTable map[string]map[int32]int64 `json:"offsetTable"`
		MetaIndex   uint64                     `json:"metaIndex,omitempty"`
	}
	type membersFile struct {
		Members map[uint64]string `json:"members"`
	}
	offsets := map[string]map[int32]int64{"T@G": {0: 5, 1: 7}, "U@G": {3: 1}}
	for _, tc := range []struct {
		name  string
		write func(dir string) error
		file  string
		want  any
	}{
		{"topics", func(dir string) error {
			return NewTopics(nil, dir).Replace(map[string]protocol.TopicConfig{topic.TopicName: topic}, dv)
		}, "topics.json", topicsFile{map[string]protocol.TopicConfig{topic.TopicName: topic}, dv}},
		{"empty topics", func(dir string) error {
			return NewTopics(nil, dir).Replace(nil, protocol.DataVersion{})
		}, "topics.json", topicsFile{map[string]protocol.TopicConfig{}, protocol.DataVersion{}}},
		{"groups", func(dir string) error {
			return NewGroups(nil, dir).Replace(map[string]protocol.SubscriptionGroupConfig{"G": group}, dv)
		}, "subscriptionGroup.json", protocol.SubscriptionGroupWrapper{SubscriptionGroupTable: map[string]protocol.SubscriptionGroupConfig{"G": group}, DataVersion: dv}},
		{"offsets", func(dir string) error {
			o := NewOffsets(nil, dir)
			o.Replace(offsets)
			return o.Flush()
		}, "consumerOffset.json", offsetsFile{OffsetTable: offsets}},
		{"offsets with their replicated index", func(dir string) error {
			o := NewOffsets(nil, dir)
			o.Replace(offsets)
			o.SetMetaAt(42)
			return o.Flush()
		}, "consumerOffset.json", offsetsFile{OffsetTable: offsets, MetaIndex: 42}},
		{"members", func(dir string) error {
			m := NewMembers(nil, dir)
			if _, err := m.Put(2, "127.0.0.1:10911"); err != nil {
				return err
			}
			_, err := m.Put(10, "127.0.0.1:10912")
			return err
		}, "groupMembers.json", membersFile{map[uint64]string{2: "127.0.0.1:10911", 10: "127.0.0.1:10912"}}},
		{"applied index", func(dir string) error {
			return NewApplied(nil, dir).Set(9)
		}, "metaApplied.json", struct {
			Index uint64 `json:"index"`
		}{9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, tc.write(dir))
			got, err := os.ReadFile(filepath.Join(dir, "config", tc.file))
			require.NoError(t, err)
			want, err := json.MarshalIndent(tc.want, "", "  ")
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))
		})
	}
}

// A store written by Java's broker (other members, other order, keys
// in other case) loads.
func TestTablesLoadJavaFiles(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"topics.json": `{"dataVersion":{"counter":7,"stateVersion":0,"timestamp":1},"topicConfigTable":{
			"T":{"order":false,"perm":6,"readQueueNums":8,"topicFilterType":"SINGLE_TAG","topicName":"T","topicSysFlag":0,"writeQueueNums":8}}}`,
		"subscriptionGroup.json": `{"forbiddenTable":{},"SubscriptionGroupTable":{"G":{"groupName":"G","consumeEnable":true,"retryMaxTimes":16}},"dataVersion":{"counter":2}}`,
		"consumerOffset.json":    `{"offsetTable":{"T@G":{"0":12,"1":3}},"dataVersion":{"counter":1}}`,
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "config"), 0o755))
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "config", name), []byte(body), 0o644))
	}
	tables, err := Open(nil, dir)
	require.NoError(t, err)
	tc, ok := tables.Topics.Get("T")
	require.True(t, ok)
	require.Equal(t, 8, tc.WriteQueueNums)
	_, v := tables.Topics.Snapshot()
	require.EqualValues(t, 7, v.Counter)
	g, ok := tables.Groups.Get("G")
	require.True(t, ok)
	require.Equal(t, 16, g.RetryMaxTimes)
	off, ok := tables.Offsets.Get("G", "T", 0)
	require.True(t, ok)
	require.EqualValues(t, 12, off)
	require.Zero(t, tables.Offsets.MetaAt())

	require.NoError(t, os.WriteFile(filepath.Join(dir, "config", "topics.json"), []byte(`{"topicConfigTable":[`), 0o644))
	_, err = Open(nil, dir)
	require.ErrorContains(t, err, "topics.json is damaged")
}

func TestTableWritesOnlyChanges(t *testing.T) {
	dir := t.TempDir()
	topics := NewTopics(nil, dir)
	tc := protocol.TopicConfig{TopicName: "T", ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6}
	changed, err := topics.Put(tc)
	require.NoError(t, err)
	require.True(t, changed)
	_, v1 := topics.Snapshot()
	changed, err = topics.Put(tc)
	require.NoError(t, err)
	require.False(t, changed, "the same topic again changes nothing")
	_, v2 := topics.Snapshot()
	require.Equal(t, v1, v2)
	got, ok := topics.Get("T")
	require.True(t, ok)
	require.Equal(t, "SINGLE_TAG", got.TopicFilterType)

	deleted, err := topics.Delete("missing")
	require.NoError(t, err)
	require.False(t, deleted)
	deleted, err = topics.Delete("T")
	require.NoError(t, err)
	require.True(t, deleted)
	_, v3 := topics.Snapshot()
	require.Greater(t, v3.Counter, v2.Counter)

	reloaded := NewTopics(nil, dir)
	require.NoError(t, reloaded.Load())
	require.Empty(t, reloaded.Names())
	_, v4 := reloaded.Snapshot()
	require.Equal(t, v3, v4)
}

func TestOffsetsFlushOnlyWhenChanged(t *testing.T) {
	dir := t.TempDir()
	o := NewOffsets(nil, dir)
	path := filepath.Join(dir, "config", "consumerOffset.json")
	require.NoError(t, o.Flush())
	require.NoFileExists(t, path, "nothing changed, nothing written")
	o.Commit("G", "T", 0, 5)
	require.NoError(t, o.Flush())
	require.FileExists(t, path)
	require.NoError(t, os.Remove(path))
	require.NoError(t, o.Flush())
	require.NoFileExists(t, path, "written already")
	o.Commit("G", "T", 0, 5)
	require.NoError(t, o.Flush())
	require.NoFileExists(t, path, "the same offset is no change")

	o.Commit("G", "T", 1, 9)
	require.NoError(t, o.Flush())
	reloaded := NewOffsets(nil, dir)
	require.NoError(t, reloaded.Load())
	want, _ := o.Snapshot()
	got, _ := reloaded.Snapshot()
	require.Equal(t, want, got)
	require.Equal(t, []string{"G"}, reloaded.GroupsOf("T"))
	require.Equal(t, []string{"T"}, reloaded.TopicsOf("G"))
}
