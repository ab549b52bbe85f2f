package broker

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"syscall"
	"time"

	"qianlang.io/mq/broker/meta"
	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
)

// allTopics serves GET_ALL_TOPIC_CONFIG.
func (b *Broker) allTopics(req *remoting.Command) *remoting.Command {
	topics, version := b.topics.Snapshot()
	return withBody(req, protocol.TopicConfigWrapper{TopicConfigTable: topics, DataVersion: version})
}

// topicConfig serves GET_TOPIC_CONFIG.
func (b *Broker) topicConfig(req *remoting.Command) *remoting.Command {
	tc, ok := b.topics.Get(req.ExtFields.Str("topic"))
	if !ok {
		return req.Errorf(remoting.TopicNotExist, "No topic in this broker. topic: %s", req.ExtFields.Str("topic"))
	}
	return withBody(req, tc)
}

// allGroups serves GET_ALL_SUBSCRIPTIONGROUP_CONFIG.
func (b *Broker) allGroups(req *remoting.Command) *remoting.Command {
	return withBody(req, b.groups.Wrapper())
}

// putGroup serves UPDATE_AND_CREATE_SUBSCRIPTIONGROUP.
func (b *Broker) putGroup(req *remoting.Command) *remoting.Command {
	var g protocol.SubscriptionGroupConfig
	if err := protocol.Decode(req.Body, "subscription group", &g); err != nil || g.GroupName == "" {
		return req.Errorf(remoting.InvalidParameter, "bad subscription group config: %v", err)
	}
	if err := b.groups.Put(g); err != nil {
		return req.Errorf(remoting.SystemError, "%v", err)
	}
	if resp := b.replicateOrFail(req); resp != nil {
		return resp
	}
	return req.Response(remoting.Success, "")
}

// deleteGroup serves DELETE_SUBSCRIPTIONGROUP, and drops the group's
// offsets with removeOffset.
func (b *Broker) deleteGroup(req *remoting.Command) *remoting.Command {
	name := req.ExtFields.Str("groupName")
	if _, err := b.groups.Delete(name); err != nil {
		return req.Errorf(remoting.SystemError, "%v", err)
	}
	if req.ExtFields.Bool("removeOffset", false) {
		b.offsets.DeleteGroup(name)
	}
	if resp := b.replicateOrFail(req); resp != nil {
		return resp
	}
	return req.Response(remoting.Success, "")
}

// consumerConnections serves GET_CONSUMER_CONNECTION_LIST.
func (b *Broker) consumerConnections(req *remoting.Command) *remoting.Command {
	cc, ok := b.clients.connection(req.ExtFields.Str("consumerGroup"))
	if !ok {
		return req.Errorf(remoting.ConsumerNotOnline, "the consumer group[%s] not online", req.ExtFields.Str("consumerGroup"))
	}
	return withBody(req, cc)
}

// consumedBy serves QUERY_TOPIC_CONSUME_BY_WHO: the groups with offsets on
// the topic or online subscribers of it.
func (b *Broker) consumedBy(req *remoting.Command) *remoting.Command {
	topic := req.ExtFields.Str("topic")
	set := map[string]bool{}
	for _, g := range append(b.offsets.GroupsOf(topic), b.clients.groupsSubscribedTo(topic)...) {
		set[g] = true
	}
	list := make([]string, 0, len(set))
	for g := range set {
		list = append(list, g)
	}
	sort.Strings(list)
	return withBody(req, protocol.GroupList{GroupList: list})
}

// brokerRuntimeInfo serves GET_BROKER_RUNTIME_INFO.
func (b *Broker) brokerRuntimeInfo(req *remoting.Command) *remoting.Command {
	return withBody(req, protocol.KVTable{Table: b.runtimeInfo()})
}

// brokerConfig serves GET_BROKER_CONFIG.
func (b *Broker) brokerConfig(req *remoting.Command) *remoting.Command {
	resp := req.Response(remoting.Success, "")
	resp.Body = b.configText()
	return resp
}

func withBody(req *remoting.Command, v any) *remoting.Command {
	resp := req.Response(remoting.Success, "")
	resp.Body = protocol.Encode(v)
	return resp
}

