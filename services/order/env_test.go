package order_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/broker"
	"qianlang.io/mq/mqtest"
	"qianlang.io/services/auth"
	"qianlang.io/services/bus"
	"qianlang.io/services/dbtest"
	"qianlang.io/services/events"
	"qianlang.io/services/order"
	"qianlang.io/services/providerclient"
	"qianlang.io/services/providerclient/providertest"
	"qianlang.io/services/svctest"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// requestTimeout bounds the service's stock and coupon requests in tests.
const requestTimeout = 2 * time.Second

// env is the order service in-process (svctest: one queue cluster, one
// database) with a fake provider, fake inventory and marketing responders,
// and an observer of the order service's events.
type env struct {
	*svctest.Env
	provider *providertest.Server
	stock    *fakeStock
	coupons  *fakeCoupons
	seen     *observer
}

func startEnv(t *testing.T) *env {
	t.Helper()
	e := &env{provider: providertest.New(t), stock: &fakeStock{}, coupons: &fakeCoupons{}, seen: &observer{}}
	topics := slices.Clone(events.Topics)
	// The broker makes a group's retry topic at its first redelivery, and
	// the consumer would learn its route only at its next poll (30 s).
	for _, group := range []string{events.GroupOrderTimeout, events.GroupRefund, events.GroupOrderShipping, events.GroupShipmentStart} {
		topics = append(topics, "%RETRY%"+group)
	}
	addr := svctest.FreeAddr(t)
	cfg := order.DefaultConfig()
	cfg.RequestTimeout = requestTimeout
	e.Env = svctest.StartWith(t, order.NewSpec(cfg), svctest.Options{
		Listen: addr,
		// Redeliveries a second apart instead of RocketMQ's 10 s, 30 s, 1 min…
		Queue: mqtest.Options{Broker: func(_ int, c *broker.Config) { c.MessageDelayLevel = strings.TrimSpace(strings.Repeat("1s ", 18)) }},
		Args: []string{"--provider", e.provider.URL, "--public-url", "http://" + addr,
			"--order-timeout", "2s", "--seckill-order-rate", "500"},
	}, events.GroupRefund, topics...)

	ns := e.Cluster.NamesrvAddrs()
	consumer := func(group string, register func(*bus.Consumer) error) {
		c, err := bus.NewConsumer(bus.ConsumerOptions{NameServers: ns, Group: group, Replies: e.Producer})
		require.NoError(t, err)
		require.NoError(t, register(c))
		require.NoError(t, c.Start())
		t.Cleanup(func() { _ = c.Close() })
	}
	consumer(events.GroupStockLock, func(c *bus.Consumer) error { return c.Respond(events.TopicStockLock, e.stock.respond) })
	consumer(events.GroupCouponReserve, func(c *bus.Consumer) error { return c.Respond(events.TopicCouponReserve, e.coupons.respond) })
	consumer("test_observer_group", func(c *bus.Consumer) error {
		for _, topic := range []string{events.TopicOrderPaySuccess, events.TopicOrderClosed, events.TopicOrderRefund,
			events.TopicOrderRefunded, events.TopicPaymentRefund} {
			if err := c.Handle(topic, e.seen.handle); err != nil {
				return err
			}
		}
		return nil
	})
	e.warmUp(t)
	return e
}

// warmUp waits until every consumer group has its queues: a placement
// succeeds, its close is seen, and the service answers a shipment request.
func (e *env) warmUp(t *testing.T) {
	t.Helper()
	tok := e.User("warmup")
	var id string
	i := 0
	require.Eventually(t, func() bool {
		i++
		st, body := e.call(t, "POST", "/api/orders", tok, fmt.Sprintf("warm-%d", i), placeBody(nil, "", item("sku-a", 1)))
		if st != http.StatusCreated {
			return false
		}
		id = decode[order.PlacedView](t, body).OrderID
		return true
	}, 60*time.Second, 100*time.Millisecond, "no placement succeeded")
	st, _ := e.call(t, "POST", "/api/orders/"+id+"/cancel", tok, "", nil)
	require.Equal(t, http.StatusOK, st)
	e.seen.wait(t, events.TopicOrderClosed, "closed:"+id)
	require.Eventually(t, func() bool {
		_, err := e.shipmentStart(id, time.Second)
		return err == nil
	}, 60*time.Second, 100*time.Millisecond, "shipment responder did not answer")
}

// in returns the service under test counting group's deliveries
// (svctest.Env.WaitConsumed).
func (e *env) in(group string) *svctest.Env {
	c := *e.Env
	c.Group = group
	return &c
}

// rows runs a COUNT query on the service's database.
func (e *env) rows(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, e.DB.QueryRow(q, args...).Scan(&n))
	return n
}

// ---- HTTP helpers

func (e *env) login(t *testing.T, user string) string {
	t.Helper()
	st, body := e.call(t, "POST", "/api/login", "", "", map[string]string{"user_id": user})
	require.Equal(t, http.StatusOK, st, string(body))
	return decode[struct {
		Token string `json:"token"`
	}](t, body).Token
}

// call sends a request with an optional token, Idempotency-Key and body
// (a string is sent as it is, anything else as JSON).
func (e *env) call(t *testing.T, method, path, token, key string, body any) (int, []byte) {
	t.Helper()
	var hdr map[string]string
	if key != "" {
		hdr = map[string]string{"Idempotency-Key": key}
	}
	return e.DoWith(t, method, path, token, hdr, body)
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(b, &v), string(b))
	return v
}

