package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/stretchr/testify/require"

	"qianlang.io/mq/admin/cli"
	"qianlang.io/mq/broker"
	"qianlang.io/mq/mqtest"
)

func mqadmin(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := cli.Run(context.Background(), args, &out)
	return out.String(), err
}

// Request-reply as the client's rpc examples do it: the requester blocks
// in Request until a responder's reply comes back through the broker.
func TestRequestReply(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3})
	c.CreateTopic("RpcT", 2)
	replier := startProducer(t, c)
	startPushConsumerFunc(t, c, unique("responders"), "RpcT", func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			reply, err := consumer.CreateReplyMessage(m, nil)
			if err != nil {
				return consumer.ConsumeRetryLater, err
			}
			reply.Body = []byte("re:" + string(m.Body))
			if _, err := replier.SendSync(context.Background(), reply); err != nil {
				return consumer.ConsumeRetryLater, err
			}
		}
		return consumer.ConsumeSuccess, nil
	})
	requester := startProducer(t, c)
	// Every request is answered, the first one too: the client heartbeats
	// on a first request only for a topic the NameServers do not know, and
	// the broker learns the requester's connection from its request.
	for i := range 5 {
		body := fmt.Sprintf("ping-%d", i)
		reply, err := requester.Request(context.Background(), 20*time.Second, primitive.NewMessage("RpcT", []byte(body)))
		require.NoError(t, err, "request %d", i)
		require.Equal(t, "re:"+body, string(reply.Body))
	}
}

// Message trace: a producer and a consumer with tracing on record their
// sides in the trace topic; mqadmin queryMsgTraceById shows both.
func TestMessageTrace(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3})
	c.CreateTopic("TraceT", 2)
	trace := &primitive.TraceConfig{Access: primitive.Local, Resolver: primitive.NewPassthroughResolver(c.NamesrvAddrs())}
	p := startProducer(t, c, producer.WithTrace(trace))
	col := newCollector()
	startPushConsumer(t, c, unique("cg"), "TraceT", consumer.MessageSelector{}, col, consumer.WithTrace(trace))
	r, err := p.SendSync(context.Background(), primitive.NewMessage("TraceT", []byte("traced")))
	require.NoError(t, err)
	col.waitAll(t, []string{"traced"}, 30*time.Second)
	var out string
	require.Eventually(t, func() bool {
		out, err = mqadmin(t, "queryMsgTraceById", "-n", c.NamesrvAddr(), "-i", r.MsgID, "-o", "json")
		return err == nil && strings.Contains(out, `"Pub"`) && strings.Contains(out, `"SubAfter"`)
	}, 30*time.Second, 200*time.Millisecond, "trace: %s %v", out, err)
	var recs []struct {
		Type   string
		Fields map[string]string
	}
	require.NoError(t, json.Unmarshal([]byte(out), &recs))
	for _, rec := range recs {
		if rec.Type == "Pub" {
			require.Equal(t, "TraceT", rec.Fields["topic"])
			require.Equal(t, "true", rec.Fields["success"])
		}
	}
}

// Rewinding a running consumer group: mqadmin resetOffsetByTime moves the
// group back and the live consumer receives the messages again.
func TestResetOffsetByTimeWhileConsuming(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3})
	c.CreateTopic("RewindT", 2)
	group := unique("cg")
	col := newCollector()
	startPushConsumer(t, c, group, "RewindT", consumer.MessageSelector{}, col)
	p := startProducer(t, c)
	start := time.Now().Add(-time.Second)
	want := bodies("rw", 40)
	sendAll(t, p, "RewindT", want, "")
	col.waitAll(t, want, 30*time.Second)
	time.Sleep(time.Second) // the consumer commits its offsets
	out, err := mqadmin(t, "resetOffsetByTime", "-n", c.NamesrvAddr(), "-g", group, "-t", "RewindT", "-s", fmt.Sprint(start.UnixMilli()))
	require.NoError(t, err, out)
	require.Eventually(t, func() bool {
		for _, b := range want {
			if col.count(b) < 2 {
				return false
			}
		}
		return true
	}, 90*time.Second, 100*time.Millisecond, "the rewound messages are consumed again")
}

