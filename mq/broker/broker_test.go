package broker

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
)

func writeConf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "broker.conf")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	return p
}

func TestLoadConfigApacheKeys(t *testing.T) {
	p := writeConf(t, strings.Join([]string{
		"brokerClusterName=C1", "brokerName=broker-a", "brokerId=0", "namesrvAddr=127.0.0.1:9876;127.0.0.1:9877",
		"listenPort=10911", "storePathRootDir=/tmp/x", "flushDiskType=SYNC_FLUSH", "mappedFileSizeCommitLog=1073741824",
		"fileReservedTime=48", "deleteWhen=04;16", "diskMaxUsedSpaceRatio=80", "autoCreateTopicEnable=false",
		"defaultTopicQueueNums=4", "sendMessageThreadPoolNums=16", "brokerRole=SYNC_MASTER",
	}, "\n"))
	c, err := LoadConfig(p)
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	require.Equal(t, "C1", c.BrokerClusterName)
	require.Equal(t, 48*time.Hour, c.FileReservedTime)
	require.Equal(t, []string{"127.0.0.1:9876", "127.0.0.1:9877"}, splitAddrs(c.NamesrvAddr))
	so := c.StoreOptions()
	require.Equal(t, []int{4, 16}, so.DeleteWhen)
	require.InDelta(t, 0.8, so.DiskMaxUsedSpaceRatio, 1e-9)
}

func TestLoadConfigRejectsUnknownKey(t *testing.T) {
	_, err := LoadConfig(writeConf(t, "brokerName=a\nflushDiskTyp=SYNC_FLUSH\n"))
	require.ErrorContains(t, err, `unknown key "flushDiskTyp" (value "SYNC_FLUSH")`)
}

func TestConfigValidateNamesKeyAndValue(t *testing.T) {
	tests := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.FlushDiskType = "SOMETIMES" }, "flushDiskType=SOMETIMES"},
		{func(c *Config) { c.DeleteWhen = "25" }, "deleteWhen=25"},
		{func(c *Config) { c.ListenPort = 70000 }, "listenPort=70000"},
		{func(c *Config) { c.BrokerID = 1 }, "brokerId=1"},
		{func(c *Config) { c.NamesrvAddr = "localhost:9876" }, "namesrvAddr=localhost:9876"},
		{func(c *Config) { c.BrokerName = "bad name" }, "brokerName=bad name"},
		{func(c *Config) { c.DiskMaxUsedSpaceRatio = 99 }, "diskMaxUsedSpaceRatio=99"},
		{func(c *Config) { c.BrokerIP1 = "::1" }, "brokerIP1=::1"},
		{func(c *Config) { c.MappedFileSizeCQ = 7 }, "mappedFileSizeConsumeQueue=7"},
		{func(c *Config) { c.MappedFileSizeCommitLog = 1024 }, "SegmentSize 1024"},
		{func(c *Config) { c.MessageDelayLevel = "1s 5x" }, "messageDelayLevel=1s 5x"},
		{func(c *Config) { c.TimerMaxDelay = 72 * time.Hour }, "timerMaxDelaySec=259200"},
		{func(c *Config) { c.TimerMaxDelay = -time.Second }, "timerMaxDelaySec=-1"},
		{func(c *Config) { c.TransactionCheckMax = 0 }, "transactionCheckMax=0"},
		{func(c *Config) { c.TransactionCheckInterval = 0 }, "transactionCheckInterval=0"},
		{func(c *Config) { c.AclEnable = true }, "aclConfigFile="},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		c.BrokerName = "broker-a"
		tt.mod(&c)
		require.ErrorContains(t, c.Validate(), tt.want)
	}
}

func TestValidateTopic(t *testing.T) {
	for _, ok := range []string{"T", "Topic_1-x", "%RETRY%group", strings.Repeat("t", 127), "%RETRY%" + strings.Repeat("g", 200)} {
		require.NoError(t, ValidateTopic(ok), ok)
	}
	for _, bad := range []string{"", "a b", "t/1", "tö", strings.Repeat("t", 128)} {
		require.Error(t, ValidateTopic(bad), bad)
	}
}

func TestParseSendHeaderLongAndShortKeys(t *testing.T) {
	long := remoting.NewRequest(remoting.SendMessage, remoting.Fields{
		{Key: "producerGroup", Value: "pg"}, {Key: "topic", Value: "T"}, {Key: "defaultTopic", Value: "TBW102"},
		{Key: "defaultTopicQueueNums", Value: "4"}, {Key: "queueId", Value: "3"}, {Key: "sysFlag", Value: "1"},
		{Key: "bornTimestamp", Value: "17"}, {Key: "flag", Value: "2"}, {Key: "properties", Value: "A\x01B\x02"},
	}, nil)
	h, err := parseSendHeader(long)
	require.NoError(t, err)
	require.Equal(t, sendHeader{producerGroup: "pg", topic: "T", defaultTopic: "TBW102", defaultQueues: 4, queueID: 3, sysFlag: 1, bornTimestamp: 17, flag: 2, properties: "A\x01B\x02"}, h)

	short := remoting.NewRequest(remoting.SendBatchMessage, remoting.Fields{
		{Key: "a", Value: "pg"}, {Key: "b", Value: "T"}, {Key: "c", Value: "TBW102"}, {Key: "d", Value: "4"},
		{Key: "e", Value: "1"}, {Key: "f", Value: "0"}, {Key: "g", Value: "5"}, {Key: "h", Value: "0"}, {Key: "m", Value: "true"},
	}, nil)
	h, err = parseSendHeader(short)
	require.NoError(t, err)
	require.True(t, h.batch)
	require.Equal(t, int32(1), h.queueID)

	bad := remoting.NewRequest(remoting.SendMessage, remoting.Fields{{Key: "topic", Value: "T"}}, nil)
	_, err = parseSendHeader(bad)
	require.ErrorIs(t, err, remoting.ErrMissingField)
}

