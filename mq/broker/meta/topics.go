package meta

import (
	"slices"

	"qianlang.io/mq/protocol"
	"qianlang.io/mq/vfs"
)

// defaultFilterType is a topic's filter type unless it names one.
const defaultFilterType = "SINGLE_TAG"

// Topics is the broker's topic table, config/topics.json, keyed by name.
type Topics struct {
	*Table[string, protocol.TopicConfig]
}

// NewTopics returns the topic table stored under root.
func NewTopics(fs vfs.FS, root string) *Topics {
	l := Layout{File: "topics.json", Entries: "topicConfigTable", Version: "dataVersion"}
	return &Topics{NewTable[string](fs, root, l, sameTopic)}
}

// sameTopic reports whether b changes nothing that a tells clients.
func sameTopic(a, b protocol.TopicConfig) bool {
	return a.ReadQueueNums == b.ReadQueueNums && a.WriteQueueNums == b.WriteQueueNums && a.Perm == b.Perm &&
		a.TopicSysFlag == b.TopicSysFlag && a.Order == b.Order && a.TopicFilterType == b.TopicFilterType
}

// Put creates or replaces a topic, keyed by its name, with the default
// filter type unless it has one, and writes the table. It reports whether
// anything changed.
func (t *Topics) Put(tc protocol.TopicConfig) (bool, error) {
	if tc.TopicFilterType == "" {
		tc.TopicFilterType = defaultFilterType
	}
	if tc.Attributes == nil {
		tc.Attributes = map[string]string{}
	}
	return t.Table.Put(tc.TopicName, tc)
}

// Ensure creates the topic when it does not exist; it returns the
// topic's config and whether it created it.
func (t *Topics) Ensure(tc protocol.TopicConfig) (protocol.TopicConfig, bool, error) {
	if old, ok := t.Get(tc.TopicName); ok {
		return old, false, nil
	}
	changed, err := t.Put(tc)
	return tc, changed, err
}

// Names returns the topics, sorted.
func (t *Topics) Names() []string {
	var out []string
	t.View(func(topics map[string]protocol.TopicConfig) {
		out = make([]string, 0, len(topics))
		for k := range topics {
			out = append(out, k)
		}
	})
	slices.Sort(out)
	return out
}
