package provider_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/services/dbtest"
	"qianlang.io/services/provider"
)

func TestPaymentNotificationSignedAndRetried(t *testing.T) {
	t.Parallel()
	p := start(t, dbtest.DSN(t, "provider"))
	rc := newReceiver(t, 2)

	open := decode[provider.PaymentAnswer](t, p.call("POST", "/provider/payments", "", provider.PaymentRequest{
		OrderID: "O1", UserID: "u1", Cents: 1234, NotifyURL: rc.URL + "/callbacks/payment"}, 200))
	require.NotEmpty(t, open.PaymentID)
	pay := decode[provider.Payment](t, p.call("GET", "/provider/payments/"+open.PaymentID, "", nil, 200))
	require.Equal(t, provider.PaymentOpen, pay.State)
	require.Nil(t, pay.PaidAt)
	require.Empty(t, p.ledger("O1").Payments, "an open payment is no money yet")

	confirmed := decode[provider.ConfirmAnswer](t, p.call("POST", "/provider/payments/"+open.PaymentID+"/confirm", "", nil, 200))
	require.Equal(t, provider.ConfirmAnswer{PaymentID: open.PaymentID, State: "PAID"}, confirmed)

	acc := rc.waitAccepted(t, 1, 10*time.Second)
	var n provider.PaymentNotification
	require.NoError(t, json.Unmarshal(acc[0], &n))
	require.Equal(t, open.PaymentID, n.PaymentID)
	require.Equal(t, "O1", n.OrderID)
	require.Equal(t, int64(1234), n.Cents)
	paidAt := utc(t, n.PaidAt)

	attempts, _, _ := rc.snapshot()
	require.Len(t, attempts, 3, "two 500s, then the 2xx")
	require.GreaterOrEqual(t, attempts[1].Sub(attempts[0]), 100*time.Millisecond, "first backoff")
	require.GreaterOrEqual(t, attempts[2].Sub(attempts[1]), 200*time.Millisecond, "doubled backoff")

	// A second confirm is a no-op: same answer, one payment, no new notification.
	require.Equal(t, confirmed, decode[provider.ConfirmAnswer](t, p.call("POST", "/provider/payments/"+open.PaymentID+"/confirm", "", nil, 200)))
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, 1, rc.acceptedCount())
	l := p.ledger("O1")
	require.Len(t, l.Payments, 1)
	require.Equal(t, provider.LedgerPayment{PaymentID: open.PaymentID, OrderID: "O1", Cents: 1234, At: paidAt}, l.Payments[0])

	require.Equal(t, 2.0, p.metric(`qianlang_provider_callbacks_retried_total{kind="payment"}`))
	require.Equal(t, 1.0, p.metric(`qianlang_provider_callbacks_delivered_total{kind="payment"}`))
	require.Equal(t, 2.0, p.metric(`qianlang_provider_calls_total{endpoint="confirm",outcome="ok"}`))
}

func TestNotificationDuplicated(t *testing.T) {
	t.Parallel()
	p := start(t, dbtest.DSN(t, "provider"))
	rc := newReceiver(t, 0)
	p.setFaults(map[string]any{"notify_duplicate_rate": 1})

	p.pay("O2", 500, rc.URL)
	acc := rc.waitAccepted(t, 2, 10*time.Second)
	require.JSONEq(t, string(acc[0]), string(acc[1]), "the same notification twice")
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, 2, rc.acceptedCount(), "twice, not more")
	require.Len(t, p.ledger("O2").Payments, 1, "one payment however often it is notified")
}

