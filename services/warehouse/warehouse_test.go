package warehouse_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/broker"
	"qianlang.io/mq/mqtest"
	"qianlang.io/services/auth"
	"qianlang.io/services/bus"
	"qianlang.io/services/events"
	"qianlang.io/services/providerclient"
	"qianlang.io/services/providerclient/providertest"
	"qianlang.io/services/svctest"
	"qianlang.io/services/warehouse"
)

// fakeOrder answers may-I-ship requests as the order service would: GO
// unless told otherwise for an order, and can stay silent for a while.
type fakeOrder struct {
	mu       sync.Mutex
	answers  map[string]string // order → answer; GO when absent
	silent   map[string]int    // order → requests left unanswered
	requests map[string]int
}

func (f *fakeOrder) respond(_ context.Context, m *bus.Message) (any, error) {
	var req events.ShipmentStartRequest
	if err := m.Decode(&req); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests[req.OrderID]++
	if f.silent[req.OrderID] > 0 {
		f.silent[req.OrderID]--
		return nil, errSilent
	}
	answer, ok := f.answers[req.OrderID]
	if !ok {
		answer = events.ShipmentGo
	}
	return events.ShipmentStartReply{Result: answer}, nil
}

type silentErr struct{}

func (silentErr) Error() string { return "not answering" }

var errSilent error = silentErr{}

func (f *fakeOrder) set(orderID, answer string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[orderID] = answer
}

func (f *fakeOrder) silence(orderID string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.silent[orderID] = n
}

func (f *fakeOrder) asked(orderID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[orderID]
}

// watcher collects the warehouse's events as a downstream consumer does.
type watcher struct {
	mu        sync.Mutex
	shipped   map[string][]events.OrderShipped
	delivered map[string][]events.OrderDelivered
	ids       map[string][]string // order → event ids seen
}

func (w *watcher) handle(_ context.Context, m *bus.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch m.Topic {
	case events.TopicOrderShipped:
		var ev events.OrderShipped
		if err := m.Decode(&ev); err != nil {
			return err
		}
		w.shipped[ev.OrderID] = append(w.shipped[ev.OrderID], ev)
		w.ids[ev.OrderID] = append(w.ids[ev.OrderID], m.EventID)
	case events.TopicOrderDelivered:
		var ev events.OrderDelivered
		if err := m.Decode(&ev); err != nil {
			return err
		}
		w.delivered[ev.OrderID] = append(w.delivered[ev.OrderID], ev)
		w.ids[ev.OrderID] = append(w.ids[ev.OrderID], m.EventID)
	}
	return nil
}

func (w *watcher) get(orderID string) ([]events.OrderShipped, []events.OrderDelivered, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]events.OrderShipped(nil), w.shipped[orderID]...), append([]events.OrderDelivered(nil), w.delivered[orderID]...),
		append([]string(nil), w.ids[orderID]...)
}

type env struct {
	*svctest.Env
	provider *providertest.Server
	order    *fakeOrder
	watch    *watcher
}

func paid(orderID, userID string) events.OrderPaid {
	return events.OrderPaid{OrderID: orderID, UserID: userID, PaymentID: "P-" + orderID, PayCents: 5000,
		Items: []events.Line{{SKUID: "sku1", Qty: 1, PriceCents: 5000}},
		// Paid long ago: its handling time is over, so it ships at once.
		Address: events.Address{Name: "Li Lei", Phone: "13800000000", Line: "1 Qianlang Road"}, PaidAt: time.Now().UTC().Add(-time.Hour)}
}

// payTwice sends an order's PaySuccess twice and waits until both
// deliveries were handled.
func (e *env) payTwice(t *testing.T, orderID, userID string) {
	t.Helper()
	e.SendTwice(t, events.TopicOrderPaySuccess, orderID, "paid:"+orderID, paid(orderID, userID))
}

func (e *env) state(t *testing.T, orderID string) string {
	t.Helper()
	var s string
	err := e.DB.QueryRow("SELECT state FROM shipments WHERE order_id = ?", orderID).Scan(&s)
	if err == sql.ErrNoRows {
		return ""
	}
	require.NoError(t, err)
	return s
}

// settle is how long a second message, were there one, would take to
// reach the watcher.
const settle = 500 * time.Millisecond

