package broker

import (
	"testing"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/acl"
	"qianlang.io/mq/remoting"
)

// clientCodes are the request codes the official Go client v2.1.2 sends
// to a broker (internal/request.go; docs: rocketmq-protocol.md §2.0),
// with the ones it defines but never sends, which the broker serves too.
var clientCodes = map[int32]string{
	remoting.SendMessage:                   "ReqSendMessage",
	remoting.SendBatchMessage:              "ReqSendBatchMessage",
	remoting.SendReplyMessage:              "ReqSendReplyMessage",
	remoting.SendReplyMessageV2:            "ReqSendReplyMessageV2 (never sent)",
	remoting.PullMessage:                   "ReqPullMessage",
	remoting.QueryMessage:                  "ReqQueryMessage (never sent)",
	remoting.QueryConsumerOffset:           "ReqQueryConsumerOffset",
	remoting.UpdateConsumerOffset:          "ReqUpdateConsumerOffset",
	remoting.UpdateAndCreateTopic:          "ReqCreateTopic",
	remoting.SearchOffsetByTimestamp:       "ReqSearchOffsetByTimestamp",
	remoting.GetMaxOffset:                  "ReqGetMaxOffset",
	remoting.GetMinOffset:                  "ReqGetMinOffset (never sent)",
	remoting.ViewMessageByID:               "ReqViewMessageByID (never sent)",
	remoting.HeartBeat:                     "ReqHeartBeat",
	remoting.ConsumerSendMsgBack:           "ReqConsumerSendMsgBack",
	remoting.EndTransaction:                "ReqENDTransaction",
	remoting.GetConsumerListByGroup:        "ReqGetConsumerListByGroup",
	remoting.LockBatchMQ:                   "ReqLockBatchMQ",
	remoting.UnlockBatchMQ:                 "ReqUnlockBatchMQ",
	remoting.GetAllSubscriptionGroupConfig: "ReqGetAllSubscriptionGroupConfig",
	remoting.DeleteTopicInBroker:           "ReqDeleteTopicInBroker",
}

func TestEveryClientRequestIsServed(t *testing.T) {
	for code, name := range clientCodes {
		r := requestFor(code)
		require.NotNil(t, r, "%s (%d) is not in the request table", name, code)
		require.NotNil(t, r.serve, "%s (%d) has no handler", name, code)
	}
}

// Codes answered by the NameServer, or sent by the broker to its clients,
// never reach the broker's handlers.
func TestRequestTableHoldsOnlyBrokerCodes(t *testing.T) {
	for _, code := range []int32{
		remoting.GetRouteInfoByTopic, remoting.GetBrokerClusterInfo, remoting.GetAllTopicListFromNameServer,
		remoting.DeleteTopicInNamesrv, remoting.RegisterBroker, remoting.UnregisterBroker,
		remoting.CheckTransactionState, remoting.NotifyConsumerIDsChanged, remoting.ResetConsumerClientOffset,
		remoting.GetConsumerStatusFromClient, remoting.GetConsumerRunningInfo, remoting.ConsumeMessageDirectly,
		remoting.PushReplyMessageToClient,
	} {
		require.Nil(t, requestFor(code), "code %d", code)
	}
	require.Nil(t, requestFor(-1))
	require.Nil(t, requestFor(1<<20))
}

// needOf is what a request with the code needs when its fields and body
// name topic T and group G.
func needOf(t *testing.T, code int32) acl.Need {
	t.Helper()
	// One body that both the heartbeat and the lock decoders read.
	body := []byte(`{"consumerGroup":"G","clientId":"c","mqSet":[],"consumerDataSet":[{"groupName":"G","subscriptionDataSet":[{"topic":"T"}]}]}`)
	req := remoting.NewRequest(code, remoting.Fields{
		{Key: "topic", Value: "T"}, {Key: "b", Value: "T"}, {Key: "consumerGroup", Value: "G"}, {Key: "group", Value: "G"},
	}, body)
	need, err := accessNeed(req)
	require.NoError(t, err, "code %d", code)
	return need
}

// authOnlyLeaderCodes change leader state with a valid signature alone,
// as in RocketMQ's plain ACL: END_TRANSACTION closes a half message the
// producer's own send created.
var authOnlyLeaderCodes = map[int32]bool{remoting.EndTransaction: true}

func TestRequestTableIsConsistent(t *testing.T) {
	table := requestTable()
	for code, r := range table {
		require.NotNil(t, r.need, "code %d states no ACL need", code)
		need := needOf(t, code)
		if need.Admin {
			require.True(t, r.leader || r.serve == nil, "code %d needs an admin but is not forwarded to the leader", code)
			require.Empty(t, need.Topics, "code %d", code)
			require.Empty(t, need.Groups, "code %d", code)
		}
		if r.leader && !authOnlyLeaderCodes[code] {
			require.True(t, need.Admin || len(need.Topics)+len(need.Groups) > 0, "code %d changes leader state with a signature alone", code)
		}
		if r.inline {
			require.NotNil(t, r.serve, "code %d", code)
		}
		got := requestFor(code)
		require.NotNil(t, got, "code %d", code)
		require.Equal(t, r.inline, got.inline, "code %d", code)
		require.Equal(t, r.leader, got.leader, "code %d", code)
		require.Equal(t, r.serve == nil, got.serve == nil, "code %d", code)
	}
	for code := range requests {
		if requestFor(int32(code)) != nil {
			require.Contains(t, table, int32(code))
		}
	}
}

// Only the plain sends are served on the reader goroutine: they only
// queue work for the store.
func TestOnlyPlainSendsRunInline(t *testing.T) {
	var inline []int32
	for code, r := range requestTable() {
		if r.inline {
			inline = append(inline, code)
		}
	}
	require.ElementsMatch(t, []int32{remoting.SendMessage, remoting.SendMessageV2, remoting.SendBatchMessage}, inline)
	h := brokerHandler{}
	require.True(t, h.Inline(remoting.SendMessage))
	require.False(t, h.Inline(remoting.PullMessage))
	require.False(t, h.Inline(9999))
}

// BenchmarkRequestLookup is the per-request cost of finding a send's
// table entry, on the connection's reader (Inline) and again in serve.
func BenchmarkRequestLookup(b *testing.B) {
	h := brokerHandler{}
	n := 0
	for i := range b.N {
		code := int32(remoting.SendMessage)
		if i&1 == 1 {
			code = remoting.PullMessage
		}
		if h.Inline(code) {
			n++
		}
		if r := requestFor(code); r != nil && r.leader {
			n++
		}
	}
	if n == 0 {
		b.Fatal("no send found")
	}
}
