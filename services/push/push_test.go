package push_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/admin/cli"
	"qianlang.io/mq/broker"
	"qianlang.io/mq/mqtest"
	"qianlang.io/services/events"
	"qianlang.io/services/providerclient"
	"qianlang.io/services/providerclient/providertest"
	"qianlang.io/services/push"
	"qianlang.io/services/svctest"
)

// quickRedelivery makes a failed delivery come again after 1 s instead of
// RocketMQ's 10 s, 30 s, 1 min, ….
var quickRedelivery = mqtest.Options{Broker: func(_ int, c *broker.Config) {
	c.MessageDelayLevel = strings.TrimSpace(strings.Repeat("1s ", 18))
}}

type notification struct {
	OrderID string `json:"order_id"`
	Kind    string `json:"kind"`
	At      string `json:"at"`
}

func list(t *testing.T, e *svctest.Env, user string) []notification {
	t.Helper()
	status, body := e.Do(t, http.MethodGet, "/api/notifications", e.User(user), nil)
	require.Equal(t, http.StatusOK, status, string(body))
	var out []notification
	require.NoError(t, json.Unmarshal(body, &out), string(body))
	require.NotNil(t, out, "an empty list is [] not null: %s", body)
	return out
}

// expect checks that orderID of user has one notification of each of
// kinds and no other, and one SMS at the provider for each, sent with the
// key "<order_id>:<kind>".
func expect(t *testing.T, e *svctest.Env, p *providertest.Server, user, orderID string, kinds ...string) {
	t.Helper()
	want := map[string]int{}
	for _, k := range kinds {
		want[k] = 1
	}
	rows, sms := map[string]int{}, map[string]int{}
	for _, n := range list(t, e, user) {
		if n.OrderID != orderID {
			continue
		}
		rows[n.Kind]++
		at, err := time.Parse(time.RFC3339Nano, n.At)
		require.NoError(t, err, n.At)
		require.True(t, strings.HasSuffix(n.At, "Z"), "UTC: %s", n.At)
		require.WithinDuration(t, time.Now(), at, time.Minute)
	}
	for _, s := range p.SMS(orderID) {
		require.Equal(t, orderID+":"+s.Req.Kind, s.Key)
		require.Equal(t, user, s.Req.UserID)
		require.Contains(t, s.Req.Text, orderID)
		sms[s.Req.Kind]++
	}
	if len(want) == 0 {
		want = nil
		if len(rows) == 0 {
			rows = nil
		}
		if len(sms) == 0 {
			sms = nil
		}
	}
	require.Equal(t, want, rows, "notification rows of %s", orderID)
	require.Equal(t, want, sms, "texts of %s", orderID)
}

