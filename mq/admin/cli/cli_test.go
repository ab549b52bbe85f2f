package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/message"
	"qianlang.io/mq/mqtest"
	"qianlang.io/mq/protocol"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := Run(context.Background(), args, &out)
	return out.String(), err
}

func TestCLISubcommands(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{})
	ns := c.NamesrvAddr()

	out, err := run(t, "updateTopic", "-n", ns, "-c", "DefaultCluster", "-t", "CliTopic", "-r", "4", "-w", "4")
	require.NoError(t, err)
	require.Contains(t, out, "create topic to "+c.Brokers[0].Addr()+" success.")
	c.WaitRoute("CliTopic", 1)

	// Three messages in queue 2, committed by group g up to offset 1.
	st := c.Brokers[0].Store()
	for i := range 3 {
		m := &message.Message{Topic: "CliTopic", QueueID: 2, Body: []byte{byte(i)}, StoreHost: netip.MustParseAddrPort(c.Brokers[0].Addr())}
		require.NoError(t, st.PutSync([]*message.Message{m}))
	}
	require.Eventually(t, func() bool { return st.MaxOffset("CliTopic", 2) == 3 }, 5*time.Second, 10*time.Millisecond)

	out, err = run(t, "topicList", "-n", ns)
	require.NoError(t, err)
	require.Contains(t, strings.Split(out, "\n"), "CliTopic")

	out, err = run(t, "clusterList", "-n", ns)
	require.NoError(t, err)
	require.Contains(t, out, "#Cluster Name")
	require.Contains(t, out, "broker-a")
	require.Contains(t, out, c.Brokers[0].Addr())

	out, err = run(t, "topicStatus", "-n", ns, "-t", "CliTopic", "-json")
	require.NoError(t, err)
	var qs []protocol.QueueStats
	require.NoError(t, json.Unmarshal([]byte(out), &qs))
	require.Len(t, qs, 4)
	require.Equal(t, int64(3), qs[2].MaxOffset)

	out, err = run(t, "consumerProgress", "-n", ns)
	require.NoError(t, err)
	require.Contains(t, out, "#Group")

	_, err = run(t, "topicStatus", "-n", ns)
	require.ErrorContains(t, err, "-t topic is required")
	_, err = run(t, "updateTopic", "-n", ns, "-t", "X")
	require.ErrorContains(t, err, "exactly one of -b brokerAddr and -c cluster")
	_, err = run(t, "nosuch")
	require.ErrorContains(t, err, `unknown subcommand "nosuch"`)
	_, err = run(t, "clusterList")
	require.ErrorContains(t, err, "no NameServer address")
	_, err = run(t, "topicStatus", "-n", ns, "-t", "Missing")
	require.ErrorContains(t, err, "code 17")
}

func TestCLIClusterListShowsGroupMembers(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3})
	ns := c.NamesrvAddr()
	lead := c.Leader(0)
	require.Eventually(t, func() bool {
		out, err := run(t, "clusterList", "-n", ns, "-json")
		if err != nil {
			return false
		}
		var rows []brokerRow
		require.NoError(t, json.Unmarshal([]byte(out), &rows))
		roles := map[string]int{}
		for _, r := range rows {
			roles[r.Runtime["dLegerRole"]]++
			if r.BrokerID == 0 && r.Addr != c.Brokers[lead].Addr() {
				return false
			}
			if r.Runtime["dLegerRole"] == "LEADER" && r.Runtime["dLegerSettled"] != "true" {
				return false // elected, not yet serving
			}
		}
		return len(rows) == 3 && roles["LEADER"] == 1 && roles["FOLLOWER"] == 2
	}, 10*time.Second, 50*time.Millisecond)
	out, err := run(t, "clusterList", "-n", ns)
	require.NoError(t, err)
	require.Contains(t, out, "LEADER")
	require.NotContains(t, out, "settling", "a settled leader shows as settling")
	require.Contains(t, out, "Applied")
}

