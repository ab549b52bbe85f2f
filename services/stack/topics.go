package stack

import "qianlang.io/services/events"

// platformTopics are the topics qlstack creates once the cluster takes
// writes: every topic the services use.
func platformTopics() []string { return events.Topics }
