package client

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/stretchr/testify/require"

	"qianlang.io/mq/broker"
	"qianlang.io/mq/message"
	"qianlang.io/mq/mqtest"
	"qianlang.io/mq/remoting"
)

func TestSQL92FilterDeliversOnlyMatches(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{Replicas: 3, Broker: func(_ int, cfg *broker.Config) { cfg.EnablePropertyFilter = true }})
	c.CreateTopic("SqlT", 4)
	col := newCollector()
	sel := consumer.MessageSelector{Type: consumer.SQL92, Expression: "region = 'hz' AND (amount > 100 OR vip = TRUE) AND TAGS IN ('pay', 'refund')"}
	startPushConsumer(t, c, unique("cg"), "SqlT", sel, col)
	all := newCollector()
	startPushConsumer(t, c, unique("cgall"), "SqlT", consumer.MessageSelector{}, all)

	p := startProducer(t, c)
	var want, everything []string
	for i := range 200 {
		region := []string{"hz", "sh"}[i%2]
		amount := (i * 7) % 300
		vip := i%5 == 0
		tag := []string{"pay", "refund", "ship"}[i%3]
		body := fmt.Sprintf("m%d-%s-%d-%v-%s", i, region, amount, vip, tag)
		m := primitive.NewMessage("SqlT", []byte(body))
		m.WithTag(tag)
		m.WithProperty("region", region)
		m.WithProperty("amount", strconv.Itoa(amount))
		if vip {
			m.WithProperty("vip", "true")
		}
		_, err := p.SendSync(context.Background(), m)
		require.NoError(t, err)
		everything = append(everything, body)
		if region == "hz" && (amount > 100 || vip) && tag != "ship" {
			want = append(want, body)
		}
	}
	require.NotEmpty(t, want)
	all.waitAll(t, everything, 30*time.Second)
	col.waitAll(t, want, 30*time.Second)
	require.Equal(t, len(want), col.distinct(), "only matching messages are delivered")
}

// A malformed expression, or SQL92 on a broker without
// enablePropertyFilter, is answered with SUBSCRIPTION_PARSE_FAILED and a
// remark that says what is wrong.
func TestSQL92ErrorsAreClear(t *testing.T) {
	for _, tc := range []struct {
		name   string
		enable bool
		expr   string
		remark string
	}{
		{"malformed", true, "amount > ", "does not parse"},
		{"unbalanced", true, "(a = 1", "expected ')'"},
		{"disabled", false, "a = 1", "enablePropertyFilter=true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mqtest.Start(t, mqtest.Options{Broker: func(_ int, cfg *broker.Config) { cfg.EnablePropertyFilter = tc.enable }})
			c.CreateTopic("SqlBad", 1)
			cl := remoting.NewClient(remoting.ClientOptions{})
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := cl.Invoke(ctx, c.Brokers[0].Addr(), remoting.NewRequest(remoting.PullMessage, remoting.Fields{
				{Key: "consumerGroup", Value: "g"}, {Key: "topic", Value: "SqlBad"}, {Key: "queueId", Value: "0"},
				{Key: "queueOffset", Value: "0"}, {Key: "maxMsgNums", Value: "1"}, {Key: "sysFlag", Value: "4"},
				{Key: "commitOffset", Value: "0"}, {Key: "suspendTimeoutMillis", Value: "0"},
				{Key: "subscription", Value: tc.expr}, {Key: "subVersion", Value: "0"}, {Key: "expressionType", Value: "SQL92"},
			}, nil))
			require.NoError(t, err)
			require.EqualValues(t, remoting.SubscriptionParseFailed, resp.Code)
			require.Contains(t, resp.Remark, tc.remark)
		})
	}
}

// A batch cannot be transactional or delayed as a whole (Java answers
// MESSAGE_ILLEGAL); nothing of it is stored.
func TestBatchWrapperRules(t *testing.T) {
	c := mqtest.Start(t, mqtest.Options{})
	c.CreateTopic("BatchRules", 1)
	cl := remoting.NewClient(remoting.ClientOptions{})
	defer cl.Close()
	for _, tc := range []struct {
		name, sysFlag, props, remark string
	}{
		{"transactional", "4", "", "cannot be transactional"},
		{"delayed", "0", "DELAY\x013\x02", "cannot be delayed"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := cl.Invoke(ctx, c.Brokers[0].Addr(), remoting.NewRequest(remoting.SendBatchMessage, remoting.Fields{
			{Key: "a", Value: "pg"}, {Key: "b", Value: "BatchRules"}, {Key: "c", Value: "TBW102"}, {Key: "d", Value: "4"},
			{Key: "e", Value: "0"}, {Key: "f", Value: tc.sysFlag}, {Key: "g", Value: "0"}, {Key: "h", Value: "0"},
			{Key: "i", Value: tc.props}, {Key: "j", Value: "0"}, {Key: "m", Value: "true"},
		}, message.AppendBatchItem(nil, message.BatchItem{Body: []byte("x")})))
		cancel()
		require.NoError(t, err, tc.name)
		require.EqualValues(t, remoting.MessageIllegal, resp.Code, tc.name)
		require.Contains(t, resp.Remark, tc.remark, tc.name)
	}
	require.Zero(t, c.Brokers[0].Store().MaxOffset("BatchRules", 0))
}