// Dead letters can be listed and sent back to their group with mqadmin.
func TestDeadLettersListAndResend(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3, Broker: func(_ int, cfg *broker.Config) {
		cfg.MessageDelayLevel = "1s 1s 1s"
	}})
	c.CreateTopic("DlqT", 1)
	group := unique("cg")
	var mu sync.Mutex
	healed := false
	got := map[string]int{}
	startPushConsumerFunc(t, c, group, "DlqT", func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			got[string(m.Body)]++
		}
		if healed {
			return consumer.ConsumeSuccess, nil
		}
		return consumer.ConsumeRetryLater, nil
	}, consumer.WithMaxReconsumeTimes(1), consumer.WithConsumeMessageBatchMaxSize(1))
	p := startProducer(t, c)
	sendAll(t, p, "DlqT", []string{"poison"}, "")
	var out string
	var err error
	require.Eventually(t, func() bool {
		out, err = mqadmin(t, "dlqList", "-n", c.NamesrvAddr(), "-g", group, "-o", "json")
		return err == nil && strings.Contains(out, `"poison"`)
	}, 60*time.Second, 200*time.Millisecond, "dlqList: %s %v", out, err)
	mu.Lock()
	before := got["poison"]
	healed = true
	mu.Unlock()
	out, err = mqadmin(t, "dlqResend", "-n", c.NamesrvAddr(), "-g", group)
	require.NoError(t, err, out)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got["poison"] > before
	}, 60*time.Second, 100*time.Millisecond, "the resent dead letter reaches its group again")
}

const aclFile = `
accounts:
  - accessKey: orderapp
    secretKey: order-secret
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - AclT=PUB|SUB
      - AclSecret=DENY
  - accessKey: opsadmin
    secretKey: ops-secret
    admin: true
`

// With aclEnable, a client signing with a known account works within its
// permissions; a wrong secret, a missing signature or a denied topic is
// refused with NO_PERMISSION and never stored.
func TestACL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	require.NoError(t, os.WriteFile(path, []byte(aclFile), 0o600))
	c := mqtest.Start(t, mqtest.Options{Replicas: 3, Broker: func(_ int, cfg *broker.Config) {
		cfg.AclEnable, cfg.AclConfigFile = true, path
	}})
	c.Leader(0)
	for _, topic := range []string{"AclT", "AclSecret"} {
		var out string
		var err error
		require.Eventually(t, func() bool {
			out, err = mqadmin(t, "updateTopic", "-n", c.NamesrvAddr(), "-c", "DefaultCluster", "-t", topic, "-r", "2", "-w", "2", "-ak", "opsadmin", "-sk", "ops-secret")
			return err == nil
		}, 10*time.Second, 100*time.Millisecond, "%s %v", out, err)
		c.WaitRoute(topic, 1)
	}
	_, err := mqadmin(t, "updateTopic", "-n", c.NamesrvAddr(), "-c", "DefaultCluster", "-t", "Sneaky", "-ak", "orderapp", "-sk", "order-secret")
	require.ErrorContains(t, err, "not an admin account")
	_, err = mqadmin(t, "updateTopic", "-n", c.NamesrvAddr(), "-c", "DefaultCluster", "-t", "Sneaky")
	require.ErrorContains(t, err, "code 16")

	good := primitive.Credentials{AccessKey: "orderapp", SecretKey: "order-secret"}
	p := startProducer(t, c, producer.WithCredentials(good))
	col := newCollector()
	startPushConsumer(t, c, unique("cg"), "AclT", consumer.MessageSelector{}, col, consumer.WithCredentials(good))
	want := bodies("acl", 10)
	sendAll(t, p, "AclT", want, "")
	col.waitAll(t, want, 30*time.Second)

	_, err = p.SendSync(context.Background(), primitive.NewMessage("AclSecret", []byte("x")))
	require.ErrorContains(t, err, "has no PUB permission on topic AclSecret")

	for name, opts := range map[string][]producer.Option{
		"wrong secret": {producer.WithCredentials(primitive.Credentials{AccessKey: "orderapp", SecretKey: "guess-secret"})},
		"unsigned":     nil,
	} {
		bad := startProducer(t, c, append(opts, producer.WithRetry(0))...)
		_, err := bad.SendSync(context.Background(), primitive.NewMessage("AclT", []byte("intruder-"+name)))
		require.Error(t, err, name)
	}
	time.Sleep(time.Second)
	require.False(t, col.has("intruder-wrong secret"))
	require.False(t, col.has("intruder-unsigned"))
	var total int64
	for q := int32(0); q < 2; q++ {
		total += c.Brokers[c.Leader(0)].Store().MaxOffset("AclT", q)
	}
	require.EqualValues(t, len(want), total, "refused sends were not stored")
}

var _ rocketmq.Producer