func item(sku string, qty int) map[string]any { return map[string]any{"sku_id": sku, "qty": qty} }

func placeBody(address map[string]any, coupon string, items ...map[string]any) map[string]any {
	if address == nil {
		address = map[string]any{"name": "Li Lei", "phone": "13800000000", "line": "1 Binjiang Road"}
	}
	b := map[string]any{"items": items, "address": address}
	if coupon != "" {
		b["coupon_id"] = coupon
	}
	return b
}

func (e *env) getOrder(t *testing.T, token, id string) order.OrderView {
	t.Helper()
	st, body := e.call(t, "GET", "/api/orders/"+id, token, "", nil)
	require.Equal(t, http.StatusOK, st, string(body))
	return decode[order.OrderView](t, body)
}

// callback posts a payment notification signed with the provider's secret
// (or with sig when not empty).
func (e *env) callback(t *testing.T, n providerclient.PaymentNotification, sig string) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(n)
	require.NoError(t, err)
	if sig == "" {
		sig = auth.SignBody(svctest.Secrets.ProviderSecret, b)
	}
	req, err := http.NewRequest("POST", e.Base+order.CallbackPath, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set(auth.SignatureHeader, sig)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (e *env) shipmentStart(orderID string, timeout time.Duration) (string, error) {
	var reply events.ShipmentStartReply
	err := e.Producer.Request(context.Background(), events.TopicShipmentStart, events.Key(orderID),
		events.ShipmentStartRequest{OrderID: orderID}, &reply, timeout)
	return reply.Result, err
}

// ---- fake inventory and marketing

// fakeStock answers stock lock requests: sku-a (10.00) and sku-b (2.50)
// lock; sku-oos is out of stock; sku-slow answers after the service gave
// up; anything else is unknown.
type fakeStock struct {
	mu   sync.Mutex
	reqs []events.StockLockRequest
}

var prices = map[string]events.Line{"sku-a": {PriceCents: 1000, CostCents: 600}, "sku-b": {PriceCents: 250, CostCents: 100}}

func (f *fakeStock) respond(_ context.Context, m *bus.Message) (any, error) {
	var req events.StockLockRequest
	if err := m.Decode(&req); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	reply := events.StockLockReply{Result: events.StockLocked}
	for _, l := range req.Items {
		p, ok := prices[l.SKUID]
		switch {
		case l.SKUID == "sku-slow":
			time.Sleep(requestTimeout + 500*time.Millisecond)
			p = events.Line{PriceCents: 1}
		case l.SKUID == "sku-oos":
			return events.StockLockReply{Result: events.StockOutOfStock, SKUID: l.SKUID}, nil
		case !ok:
			return events.StockLockReply{Result: events.StockUnknownSKU, SKUID: l.SKUID}, nil
		}
		reply.Items = append(reply.Items, events.Line{SKUID: l.SKUID, Qty: l.Qty, PriceCents: p.PriceCents, CostCents: p.CostCents})
	}
	return reply, nil
}

// ordersWith returns the order ids of the lock requests with a line of sku.
func (f *fakeStock) ordersWith(sku string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.reqs {
		if slices.ContainsFunc(r.Items, func(l events.Line) bool { return l.SKUID == sku }) && !slices.Contains(out, r.OrderID) {
			out = append(out, r.OrderID)
		}
	}
	return out
}

// fakeCoupons answers reservations: c-1000 takes 10.00 off, c-huge more
// than any order, anything else is unavailable.
type fakeCoupons struct {
	mu   sync.Mutex
	reqs []events.CouponReserveRequest
}

func (f *fakeCoupons) respond(_ context.Context, m *bus.Message) (any, error) {
	var req events.CouponReserveRequest
	if err := m.Decode(&req); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	switch req.CouponID {
	case "c-1000":
		return events.CouponReserveReply{Result: events.CouponReserved, AmountCents: 1000}, nil
	case "c-huge":
		return events.CouponReserveReply{Result: events.CouponReserved, AmountCents: 1_000_000_000}, nil
	}
	return events.CouponReserveReply{Result: events.CouponUnavailable, Reason: "unknown coupon"}, nil
}

func (f *fakeCoupons) request(orderID string) (events.CouponReserveRequest, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.reqs {
		if r.OrderID == orderID {
			return r, true
		}
	}
	return events.CouponReserveRequest{}, false
}

// ---- observer of the service's events

type seenMsg struct {
	Topic, EventID string
	Body           []byte
}

type observer struct {
	mu   sync.Mutex
	msgs []seenMsg
}

func (o *observer) handle(_ context.Context, m *bus.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs = append(o.msgs, seenMsg{Topic: m.Topic, EventID: m.EventID, Body: m.Body})
	return nil
}

func (o *observer) count(topic, eventID string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, m := range o.msgs {
		if m.Topic == topic && m.EventID == eventID {
			n++
		}
	}
	return n
}

// wait waits for a message and returns its body.
func (o *observer) wait(t *testing.T, topic, eventID string) []byte {
	t.Helper()
	var body []byte
	require.Eventually(t, func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, m := range o.msgs {
			if m.Topic == topic && m.EventID == eventID {
				body = m.Body
				return true
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "no %s %s", topic, eventID)
	return body
}
