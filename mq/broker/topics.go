package broker

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"qianlang.io/mq/protocol"
	"qianlang.io/mq/vfs"
)

// System topic names.
const (
	DefaultTopic      = "TBW102"
	SelfTestTopic     = "SELF_TEST_TOPIC"
	OffsetMovedTopic  = "OFFSET_MOVED_EVENT"
	ScheduleTopic     = "SCHEDULE_TOPIC_XXXX"
	TransHalfTopic    = "RMQ_SYS_TRANS_HALF_TOPIC"
	TransOpHalfTopic  = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
	TransCheckMax     = "TRANS_CHECK_MAX_TIME_TOPIC"
	TraceTopic        = "RMQ_SYS_TRACE_TOPIC"
	TimerTopic        = "rmq_sys_wheel_timer"
	RetryGroupPrefix  = "%RETRY%"
	DLQGroupPrefix    = "%DLQ%"
	maxTopicLen       = 127
	maxRetryTopicLen  = 255
	defaultFilterType = "SINGLE_TAG"
)

// forbiddenSendTopics may not be sent to by producers.
var forbiddenSendTopics = map[string]bool{
	ScheduleTopic: true, TransHalfTopic: true, TransOpHalfTopic: true, TransCheckMax: true,
	SelfTestTopic: true, OffsetMovedTopic: true, TimerTopic: true,
}

// RetryTopic is the retry topic of a consumer group.
func RetryTopic(group string) string { return RetryGroupPrefix + group }

// DLQTopic is the dead-letter topic of a consumer group.
func DLQTopic(group string) string { return DLQGroupPrefix + group }

// ValidateTopic checks a topic name's characters and length.
func ValidateTopic(topic string) error {
	limit := maxTopicLen
	if strings.HasPrefix(topic, RetryGroupPrefix) || strings.HasPrefix(topic, DLQGroupPrefix) {
		limit = maxRetryTopicLen
	}
	switch {
	case topic == "":
		return fmt.Errorf("the topic name is empty")
	case len(topic) > limit:
		return fmt.Errorf("the topic %q is longer than %d characters", topic, limit)
	case !validName(topic):
		return fmt.Errorf("the topic %q contains characters other than letters, digits, %%, |, - and _", topic)
	}
	return nil
}

// validName reports whether s only holds letters, digits, %, |, - and _.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '%' || c == '|' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// topicTable is the broker's topics, persisted in config/topics.json in
// Java's layout.
type topicTable struct {
	fs   vfs.FS
	path string

	mu      sync.RWMutex
	topics  map[string]protocol.TopicConfig
	version protocol.DataVersion
}

type topicsFile struct {
	TopicConfigTable map[string]protocol.TopicConfig `json:"topicConfigTable"`
	DataVersion      protocol.DataVersion            `json:"dataVersion"`
}

func newTopicTable(fs vfs.FS, root string) *topicTable {
	return &topicTable{fs: fs, path: filepath.Join(root, "config", "topics.json"), topics: make(map[string]protocol.TopicConfig)}
}

func (t *topicTable) load() error {
	var f topicsFile
	if _, err := readJSONFile(t.fs, t.path, &f); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, v := range f.TopicConfigTable {
		t.topics[k] = v
	}
	t.version = f.DataVersion
	return nil
}

func (t *topicTable) persistLocked() error {
	return writeJSONFile(t.fs, t.path, topicsFile{TopicConfigTable: t.topics, DataVersion: t.version})
}

func (t *topicTable) get(topic string) (protocol.TopicConfig, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	tc, ok := t.topics[topic]
	return tc, ok
}

// put creates or replaces a topic and persists the table. It reports
// whether anything changed.
func (t *topicTable) put(tc protocol.TopicConfig) (bool, error) {
	if tc.TopicFilterType == "" {
		tc.TopicFilterType = defaultFilterType
	}
	if tc.Attributes == nil {
		tc.Attributes = map[string]string{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.topics[tc.TopicName]; ok && sameTopic(old, tc) {
		return false, nil
	}
	t.topics[tc.TopicName] = tc
	t.bumpLocked()
	return true, t.persistLocked()
}

func sameTopic(a, b protocol.TopicConfig) bool {
	return a.ReadQueueNums == b.ReadQueueNums && a.WriteQueueNums == b.WriteQueueNums && a.Perm == b.Perm &&
		a.TopicSysFlag == b.TopicSysFlag && a.Order == b.Order && a.TopicFilterType == b.TopicFilterType
}

// ensure creates the topic when it does not exist.
func (t *topicTable) ensure(tc protocol.TopicConfig) (protocol.TopicConfig, bool, error) {
	if old, ok := t.get(tc.TopicName); ok {
		return old, false, nil
	}
	changed, err := t.put(tc)
	return tc, changed, err
}

func (t *topicTable) delete(topic string) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.topics[topic]; !ok {
		return false, nil
	}
	delete(t.topics, topic)
	t.bumpLocked()
	return true, t.persistLocked()
}

func (t *topicTable) bumpLocked() {
	t.version.Counter++
	t.version.Timestamp = time.Now().UnixMilli()
}

// snapshot returns a copy of the table and its version.
func (t *topicTable) snapshot() (map[string]protocol.TopicConfig, protocol.DataVersion) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[string]protocol.TopicConfig, len(t.topics))
	for k, v := range t.topics {
		out[k] = v
	}
	return out, t.version
}

func (t *topicTable) names() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]string, 0, len(t.topics))
	for k := range t.topics {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
