package broker

import (
	"fmt"
	"strings"
)

// System topic names.
const (
	DefaultTopic     = "TBW102"
	SelfTestTopic    = "SELF_TEST_TOPIC"
	OffsetMovedTopic = "OFFSET_MOVED_EVENT"
	ScheduleTopic    = "SCHEDULE_TOPIC_XXXX"
	TransHalfTopic   = "RMQ_SYS_TRANS_HALF_TOPIC"
	TransOpHalfTopic = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
	TransCheckMax    = "TRANS_CHECK_MAX_TIME_TOPIC"
	TraceTopic       = "RMQ_SYS_TRACE_TOPIC"
	TimerTopic       = "rmq_sys_wheel_timer"
	RetryGroupPrefix = "%RETRY%"
	DLQGroupPrefix   = "%DLQ%"
	maxTopicLen      = 127
	maxRetryTopicLen = 255
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
