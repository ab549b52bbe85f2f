package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
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
		}
		return len(rows) == 3 && roles["LEADER"] == 1 && roles["FOLLOWER"] == 2
	}, 10*time.Second, 50*time.Millisecond)
	out, err := run(t, "clusterList", "-n", ns)
	require.NoError(t, err)
	require.Contains(t, out, "LEADER")
	require.Contains(t, out, "Applied")
}