// createTopic serves UPDATE_AND_CREATE_TOPIC and registers the change at
// once.
func (b *Broker) createTopic(req *remoting.Command) *remoting.Command {
	f := req.ExtFields
	topic := f.Str("topic")
	if err := ValidateTopic(topic); err != nil {
		return req.Errorf(remoting.InvalidParameter, "%v", err)
	}
	if topic == DefaultTopic || topic == b.cfg.BrokerClusterName {
		return req.Errorf(remoting.InvalidParameter, "the topic[%s] is conflict with system reserved words", topic)
	}
	read, err1 := f.Int64Or("readQueueNums", 8)
	write, err2 := f.Int64Or("writeQueueNums", 8)
	perm, err3 := f.Int64Or("perm", 6)
	sys, err4 := f.Int64Or("topicSysFlag", 0)
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			return req.Errorf(remoting.InvalidParameter, "%v", err)
		}
	}
	if read < 1 || write < 1 || read > 1024 || write > 1024 {
		return req.Errorf(remoting.InvalidParameter, "queue numbers must be in 1..1024, got read %d write %d", read, write)
	}
	tc := protocol.TopicConfig{
		TopicName: topic, ReadQueueNums: int(read), WriteQueueNums: int(write), Perm: int(perm) & 7,
		TopicFilterType: f.Str("topicFilterType"), TopicSysFlag: int(sys), Order: f.Bool("order", false),
	}
	changed, err := b.topics.Put(tc)
	if err != nil {
		return req.Errorf(remoting.SystemError, "%v", err)
	}
	if changed {
		b.log.Info("topic created or updated", "topic", topic, "read", read, "write", write, "perm", protocol.PermString(tc.Perm))
		if resp := b.replicateOrFail(req); resp != nil {
			return resp
		}
		b.registerAll()
	}
	return req.Response(remoting.Success, "")
}

// replicateOrFail replicates the topic and group tables of a group member
// after an admin change, or returns the error response.
func (b *Broker) replicateOrFail(req *remoting.Command) *remoting.Command {
	if err := b.replicate(meta.TopicsAndGroups, 5*time.Second); err != nil {
		return req.Errorf(remoting.SystemError, "%v", err)
	}
	return nil
}

func (b *Broker) deleteTopic(req *remoting.Command) *remoting.Command {
	topic := req.ExtFields.Str("topic")
	if _, err := b.topics.Delete(topic); err != nil {
		return req.Errorf(remoting.SystemError, "%v", err)
	}
	// A group member keeps the topic's queues: every member numbers queue
	// offsets from the log alone, and dropping queues on one member at its
	// own moment would break that. The data goes with retention.
	if !b.cfg.EnableDLegerCommitLog {
		if err := b.store.DeleteTopic(topic); err != nil {
			return req.Errorf(remoting.SystemError, "%v", err)
		}
	}
	b.offsets.DeleteTopic(topic)
	b.log.Info("topic deleted", "topic", topic)
	if resp := b.replicateOrFail(req); resp != nil {
		return resp
	}
	b.registerAll()
	return req.Response(remoting.Success, "")
}

// topicStats reports each queue's min and max offsets.
func (b *Broker) topicStats(req *remoting.Command) *remoting.Command {
	topic := req.ExtFields.Str("topic")
	tc, ok := b.topics.Get(topic)
	if !ok {
		return req.Errorf(remoting.TopicNotExist, "topic[%s] not exist", topic)
	}
	var st protocol.TopicStats
	for q := range int32(max(tc.ReadQueueNums, tc.WriteQueueNums)) {
		qs := protocol.QueueStats{
			MessageQueue: protocol.MessageQueue{Topic: topic, BrokerName: b.cfg.BrokerName, QueueID: int(q)},
			MinOffset:    b.store.MinOffset(topic, q), MaxOffset: b.store.MaxOffset(topic, q),
		}
		if qs.MaxOffset > 0 {
			qs.LastUpdateTimestamp, _ = b.store.StoreTime(topic, q, qs.MaxOffset-1)
		}
		st.Queues = append(st.Queues, qs)
	}
	return withBody(req, st)
}

// consumeStats reports a group's offsets against the brokers' on each
// queue of its topics (or of one topic).
func (b *Broker) consumeStats(req *remoting.Command) *remoting.Command {
	group := req.ExtFields.Str("consumerGroup")
	topics := b.offsets.TopicsOf(group)
	if t := req.ExtFields.Str("topic"); t != "" {
		topics = []string{t}
	}
	st := protocol.ConsumeStats{Queues: []protocol.QueueConsumeStats{}}
	for _, topic := range topics {
		tc, ok := b.topics.Get(topic)
		if !ok {
			continue
		}
		for q := range int32(tc.ReadQueueNums) {
			cs := protocol.QueueConsumeStats{
				MessageQueue: protocol.MessageQueue{Topic: topic, BrokerName: b.cfg.BrokerName, QueueID: int(q)},
				BrokerOffset: b.store.MaxOffset(topic, q),
			}
			if off, ok := b.offsets.Get(group, topic, q); ok {
				cs.ConsumerOffset = off
				if off > 0 {
					cs.LastTimestamp, _ = b.store.StoreTime(topic, q, off-1)
				}
			}
			st.Queues = append(st.Queues, cs)
		}
	}
	return withBody(req, st)
}