func TestCLIMessagesAndGroups(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3})
	ns := c.NamesrvAddr()
	c.CreateTopic("CliMsg", 2)

	out, err := run(t, "sendMessage", "-n", ns, "-t", "CliMsg", "-p", "hello world", "-k", "order-42 other", "-c", "paid", "-o", "json")
	require.NoError(t, err)
	var sent struct{ MsgID, OffsetMsgID string }
	require.NoError(t, json.Unmarshal([]byte(out), &sent))
	require.NotEmpty(t, sent.MsgID)

	out, err = run(t, "queryMsgById", "-n", ns, "-i", sent.OffsetMsgID)
	require.NoError(t, err)
	require.Contains(t, out, `"hello world"`)
	require.Contains(t, out, "order-42 other")

	require.Eventually(t, func() bool {
		out, err = run(t, "queryMsgByKey", "-n", ns, "-t", "CliMsg", "-k", "order-42", "-o", "json")
		return err == nil && strings.Contains(out, sent.MsgID)
	}, 5*time.Second, 50*time.Millisecond, "%s %v", out, err)

	out, err = run(t, "queryMsgByUniqueKey", "-n", ns, "-t", "CliMsg", "-i", sent.MsgID, "-o", "json")
	require.NoError(t, err)
	var one struct{ Body, Tags string }
	require.NoError(t, json.Unmarshal([]byte(out), &one))
	require.Equal(t, "hello world", one.Body)
	require.Equal(t, "paid", one.Tags)

	out, err = run(t, "consumeMessage", "-n", ns, "-t", "CliMsg", "-o", "json")
	require.NoError(t, err)
	var all []struct{ MsgID, Body string }
	require.NoError(t, json.Unmarshal([]byte(out), &all))
	require.Len(t, all, 1)
	out, err = run(t, "consumeMessage", "-n", ns, "-t", "CliMsg", "-o", "1", "-i", "0")
	require.NoError(t, err, "-o is consumeMessage's offset, as in Apache's mqadmin")
	require.NotContains(t, out, "hello world")

	out, err = run(t, "topicRoute", "-n", ns, "-t", "CliMsg")
	require.NoError(t, err)
	require.Contains(t, out, "broker-a")

	lead := c.Brokers[c.Leader(0)].Addr()
	out, err = run(t, "getBrokerConfig", "-n", ns, "-b", lead, "-o", "json")
	require.NoError(t, err)
	var cfg map[string]map[string]string
	require.NoError(t, json.Unmarshal([]byte(out), &cfg))
	require.Equal(t, "broker-a", cfg[lead]["brokerName"])
	out, err = run(t, "brokerStatus", "-n", ns, "-c", "DefaultCluster")
	require.NoError(t, err)
	require.Contains(t, out, "msgPutTotalTodayNow")
	require.Contains(t, out, "putMessageDistributeTime")
	rt, err := c.Admin().BrokerRuntime(context.Background(), lead)
	require.NoError(t, err)
	require.Equal(t, int64(1), sumPutBuckets(t, rt["putMessageDistributeTime"]),
		"the one message sent is counted once: %q", rt["putMessageDistributeTime"])
	require.Equal(t, "1", rt["putMessageTimesTotal"])

	_, err = run(t, "updateSubGroup", "-n", ns, "-c", "DefaultCluster", "-g", "cli-group", "-r", "3")
	require.NoError(t, err)
	for _, b := range c.Brokers {
		require.Eventually(t, func() bool {
			w, err := c.Admin().SubscriptionGroups(context.Background(), b.Addr())
			return err == nil && w.SubscriptionGroupTable["cli-group"].RetryMaxTimes == 3
		}, 5*time.Second, 20*time.Millisecond, "the group is replicated to every member")
	}
	out, err = run(t, "resetOffsetByTime", "-n", ns, "-g", "cli-group", "-t", "CliMsg", "-s", "0", "-o", "json")
	require.NoError(t, err)
	require.Contains(t, out, `"offset": 0`)
	_, err = run(t, "deleteSubGroup", "-n", ns, "-c", "DefaultCluster", "-g", "cli-group")
	require.NoError(t, err)

	_, err = run(t, "deleteTopic", "-n", ns, "-c", "DefaultCluster", "-t", "CliMsg")
	require.NoError(t, err)
	_, err = run(t, "topicRoute", "-n", ns, "-t", "CliMsg")
	require.ErrorContains(t, err, "code 17")

	for _, bad := range [][]string{
		{"sendMessage", "-n", ns, "-t", "X"},
		{"queryMsgById", "-n", ns, "-i", "not-an-id"},
		{"resetOffsetByTime", "-n", ns, "-g", "g", "-t", "T", "-s", "yesterday"},
		{"topicList", "-n", ns, "-o", "yaml"},
		{"updateTopic", "-n", ns, "-c", "DefaultCluster", "-t", "X", "-o", "maybe"},
	} {
		_, err := run(t, bad...)
		require.Error(t, err, bad)
	}
}

func TestMemberRoleShowsASettlingLeader(t *testing.T) {
	tests := []struct {
		rt   map[string]string
		want string
	}{
		{map[string]string{"dLegerRole": "LEADER", "dLegerSettled": "true"}, "LEADER"},
		{map[string]string{"dLegerRole": "LEADER", "dLegerSettled": "false"}, "LEADER (settling)"},
		{map[string]string{"dLegerRole": "LEADER"}, "LEADER"}, // a broker that does not report it
		{map[string]string{"dLegerRole": "FOLLOWER", "dLegerSettled": "false"}, "FOLLOWER"},
		{map[string]string{}, ""},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, memberRole(tc.rt), "%v", tc.rt)
	}
}

// sumPutBuckets adds up the counts of a putMessageDistributeTime value,
// "[<=0ms]:1 [0~10ms]:0 … ".
func sumPutBuckets(t *testing.T, dist string) int64 {
	t.Helper()
	fields := strings.Fields(dist)
	require.Len(t, fields, 13, dist)
	var sum int64
	for _, f := range fields {
		_, n, ok := strings.Cut(f, "]:")
		require.True(t, ok, f)
		v, err := strconv.ParseInt(n, 10, 64)
		require.NoError(t, err, f)
		sum += v
	}
	return sum
}
