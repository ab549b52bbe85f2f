package stack

import "qianlang.io/services/events"

// platformTopics are the topics qlstack creates once the cluster takes
// writes: every topic the services use, and each consumer group's retry
// topic. A retry topic the broker creates on a group's first failed
// delivery reaches the consumers' routes only at their next refresh, up
// to 30 s later, which would hold back every first redelivery by as much.
func platformTopics() []string {
	topics := append([]string(nil), events.Topics...)
	for _, g := range events.Groups {
		topics = append(topics, "%RETRY%"+g)
	}
	return topics
}