func testConn(t *testing.T) *remoting.Conn {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	c := remoting.NewConn(a, nil, remoting.ConnOptions{})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestClientTableMembershipChanges(t *testing.T) {
	ct := newClientTable()
	c1, c2 := testConn(t), testConn(t)
	sub := func(topics ...string) protocol.ConsumerData {
		cd := protocol.ConsumerData{GroupName: "g", MessageModel: protocol.Clustering}
		for _, tp := range topics {
			cd.SubscriptionDataSet = append(cd.SubscriptionDataSet, protocol.SubscriptionData{Topic: tp, SubString: "*"})
		}
		return cd
	}
	now := time.Now()
	require.True(t, ct.consumerHeartbeat(&clientChannel{clientID: "a", conn: c1, lastSeen: now}, sub("T")), "new member")
	require.False(t, ct.consumerHeartbeat(&clientChannel{clientID: "a", conn: c1, lastSeen: now}, sub("T")), "same heartbeat")
	require.True(t, ct.consumerHeartbeat(&clientChannel{clientID: "a", conn: c1, lastSeen: now}, sub("T", "U")), "topic added")
	require.True(t, ct.consumerHeartbeat(&clientChannel{clientID: "b", conn: c2, lastSeen: now.Add(-time.Hour)}, sub("T", "U")))
	require.Equal(t, []string{"a", "b"}, ct.consumerIDs("g"))
	require.Len(t, ct.expired(now.Add(-time.Minute)), 1)
	require.Equal(t, []string{"g"}, ct.removeConn(c2.ID()))
	require.Equal(t, []string{"a"}, ct.consumerIDs("g"))
	s, ok := ct.subscription("g", "U")
	require.True(t, ok)
	require.Equal(t, "*", s.SubString)
}

func TestTagFilterMatchesByString(t *testing.T) {
	require.Nil(t, newTagFilter("*"))
	require.Nil(t, newTagFilter(""))
	f := newTagFilter("TagA || 标签")
	require.True(t, f.MatchTagsCode(2598919))
	require.True(t, f.MatchMessage("TAGS\x01标签\x02"))
	require.False(t, f.MatchMessage("TAGS\x01TagB\x02"))
	require.False(t, f.MatchMessage("KEYS\x01x\x02"))
}

func TestConfigValidateDLegerKeys(t *testing.T) {
	group := func() Config {
		c := DefaultConfig()
		c.BrokerName, c.EnableDLegerCommitLog, c.DLegerGroup = "broker-a", true, "broker-a"
		c.DLegerPeers, c.DLegerSelfID = "n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913", "n0"
		return c
	}
	tests := []struct {
		mod  func(*Config)
		want string // "": valid
	}{
		{func(c *Config) {}, ""},
		{func(c *Config) { c.PreferredLeaderID = "n2" }, ""},
		{func(c *Config) { c.PreferredLeaderID = "n3" }, "preferredLeaderId=n3"},
		{func(c *Config) { c.PreferredLeaderID = "2" }, "preferredLeaderId=2"},
		{func(c *Config) { c.DLegerSelfID = "n7" }, "dLegerSelfId=n7"},
		{func(c *Config) { c.DLegerPeers = "n0-localhost:40911" }, "dLegerPeers=n0-localhost:40911"},
	}
	for _, tt := range tests {
		c := group()
		tt.mod(&c)
		if tt.want == "" {
			require.NoError(t, c.Validate())
			continue
		}
		require.ErrorContains(t, c.Validate(), tt.want)
	}

	c := group()
	_, all := c.dlegerMembers()
	require.Zero(t, c.preferredLeader(all), "no preference")
	c.PreferredLeaderID = "n2"
	require.EqualValues(t, 3, c.preferredLeader(all), "n2 is raft member 3")
}

// A producer group left out of its client's heartbeat (the Go client
// shuts producers down without unregistering them) is dropped at once, so
// it never expires and closes the connection the client's other groups
// share.
func TestHeartbeatDropsProducerGroupsItNoLongerLists(t *testing.T) {
	ct := newClientTable()
	c := testConn(t)
	old := time.Now().Add(-time.Hour)
	ct.producerHeartbeat(&clientChannel{clientID: "a", conn: c, lastSeen: old}, "gone")
	ct.producerHeartbeat(&clientChannel{clientID: "a", conn: c, lastSeen: old}, "kept")
	require.Len(t, ct.expired(time.Now().Add(-time.Minute)), 1, "both groups are stale before the next heartbeat")

	ct.producerHeartbeat(&clientChannel{clientID: "a", conn: c, lastSeen: time.Now()}, "kept")
	ct.keepProducers(c.ID(), map[string]bool{"kept": true})
	require.Empty(t, ct.expired(time.Now().Add(-time.Minute)), "the connection's remaining group is fresh")
	require.Empty(t, ct.producerConns("gone"))
	require.Len(t, ct.producerConns("kept"), 1)
}