// expectShipped checks, once the PaySuccess deliveries were handled, that
// orderID has one shipment at the provider and one TopicOrderShipped.
func (e *env) expectShipped(t *testing.T, orderID, userID string) {
	t.Helper()
	require.Equal(t, warehouse.StateShipped, e.state(t, orderID))
	deadline := time.Now().Add(30 * time.Second)
	for shipped, _, _ := e.watch.get(orderID); len(shipped) == 0; shipped, _, _ = e.watch.get(orderID) {
		if time.Now().After(deadline) {
			t.Fatalf("no TopicOrderShipped for %s", orderID)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(settle)
	shipped, _, ids := e.watch.get(orderID)
	require.Len(t, shipped, 1)
	require.Equal(t, []string{"shipped:" + orderID}, ids)
	at := e.provider.Shipments(orderID)
	require.Len(t, at, 1, "one shipment at the provider")
	require.Equal(t, orderID, at[0].Key, "the idempotency key is the order id")
	require.Equal(t, e.Base+"/callbacks/delivery", at[0].Req.CallbackURL)
	require.Equal(t, "Li Lei", at[0].Req.Address.Name)
	require.Equal(t, userID, shipped[0].UserID)
	require.NotEmpty(t, shipped[0].TrackingNo)
	require.Equal(t, "FAKE-EXPRESS", shipped[0].Carrier)
}

// deliver posts a delivery callback signed with secret and returns the
// status.
func (e *env) deliver(t *testing.T, secret string, n providerclient.DeliveryNotification) (int, string) {
	t.Helper()
	body, err := json.Marshal(n)
	require.NoError(t, err)
	return e.post(t, body, auth.SignBody(secret, body))
}

func (e *env) post(t *testing.T, body []byte, sig string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.Base+"/callbacks/delivery", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if sig != "" {
		req.Header.Set(auth.SignatureHeader, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// quickRedelivery makes a failed delivery come again after 1 s instead of
// RocketMQ's 10 s, 30 s, 1 min, ….
var quickRedelivery = mqtest.Options{Broker: func(_ int, c *broker.Config) {
	c.MessageDelayLevel = strings.TrimSpace(strings.Repeat("1s ", 18))
}}

// TestWarehouse runs the service once, with one queue cluster, one fake
// provider, a fake order service answering may-I-ship, and a watcher of
// the events it publishes.
func TestWarehouse(t *testing.T) {
	p := providertest.New(t)
	addr := svctest.FreeAddr(t)
	se := svctest.StartWith(t, warehouse.Spec(), svctest.Options{
		Listen: addr,
		Args: []string{"--provider", p.URL, "--public-url", "http://" + addr,
			"--provider-timeout", "500ms", "--ship-request-timeout", "1s", "--ship-after", "1s"},
		Queue: quickRedelivery,
	}, events.GroupWMS,
		events.TopicOrderPaySuccess, events.TopicShipmentStart, events.TopicOrderShipped, events.TopicOrderDelivered, events.TopicShipmentDue,
		// Made ahead, so that the consumers route their first redelivery
		// at once rather than at their next route refresh, 30 s later.
		"%RETRY%"+events.GroupWMS, "%RETRY%"+events.GroupShipmentStart)
	ns := se.Cluster.NamesrvAddrs()

	order := &fakeOrder{answers: map[string]string{}, silent: map[string]int{}, requests: map[string]int{}}
	replies, err := bus.NewProducer(bus.ProducerOptions{NameServers: ns, Group: "test_order_replies"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = replies.Close() })
	responder, err := bus.NewConsumer(bus.ConsumerOptions{NameServers: ns, Group: events.GroupShipmentStart, Replies: replies})
	require.NoError(t, err)
	require.NoError(t, responder.Respond(events.TopicShipmentStart, order.respond))
	require.NoError(t, responder.Start())
	t.Cleanup(func() { _ = responder.Close() })

	watch := &watcher{shipped: map[string][]events.OrderShipped{}, delivered: map[string][]events.OrderDelivered{}, ids: map[string][]string{}}
	watchers, err := bus.NewConsumer(bus.ConsumerOptions{NameServers: ns, Group: "test_wms_watch"})
	require.NoError(t, err)
	require.NoError(t, watchers.Handle(events.TopicOrderShipped, watch.handle))
	require.NoError(t, watchers.Handle(events.TopicOrderDelivered, watch.handle))
	require.NoError(t, watchers.Start())
	t.Cleanup(func() { _ = watchers.Close() })
	e := &env{Env: se, provider: p, order: order, watch: watch}

	var shippedOrder string
	t.Run("a fresh payment waits out the handling time, then ships once", func(t *testing.T) {
		o, u := svctest.Unique("O"), svctest.Unique("u")
		ev := paid(o, u)
		ev.PaidAt = time.Now().UTC()
		base := e.Consumed(t, events.TopicShipmentDue)
		e.SendTwice(t, events.TopicOrderPaySuccess, o, "paid:"+o, ev)
		require.Equal(t, "", e.state(t, o), "not shipped within --ship-after")
		e.WaitConsumed(t, events.TopicShipmentDue, base+1)
		require.GreaterOrEqual(t, time.Since(ev.PaidAt), time.Second, "shipped before --ship-after")
		e.expectShipped(t, o, u)
	})

	t.Run("GO ships once even when the payment comes twice", func(t *testing.T) {
		o, u := svctest.Unique("O"), svctest.Unique("u")
		e.payTwice(t, o, u)
		e.expectShipped(t, o, u)
		require.GreaterOrEqual(t, order.asked(o), 1)
		shippedOrder = o
	})

	t.Run("CANCELLED ships nothing", func(t *testing.T) {
		o, u := svctest.Unique("O"), svctest.Unique("u")
		order.set(o, events.ShipmentCancelled)
		e.payTwice(t, o, u)
		require.Equal(t, warehouse.StateCancelled, e.state(t, o))
		time.Sleep(settle)
		require.Empty(t, p.Shipments(o))
		shipped, _, _ := watch.get(o)
		require.Empty(t, shipped)
	})

	t.Run("an unanswered request is asked again", func(t *testing.T) {
		o, u := svctest.Unique("O"), svctest.Unique("u")
		order.silence(o, 3)
		base := e.Consumed(t, events.TopicOrderPaySuccess)
		e.Send(t, events.TopicOrderPaySuccess, o, "paid:"+o, paid(o, u))
		e.WaitConsumed(t, events.TopicOrderPaySuccess, base+1)
		e.expectShipped(t, o, u)
		require.GreaterOrEqual(t, order.asked(o), 4)
	})

	t.Run("a failing provider ships once", func(t *testing.T) {
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
				o, u := svctest.Unique("O"), svctest.Unique("u")
				p.FailKey(providerclient.PathShipments, o, tc.fails, tc.mode)
				e.payTwice(t, o, u)
				e.expectShipped(t, o, u)
			})
		}
	})

	t.Run("a delivery is recorded and published once", func(t *testing.T) {
		require.NotEmpty(t, shippedOrder)
		shipped, _, _ := watch.get(shippedOrder)
		n := providerclient.DeliveryNotification{OrderID: shippedOrder, TrackingNo: shipped[0].TrackingNo, Carrier: shipped[0].Carrier,
			DeliveredAt: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
		for range 2 {
			status, body := e.deliver(t, svctest.Secrets.ProviderSecret, n)
			require.Equal(t, http.StatusOK, status, body)
			// Answered after the commit: the row says so already.
			require.Equal(t, warehouse.StateDelivered, e.state(t, shippedOrder))
		}
		require.Eventually(t, func() bool {
			_, delivered, _ := watch.get(shippedOrder)
			return len(delivered) > 0
		}, 30*time.Second, 20*time.Millisecond)
		time.Sleep(settle)
		_, delivered, ids := watch.get(shippedOrder)
		require.Len(t, delivered, 1)
		require.Equal(t, []string{"shipped:" + shippedOrder, "delivered:" + shippedOrder}, ids)
		require.Equal(t, shipped[0].UserID, delivered[0].UserID)
		require.Equal(t, shipped[0].TrackingNo, delivered[0].TrackingNo)
		require.True(t, n.DeliveredAt.Equal(delivered[0].At))
	})

	t.Run("callback answers", func(t *testing.T) {
		body := []byte(`{"order_id":"` + shippedOrder + `","tracking_no":"T","carrier":"C","delivered_at":"2026-12-01T08:00:00Z"}`)
		for _, tc := range []struct {
			name   string
			body   []byte
			sig    string
			status int
			code   string
		}{
			{"no signature", body, "", http.StatusUnauthorized, "UNAUTHORIZED"},
			{"bad signature", body, auth.SignBody("another-secret-0123456789", body), http.StatusUnauthorized, "UNAUTHORIZED"},
			{"tampered body", append([]byte(nil), bytes.Replace(body, []byte("T"), []byte("X"), 1)...), auth.SignBody(svctest.Secrets.ProviderSecret, body), http.StatusUnauthorized, "UNAUTHORIZED"},
			{"malformed", []byte(`{"order_id":`), auth.SignBody(svctest.Secrets.ProviderSecret, []byte(`{"order_id":`)), http.StatusBadRequest, "BAD_REQUEST"},
			{"no order", []byte(`{}`), auth.SignBody(svctest.Secrets.ProviderSecret, []byte(`{}`)), http.StatusBadRequest, "BAD_REQUEST"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, got := e.post(t, tc.body, tc.sig)
				require.Equal(t, tc.status, status, got)
				require.Equal(t, tc.code, svctest.ErrorCode(t, []byte(got)))
			})
		}
		unknown := svctest.Unique("O")
		status, got := e.deliver(t, svctest.Secrets.ProviderSecret, providerclient.DeliveryNotification{OrderID: unknown, TrackingNo: "T"})
		require.Equal(t, http.StatusNotFound, status, got)
		_, delivered, _ := watch.get(unknown)
		require.Empty(t, delivered)
	})

	t.Run("metrics count provider calls by outcome", func(t *testing.T) {
		status, raw := e.Do(t, http.MethodGet, "/metrics", "", nil)
		require.Equal(t, http.StatusOK, status)
		body := string(raw)
		require.Contains(t, body, `qianlang_provider_calls_total{call="create_shipment",outcome="ok"}`)
		require.Contains(t, body, `qianlang_provider_calls_total{call="create_shipment",outcome="unavailable"}`)
		require.Contains(t, body, `qianlang_shipments_total{outcome="CANCELLED"}`)
		require.Contains(t, body, `qianlang_shipments_total{outcome="DELIVERED"} 1`)
		// The failures past the first deliveries were redelivered.
		require.Contains(t, body, `qianlang_messages_consumed_total{group="wms_consumer_group",outcome="retried_ok",topic="TopicOrderPaySuccess"}`)
	})
}