// runtimeInfo is the GET_BROKER_RUNTIME_INFO table.
func (b *Broker) runtimeInfo() map[string]string {
	s := b.store.Stats()
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	info := map[string]string{
		"brokerVersionDesc":       "qianlang-" + strconv.Itoa(remoting.Version),
		"brokerVersion":           strconv.Itoa(remoting.Version),
		"bootTimestamp":           itoa(b.startedAt.UnixMilli()),
		"runtime":                 time.Since(b.startedAt).Round(time.Second).String(),
		"msgPutTotalTodayNow":     itoa(b.stats.putMessages.Load()),
		"msgGetTotalTodayNow":     itoa(b.stats.getMessages.Load()),
		"putMessageFailures":      itoa(b.stats.putFailures.Load()),
		"putMessageTimesTotal":    itoa(b.stats.putMessages.Load()),
		"putMessageSizeTotal":     itoa(b.stats.putBytes.Load()),
		"commitLogMinOffset":      itoa(s.MinPhysicalOffset),
		"commitLogMaxOffset":      itoa(s.MaxPhysicalOffset),
		"commitLogFlushedOffset":  itoa(s.Flushed),
		"dispatchBehindBytes":     itoa(s.MaxPhysicalOffset - s.Dispatched),
		"consumeQueues":           strconv.Itoa(s.Queues),
		"commitLogDiskRatio":      strconv.FormatFloat(s.DiskUsedRatio, 'f', 4, 64),
		"heldPullRequests":        itoa(b.stats.heldPulls.Load()),
		"namesrvRegisterOK":       itoa(b.stats.registerOK.Load()),
		"namesrvRegisterFailures": itoa(b.stats.registerFail.Load()),
		"writable":                fmt.Sprint(s.Writable == nil),
		"flushDiskType":           b.cfg.FlushDiskType,
	}
	dist, maxPut := b.putTimes.snapshot(time.Now())
	info["putMessageDistributeTime"] = dist
	info["putMessageEntireTimeMax"] = itoa(maxPut)
	if n := b.stats.putMessages.Load(); n > 0 {
		info["putMessageAverageSize"] = strconv.FormatFloat(float64(b.stats.putBytes.Load())/float64(n), 'f', -1, 64)
	}
	if st, ok := b.GroupStatus(); ok {
		u := func(n uint64) string { return strconv.FormatUint(n, 10) }
		info["dLegerGroup"] = b.cfg.DLegerGroup
		info["dLegerSelfId"] = b.cfg.DLegerSelfID
		info["dLegerRole"] = st.Role.String()
		info["dLegerTerm"] = u(st.Term)
		info["dLegerLeaderId"] = u(st.Leader)
		info["dLegerCommitIndex"] = u(st.Commit)
		info["dLegerAppliedIndex"] = u(st.Applied)
		info["dLegerLastIndex"] = u(st.LastIndex)
		info["dLegerSettled"] = strconv.FormatBool(st.Settled)
	}
	return info
}

// configText renders the effective configuration as properties.
func (b *Broker) configText() []byte {
	var buf bytes.Buffer
	c := b.cfg
	for _, kv := range [][2]any{
		{"brokerClusterName", c.BrokerClusterName}, {"brokerName", c.BrokerName}, {"brokerId", c.BrokerID},
		{"namesrvAddr", c.NamesrvAddr}, {"listenPort", c.ListenPort}, {"brokerIP1", c.advertisedIP()},
		{"brokerRole", c.BrokerRole}, {"brokerPermission", c.BrokerPermission},
		{"storePathRootDir", c.StorePathRootDir}, {"storePathCommitLog", c.StorePathCommitLog},
		{"flushDiskType", c.FlushDiskType}, {"mappedFileSizeCommitLog", c.MappedFileSizeCommitLog},
		{"mappedFileSizeConsumeQueue", c.MappedFileSizeCQ}, {"flushIntervalCommitLog", c.FlushIntervalCommitLog.Milliseconds()},
		{"syncFlushTimeout", c.SyncFlushTimeout.Milliseconds()}, {"fileReservedTime", int64(c.FileReservedTime / time.Hour)},
		{"deleteWhen", c.DeleteWhen}, {"diskMaxUsedSpaceRatio", c.DiskMaxUsedSpaceRatio},
		{"diskSpaceWarningLevelRatio", c.DiskSpaceWarningLevel}, {"maxMessageSize", c.MaxMessageSize},
		{"messageIndexEnable", c.MessageIndexEnable}, {"autoCreateTopicEnable", c.AutoCreateTopicEnable},
		{"autoCreateSubscriptionGroup", c.AutoCreateSubscriptionGroup}, {"defaultTopicQueueNums", c.DefaultTopicQueueNums},
		{"registerNameServerPeriod", c.RegisterNameServerPeriod.Milliseconds()}, {"longPollingEnable", c.LongPollingEnable},
		{"accessMessageInMemoryMaxRatio", c.AccessMessageInMemoryMax},
	} {
		fmt.Fprintf(&buf, "%s=%v\n", kv[0], kv[1])
	}
	return buf.Bytes()
}

// totalMemory is the machine's RAM in bytes.
func totalMemory() uint64 {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 8 << 30
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}