func TestPaymentRequests(t *testing.T) {
	t.Parallel()
	p := start(t, dbtest.DSN(t, "provider"))
	good := map[string]any{"order_id": "O3", "user_id": "u1", "cents": 100, "notify_url": "http://127.0.0.1:1/cb"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for name, body := range map[string]any{
		"malformed":        "{",
		"no order":         with("order_id", nil),
		"no user":          with("user_id", nil),
		"zero cents":       with("cents", 0),
		"negative cents":   with("cents", -5),
		"no notify_url":    with("notify_url", nil),
		"relative url":     with("notify_url", "/callbacks/payment"),
		"not http":         with("notify_url", "ftp://host/x"),
		"cents as string":  with("cents", "100"),
		"order id too big": with("order_id", string(make([]byte, 200))),
	} {
		t.Run(name, func(t *testing.T) {
			r, err := p.send("POST", "/provider/payments", "", body)
			require.NoError(t, err)
			require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
			require.Equal(t, "BAD_REQUEST", r.code())
		})
	}
	require.Equal(t, "NOT_FOUND", p.call("POST", "/provider/payments/pay_nope/confirm", "", nil, 404).code())
	require.Equal(t, "NOT_FOUND", p.call("GET", "/provider/payments/pay_nope", "", nil, 404).code())

	// Concurrent identical calls with one key open one payment.
	replies := concurrently(8, func(int) reply { return p.try("POST", "/provider/payments", "order-O3", good) })
	for _, a := range answers[provider.PaymentAnswer](t, replies, 200) {
		require.Equal(t, decode[provider.PaymentAnswer](t, replies[0]), a)
	}
	// Without a key every call is a new payment.
	a := decode[provider.PaymentAnswer](t, p.call("POST", "/provider/payments", "", good, 200))
	b := decode[provider.PaymentAnswer](t, p.call("POST", "/provider/payments", "", good, 200))
	require.NotEqual(t, a.PaymentID, b.PaymentID)
}

func TestRefunds(t *testing.T) {
	t.Parallel()
	p := start(t, dbtest.DSN(t, "provider"))
	rc := newReceiver(t, 0)
	pid := p.pay("O4", 1000, rc.URL)

	t.Run("bad requests", func(t *testing.T) {
		for name, c := range map[string]struct {
			key  string
			body any
		}{
			"no key":         {"", provider.RefundRequest{PaymentID: pid, Cents: 1}},
			"malformed":      {"k", "{"},
			"no payment":     {"k", map[string]any{"cents": 1}},
			"zero cents":     {"k", provider.RefundRequest{PaymentID: pid}},
			"negative cents": {"k", provider.RefundRequest{PaymentID: pid, Cents: -1}},
		} {
			r, err := p.send("POST", "/provider/refunds", c.key, c.body)
			require.NoError(t, err)
			require.Equal(t, 400, r.Status, "%s: %s", name, r.Body)
			require.Equal(t, "BAD_REQUEST", r.code(), name)
		}
	})
	require.Equal(t, "NOT_FOUND", p.call("POST", "/provider/refunds", "k404", provider.RefundRequest{PaymentID: "pay_nope", Cents: 1}, 404).code())
	unpaid := decode[provider.PaymentAnswer](t, p.call("POST", "/provider/payments", "", provider.PaymentRequest{OrderID: "O4", UserID: "u1", Cents: 10, NotifyURL: rc.URL}, 200))
	require.Equal(t, "PAYMENT_NOT_PAID", p.call("POST", "/provider/refunds", "kunpaid", provider.RefundRequest{PaymentID: unpaid.PaymentID, Cents: 1}, 409).code())

	// Identical calls racing: one refund, one answer.
	refunds := answers[provider.RefundAnswer](t, concurrently(8, func(int) reply {
		return p.try("POST", "/provider/refunds", "refund-1", provider.RefundRequest{PaymentID: pid, Cents: 600})
	}), 200)
	for _, a := range refunds {
		require.Equal(t, provider.RefundAnswer{RefundID: refunds[0].RefundID, State: "REFUNDED", PaymentID: pid, Cents: 600}, a)
	}
	again := p.call("POST", "/provider/refunds", "refund-1", provider.RefundRequest{PaymentID: pid, Cents: 600}, 200)
	require.Equal(t, "true", again.Header.Get(provider.ReplayedHeader))
	require.Equal(t, refunds[0], decode[provider.RefundAnswer](t, again))

	r := p.call("POST", "/provider/refunds", "refund-2", provider.RefundRequest{PaymentID: pid, Cents: 401}, 409)
	require.Equal(t, "REFUND_EXCEEDS_PAYMENT", r.code())
	p.call("POST", "/provider/refunds", "refund-3", provider.RefundRequest{PaymentID: pid, Cents: 400}, 200)
	require.Equal(t, "REFUND_EXCEEDS_PAYMENT", p.call("POST", "/provider/refunds", "refund-4", provider.RefundRequest{PaymentID: pid, Cents: 1}, 409).code())

	l := p.ledger("O4")
	require.Len(t, l.Refunds, 2)
	require.Equal(t, int64(1000), l.Refunds[0].Cents+l.Refunds[1].Cents)
	for _, rf := range l.Refunds {
		require.Equal(t, pid, rf.PaymentID)
		require.Equal(t, "O4", rf.OrderID)
	}
	require.Equal(t, int64(1000), decode[provider.Payment](t, p.call("GET", "/provider/payments/"+pid, "", nil, 200)).RefundedCents)

	// Refunds with different keys racing never exceed the payment.
	pid2 := p.pay("O5", 1000, rc.URL)
	raced := concurrently(10, func(i int) reply {
		return p.try("POST", "/provider/refunds", fmt.Sprintf("race-%d", i), provider.RefundRequest{PaymentID: pid2, Cents: 300})
	})
	ok := 0
	for _, r := range raced {
		require.Contains(t, []int{200, 409}, r.Status, "%s", r.Body)
		if r.Status == 200 {
			ok++
		}
	}
	require.Equal(t, 3, ok)
	require.Len(t, p.ledger("O5").Refunds, 3)
}

func TestRefundFaultsHaveNoEffect(t *testing.T) {
	t.Parallel()
	p := start(t, dbtest.DSN(t, "provider"))
	rc := newReceiver(t, 0)
	pid := p.pay("O6", 1000, rc.URL)
	p.setFaults(map[string]any{"refund_error_rate": 1})

	var unavailable, dropped int
	for range 30 {
		r, err := p.send("POST", "/provider/refunds", "refund-O6", provider.RefundRequest{PaymentID: pid, Cents: 1000})
		if err != nil {
			dropped++
			continue
		}
		require.Equal(t, 503, r.Status, "%s", r.Body)
		require.Equal(t, "UNAVAILABLE", r.code())
		unavailable++
	}
	require.Positive(t, unavailable, "some answered 503")
	require.Positive(t, dropped, "some dropped")
	require.Empty(t, p.ledger("O6").Refunds)
	require.Equal(t, int64(0), decode[provider.Payment](t, p.call("GET", "/provider/payments/"+pid, "", nil, 200)).RefundedCents)
	require.Equal(t, float64(dropped), p.metric(`qianlang_provider_calls_total{endpoint="refunds",outcome="dropped"}`))
	require.Equal(t, float64(unavailable), p.metric(`qianlang_provider_calls_total{endpoint="refunds",outcome="injected_error"}`))

	// Once the provider heals, the same key makes the refund, for the first time.
	p.setFaults(map[string]any{"refund_error_rate": 0})
	r := p.call("POST", "/provider/refunds", "refund-O6", provider.RefundRequest{PaymentID: pid, Cents: 1000}, 200)
	require.Empty(t, r.Header.Get(provider.ReplayedHeader))
	require.Len(t, p.ledger("O6").Refunds, 1)
}

func TestSMS(t *testing.T) {
	t.Parallel()
	p := start(t, dbtest.DSN(t, "provider"))
	msg := provider.SMSRequest{UserID: "u7", OrderID: "O7", Kind: "ORDER_PAID", Text: "paid"}

	sent := answers[provider.SMSAnswer](t, concurrently(6, func(int) reply { return p.try("POST", "/provider/sms", "O7:ORDER_PAID", msg) }), 200)
	ids := make([]string, len(sent))
	for i, a := range sent {
		ids[i] = a.SMSID
		require.Equal(t, sent[0], a)
	}
	other := msg
	other.Text = "paid, again"
	r := p.call("POST", "/provider/sms", "O7:ORDER_PAID", other, 200)
	require.Equal(t, ids[0], decode[provider.SMSAnswer](t, r).SMSID, "the first answer, whatever the body")
	require.Equal(t, "true", r.Header.Get(provider.ReplayedHeader))

	shipped := provider.SMSRequest{UserID: "u7", OrderID: "O7", Kind: "ORDER_SHIPPED", Text: "shipped"}
	p.call("POST", "/provider/sms", "O7:ORDER_SHIPPED", shipped, 200)
	l := p.ledger("O7")
	require.Len(t, l.SMS, 2)
	require.Equal(t, provider.LedgerSMS{SMSID: ids[0], UserID: "u7", OrderID: "O7", Kind: "ORDER_PAID", Text: "paid", At: l.SMS[0].At}, l.SMS[0])
	require.Equal(t, "ORDER_SHIPPED", l.SMS[1].Kind)

	for name, c := range map[string]struct {
		key  string
		body any
	}{
		"no key":  {"", msg},
		"no user": {"k", provider.SMSRequest{OrderID: "O7", Kind: "K"}},
		"no kind": {"k", provider.SMSRequest{UserID: "u", OrderID: "O7"}},
	} {
		r, err := p.send("POST", "/provider/sms", c.key, c.body)
		require.NoError(t, err)
		require.Equal(t, 400, r.Status, "%s: %s", name, r.Body)
	}

	p.setFaults(map[string]any{"sms_error_rate": 1})
	for range 10 {
		r, err := p.send("POST", "/provider/sms", "O7:ORDER_REFUNDED", provider.SMSRequest{UserID: "u7", OrderID: "O7", Kind: "ORDER_REFUNDED"})
		if err == nil {
			require.Equal(t, 503, r.Status)
		}
	}
	require.Len(t, p.ledger("O7").SMS, 2, "failed calls send nothing")

	p.setFaults(map[string]any{"sms_error_rate": 0, "sms_latency_ms": 300})
	begin := time.Now()
	p.call("POST", "/provider/sms", "O7:ORDER_REFUNDED", provider.SMSRequest{UserID: "u7", OrderID: "O7", Kind: "ORDER_REFUNDED"}, 200)
	require.GreaterOrEqual(t, time.Since(begin), 300*time.Millisecond, "latency")
	require.Len(t, p.ledger("O7").SMS, 3)
}

func TestShipmentDelivered(t *testing.T) {
	t.Parallel()
	p := start(t, dbtest.DSN(t, "provider"))
	rc := newReceiver(t, 1)
	p.setFaults(map[string]any{"delivery_ms": 100})
	req := map[string]any{"order_id": "O8", "address": map[string]string{"name": "Li", "phone": "138", "line": "1 Road"}, "callback_url": rc.URL + "/callbacks/delivery"}

	created := time.Now()
	ship := decode[provider.ShipmentAnswer](t, p.call("POST", "/provider/shipments", "O8", req, 200))
	require.NotEmpty(t, ship.TrackingNo)
	require.NotEmpty(t, ship.Carrier)
	require.Equal(t, ship, decode[provider.ShipmentAnswer](t, p.call("POST", "/provider/shipments", "O8", req, 200)), "idempotent by key")

	acc := rc.waitAccepted(t, 1, 10*time.Second)
	attempts, _, _ := rc.snapshot()
	require.GreaterOrEqual(t, attempts[0].Sub(created), 100*time.Millisecond, "not before delivery_ms")
	var cb provider.DeliveryCallback
	require.NoError(t, json.Unmarshal(acc[0], &cb))
	require.Equal(t, "O8", cb.OrderID)
	require.Equal(t, ship.TrackingNo, cb.TrackingNo)
	require.Equal(t, ship.Carrier, cb.Carrier)
	deliveredAt := utc(t, cb.DeliveredAt)

	l := p.ledger("O8")
	require.Len(t, l.Shipments, 1)
	require.Equal(t, ship.TrackingNo, l.Shipments[0].TrackingNo)
	require.Equal(t, 100*time.Millisecond, deliveredAt.Sub(l.Shipments[0].At))
	require.Equal(t, 1.0, p.metric(`qianlang_provider_callbacks_retried_total{kind="delivery"}`))

	for name, body := range map[string]any{
		"no address":   map[string]any{"order_id": "O8", "callback_url": rc.URL},
		"address text": map[string]any{"order_id": "O8", "address": "1 Road", "callback_url": rc.URL},
		"no callback":  map[string]any{"order_id": "O8", "address": map[string]string{}},
		"no order":     map[string]any{"address": map[string]string{}, "callback_url": rc.URL},
	} {
		r, err := p.send("POST", "/provider/shipments", "k", body)
		require.NoError(t, err)
		require.Equal(t, 400, r.Status, "%s: %s", name, r.Body)
	}
	require.Equal(t, 400, p.call("POST", "/provider/shipments", "", req, 400).Status, "a key is required")

	p.setFaults(map[string]any{"logistics_error_rate": 1})
	for range 10 {
		req["order_id"] = "O9"
		if r, err := p.send("POST", "/provider/shipments", "O9", req); err == nil {
			require.Equal(t, 503, r.Status)
		}
	}
	require.Empty(t, p.ledger("O9").Shipments)
}

func TestLedgerShape(t *testing.T) {
	t.Parallel()
	p := start(t, dbtest.DSN(t, "provider"))
	rc := newReceiver(t, 0)
	require.JSONEq(t, `{"payments":[],"refunds":[],"sms":[],"shipments":[]}`, string(p.call("GET", "/provider/ledger?order_id=nobody", "", nil, 200).Body))

	p.setFaults(map[string]any{"delivery_ms": 0})
	for _, order := range []string{"A1", "A2"} {
		pid := p.pay(order, 700, rc.URL)
		p.call("POST", "/provider/refunds", "r-"+order, provider.RefundRequest{PaymentID: pid, Cents: 200}, 200)
		p.call("POST", "/provider/sms", order+":ORDER_PAID", provider.SMSRequest{UserID: "u1", OrderID: order, Kind: "ORDER_PAID", Text: "t"}, 200)
		p.call("POST", "/provider/shipments", order, map[string]any{"order_id": order, "address": map[string]string{"line": "x"}, "callback_url": rc.URL}, 200)
	}
	var l map[string][]map[string]any
	require.NoError(t, json.Unmarshal(p.call("GET", "/provider/ledger?order_id=A1", "", nil, 200).Body, &l))
	require.Len(t, l, 4)
	want := map[string][]string{
		"payments":  {"payment_id", "cents", "at"},
		"refunds":   {"refund_id", "cents", "at"},
		"sms":       {"user_id", "order_id", "kind", "text", "at"},
		"shipments": {"order_id", "tracking_no", "at"},
	}
	for list, fields := range want {
		require.Len(t, l[list], 1, list)
		for _, f := range fields {
			require.Contains(t, l[list][0], f, "%s.%s", list, f)
		}
		utc(t, l[list][0]["at"].(string))
		if oid, ok := l[list][0]["order_id"]; ok {
			require.Equal(t, "A1", oid)
		}
	}
	require.Equal(t, 700.0, l["payments"][0]["cents"])
	require.Equal(t, 200.0, l["refunds"][0]["cents"])

	all := p.ledger("")
	require.Len(t, all.Payments, 2, "no order_id: every order")
	require.Len(t, all.Shipments, 2)
	rc.waitAccepted(t, 4, 10*time.Second) // two payment notifications, two deliveries
}

func TestFaultsEndpoint(t *testing.T) {
	t.Parallel()
	p := start(t, dbtest.DSN(t, "provider"))
	require.Equal(t, provider.DefaultFaults(), decode[provider.Faults](t, p.call("GET", "/provider/faults", "", nil, 200)))

	for _, c := range []struct {
		body string
		key  string // named in the message
	}{
		{`{"refund_error_rate": 1.5}`, "refund_error_rate"},
		{`{"sms_error_rate": -0.1}`, "sms_error_rate"},
		{`{"logistics_error_rate": "0.2"}`, "logistics_error_rate"},
		{`{"notify_duplicate_rate": null}`, "notify_duplicate_rate"},
		{`{"refund_latency_ms": -1}`, "refund_latency_ms"},
		{`{"sms_latency_ms": 2.5}`, "sms_latency_ms"},
		{`{"delivery_ms": true}`, "delivery_ms"},
		{`{"logistics_latency_ms": 1e12}`, "logistics_latency_ms"},
		{`{"sms_error_rate": 0.3, "refund_error_rate": 2}`, "refund_error_rate"},
		{`{"refund_eror_rate": 0.5}`, "refund_eror_rate"},
		{`[]`, ""},
		{`null`, ""},
		{`{`, ""},
	} {
		t.Run(c.body, func(t *testing.T) {
			r := p.call("PUT", "/provider/faults", "", c.body, 400)
			require.Equal(t, "BAD_REQUEST", r.code())
			var e struct{ Error struct{ Message string } }
			require.NoError(t, json.Unmarshal(r.Body, &e))
			require.Contains(t, e.Error.Message, c.key)
		})
	}
	require.Equal(t, provider.DefaultFaults(), decode[provider.Faults](t, p.call("GET", "/provider/faults", "", nil, 200)), "a refused PUT changes nothing")

	f := p.setFaults(map[string]any{"refund_error_rate": 0.5, "refund_latency_ms": 200, "notify_duplicate_rate": 0.2,
		"sms_error_rate": 0.3, "sms_latency_ms": 100, "logistics_error_rate": 0.2, "logistics_latency_ms": 500, "delivery_ms": 5000})
	want := provider.Faults{RefundErrorRate: 0.5, RefundLatencyMS: 200, NotifyDuplicateRate: 0.2, SMSErrorRate: 0.3,
		SMSLatencyMS: 100, LogisticsErrorRate: 0.2, LogisticsLatencyMS: 500, DeliveryMS: 5000}
	require.Equal(t, want, f)
	want.SMSErrorRate = 0
	require.Equal(t, want, p.setFaults(map[string]any{"sms_error_rate": 0}), "a subset changes only its keys")
	require.Equal(t, want, p.setFaults(map[string]any{}))
	require.Equal(t, provider.DefaultFaults(), decode[provider.Faults](t, p.call("DELETE", "/provider/faults", "", nil, 200)))
}

// TestRestartKeepsFaultsAndCallbacks stops the provider while a
// notification is undelivered: the next run delivers it, with the faults set
// before.
func TestRestartKeepsFaultsAndCallbacks(t *testing.T) {
	t.Parallel()
	dsn := dbtest.DSN(t, "provider")
	rc := newReceiver(t, 1<<30)
	first := start(t, dsn)
	first.setFaults(map[string]any{"sms_error_rate": 0.25, "delivery_ms": 100})
	first.pay("R1", 900, rc.URL)
	require.Eventually(t, func() bool { a, _, _ := rc.snapshot(); return len(a) >= 2 }, 10*time.Second, 10*time.Millisecond)
	first.stop()
	require.Zero(t, rc.acceptedCount())

	rc.setFailFirst(0)
	second := start(t, dsn)
	require.Equal(t, 0.25, decode[provider.Faults](t, second.call("GET", "/provider/faults", "", nil, 200)).SMSErrorRate)
	require.Equal(t, int64(100), second.setFaults(map[string]any{}).DeliveryMS)
	var n provider.PaymentNotification
	require.NoError(t, json.Unmarshal(rc.waitAccepted(t, 1, 10*time.Second)[0], &n))
	require.Equal(t, "R1", n.OrderID)
}

// concurrently runs fn(0..n-1) at once and returns the results in order.
func concurrently[T any](n int, fn func(i int) T) []T {
	out := make([]T, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}

// answers checks that every reply is want and decodes each.
func answers[T any](t *testing.T, replies []reply, want int) []T {
	t.Helper()
	out := make([]T, len(replies))
	for i, r := range replies {
		require.Equal(t, want, r.Status, "%s", r.Body)
		out[i] = decode[T](t, r)
	}
	return out
}