// TestPush runs the service once, with one queue cluster and one fake
// provider, and feeds it every event twice, as a redelivery would.
func TestPush(t *testing.T) {
	p := providertest.New(t)
	e := svctest.StartWith(t, push.Spec(), svctest.Options{
		Args:  []string{"--provider", p.URL, "--provider-timeout", "500ms", "--max-reconsume", "2"},
		Queue: quickRedelivery,
	}, events.GroupPush,
		events.TopicOrderPaySuccess, events.TopicOrderShipped, events.TopicOrderClosed, events.TopicOrderRefunded,
		// Made ahead, so that the consumer routes its first redelivery at
		// once rather than at its next route refresh, 30 s later.
		"%RETRY%"+events.GroupPush)
	now := time.Now().UTC()

	t.Run("each kind once when every event comes twice", func(t *testing.T) {
		user, order, closed := svctest.Unique("u"), svctest.Unique("O"), svctest.Unique("O")
		e.SendTwice(t, events.TopicOrderPaySuccess, order, "paid:"+order, events.OrderPaid{OrderID: order, UserID: user, PayCents: 12345, PaidAt: now})
		e.SendTwice(t, events.TopicOrderShipped, order, "shipped:"+order, events.OrderShipped{OrderID: order, UserID: user, Carrier: "SF", TrackingNo: "T1", At: now})
		e.SendTwice(t, events.TopicOrderRefunded, order, "refunded:"+order, events.OrderRefunded{OrderID: order, UserID: user, RefundID: "R1", At: now})
		e.SendTwice(t, events.TopicOrderClosed, closed, "closed:"+closed, events.OrderClosed{OrderID: closed, UserID: user, Reason: events.CloseTimeout, ClosedAt: now})
		expect(t, e, p, user, order, push.KindPaid, push.KindShipped, push.KindRefunded)
		expect(t, e, p, user, closed, push.KindClosed)
	})

	t.Run("closed: cancelled is notified, abandoned is not", func(t *testing.T) {
		user, cancelled, abandoned := svctest.Unique("u"), svctest.Unique("O"), svctest.Unique("O")
		e.SendTwice(t, events.TopicOrderClosed, abandoned, "closed:"+abandoned, events.OrderClosed{OrderID: abandoned, UserID: user, Reason: events.CloseAbandoned, ClosedAt: now})
		e.SendTwice(t, events.TopicOrderClosed, cancelled, "closed:"+cancelled, events.OrderClosed{OrderID: cancelled, UserID: user, Reason: events.CloseCancelled, ClosedAt: now})
		expect(t, e, p, user, cancelled, push.KindClosed)
		expect(t, e, p, user, abandoned)
	})

	t.Run("a failing provider delays the text and never doubles it", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			mode  providertest.Mode
			fails int
		}{
			// Three failures are ridden over in place; seven outlast the
			// attempts of both first deliveries (3 each), so the message
			// comes again.
			{"500", providertest.Status500, 3},
			{"drop before applying", providertest.DropBefore, 3},
			{"applied, then the connection dropped", providertest.DropAfter, 3},
			{"500 past the first deliveries", providertest.Status500, 7},
			{"applied and dropped past the first deliveries", providertest.DropAfter, 7},
		} {
			t.Run(tc.name, func(t *testing.T) {
				user, order := svctest.Unique("u"), svctest.Unique("O")
				p.FailKey(providerclient.PathSMS, order+":"+push.KindPaid, tc.fails, tc.mode)
				e.SendTwice(t, events.TopicOrderPaySuccess, order, "paid:"+order, events.OrderPaid{OrderID: order, UserID: user, PayCents: 100, PaidAt: now})
				expect(t, e, p, user, order, push.KindPaid)
			})
		}
	})

	t.Run("a provider that stays down sends the message to the DLQ, and dlqResend brings it back once", func(t *testing.T) {
		user, order := svctest.Unique("u"), svctest.Unique("O")
		key := order + ":" + push.KindPaid
		p.FailKey(providerclient.PathSMS, key, 1_000_000, providertest.Status500)
		e.Send(t, events.TopicOrderPaySuccess, order, "paid:"+order, events.OrderPaid{OrderID: order, UserID: user, PayCents: 100, PaidAt: now})
		ns := e.Cluster.NamesrvAddr()
		dlq := func() string {
			var out bytes.Buffer
			if err := cli.Run(context.Background(), []string{"dlqList", "-n", ns, "-g", events.GroupPush, "-o", "json"}, &out); err != nil {
				return "" // no %DLQ% topic yet
			}
			return out.String()
		}
		// Three deliveries (the first and --max-reconsume 2 more), each
		// tried three times in place, then the dead-letter queue.
		deadline := time.Now().Add(60 * time.Second)
		for !strings.Contains(dlq(), order) {
			if time.Now().After(deadline) {
				t.Fatalf("the message of %s never reached %%DLQ%%%s", order, events.GroupPush)
			}
			time.Sleep(200 * time.Millisecond)
		}
		expect(t, e, p, user, order)

		p.Heal()
		var out bytes.Buffer
		require.NoError(t, cli.Run(context.Background(), []string{"dlqResend", "-n", ns, "-g", events.GroupPush}, &out), out.String())
		deadline = time.Now().Add(60 * time.Second)
		for len(p.SMS(order)) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the resent message of %s was not consumed", order)
			}
			time.Sleep(100 * time.Millisecond)
		}
		expect(t, e, p, user, order, push.KindPaid)
	})

	t.Run("notifications need a token and show only the caller's", func(t *testing.T) {
		for _, tc := range []struct{ name, token string }{
			{"no token", ""}, {"forged token", "v1.u1.99999999999.forged"}, {"admin token is no user", e.Admin()},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, body := e.Do(t, http.MethodGet, "/api/notifications", tc.token, nil)
				require.Equal(t, http.StatusUnauthorized, status, string(body))
				require.Equal(t, "UNAUTHORIZED", svctest.ErrorCode(t, body))
			})
		}
		alice, bob, order := svctest.Unique("alice"), svctest.Unique("bob"), svctest.Unique("O")
		e.SendTwice(t, events.TopicOrderPaySuccess, order, "paid:"+order, events.OrderPaid{OrderID: order, UserID: alice, PayCents: 100, PaidAt: now})
		status, body := e.Do(t, http.MethodGet, "/api/notifications", e.User(bob), nil)
		require.Equal(t, http.StatusOK, status)
		require.JSONEq(t, `[]`, string(body))
		got := list(t, e, alice)
		require.Len(t, got, 1)
		require.Equal(t, order, got[0].OrderID)
		require.Equal(t, push.KindPaid, got[0].Kind)
	})

	t.Run("metrics count provider calls by outcome", func(t *testing.T) {
		status, body := e.Do(t, http.MethodGet, "/metrics", "", nil)
		require.Equal(t, http.StatusOK, status)
		for _, want := range []string{
			`qianlang_provider_calls_total{call="send_sms",outcome="ok"}`,
			`qianlang_provider_calls_total{call="send_sms",outcome="unavailable"}`,
			`qianlang_notifications_sent_total{kind="ORDER_PAID"}`,
			// The failures past one delivery's attempts were redelivered.
			`qianlang_messages_consumed_total{group="push_consumer_group",outcome="retried_ok",topic="TopicOrderPaySuccess"}`,
		} {
			require.Contains(t, string(body), want)
		}
	})
}
