// Package acceptance drives the whole platform, started by qlstack, through
// its outside contract only (../shared/docs/platform-contract.md): the
// gateway API, the provider simulator and stack.json. Every run ends with
// the invariant checker.
package acceptance

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/services/invariant"
	"qianlang.io/services/stacktest"
)

const orderTimeout = 6 * time.Second

// TestPlatform starts one stack and runs the contract's flows on it in
// order; the last step checks every invariant over all they did. Every
// service handles each delivery twice (QIANLANG_FAULTS=redeliver) and the
// provider notifies half of the time twice, so every flow also proves its
// consumers idempotent.
func TestPlatform(t *testing.T) {
	t.Setenv("QIANLANG_FAULTS", "redeliver")
	s := stacktest.Start(t, stacktest.Options{Groups: 1, OrderTimeout: orderTimeout, Args: []string{"--ship-after", "3s"}})
	a := newAPI(t, s)
	a.faults(map[string]any{"delivery_ms": 500, "notify_duplicate_rate": 0.5})
	a.stock("sku-phone", 2500, 1500, 100)
	a.stock("sku-case", 900, 300, 5)

	steps := []struct {
		name string
		run  func(t *testing.T, a *api)
	}{
		{"BadInput", badInput},
		{"HappyPath", happyPath},
		{"OutOfStockAndCoupons", outOfStockAndCoupons},
		{"CancelBeforePay", cancelBeforePay},
		{"RefundAfterPayWithFailingProvider", refundAfterPay},
		{"UnpaidClosesAndLatePaymentIsRefunded", unpaidCloses},
	}
	for _, st := range steps {
		if !t.Run(st.name, func(t *testing.T) { a.t = t; st.run(t, a) }) {
			return
		}
	}
	a.t = t
	checkInvariants(t, a, 2*time.Minute)
}

// checkInvariants waits for the platform to settle (no order REFUNDING,
// none PAID still waiting for its shipment) and requires every invariant.
func checkInvariants(t *testing.T, a *api, within time.Duration) {
	t.Helper()
	ctx := context.Background()
	var rep invariant.Report
	deadline := time.Now().Add(within)
	for {
		var err error
		rep, err = invariant.Check(ctx, a.inv, a.world)
		require.NoError(t, err)
		if rep.OK() || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("invariants:\n%s", rep)
	require.True(t, rep.OK(), "invariants:\n%s", rep)
}

func badInput(t *testing.T, a *api) {
	tok := a.token("u-bad")
	valid := map[string]any{"items": []map[string]any{{"sku_id": "sku-phone", "qty": 1}}, "address": address}
	key := map[string]string{"Idempotency-Key": "k1"}
	cases := []struct {
		name   string
		method string
		path   string
		token  string
		body   any
		raw    string
		hdr    map[string]string
		status int
		code   string
	}{
		{"no token", "GET", "/api/orders", "", nil, "", nil, 401, "UNAUTHORIZED"},
		{"forged token", "GET", "/api/orders", tok + "x", nil, "", nil, 401, "UNAUTHORIZED"},
		{"user on admin", "PUT", "/api/admin/skus/x", tok, map[string]any{"name": "x", "price_cents": 1, "cost_cents": 1, "stock": 1}, "", nil, 403, "FORBIDDEN"},
		{"no token on admin", "PUT", "/api/admin/skus/x", "", map[string]any{"name": "x", "price_cents": 1, "cost_cents": 1, "stock": 1}, "", nil, 401, "UNAUTHORIZED"},
		{"unknown sku", "GET", "/api/skus/nope", "", nil, "", nil, 404, "NOT_FOUND"},
		{"unknown order", "GET", "/api/orders/nope", tok, nil, "", nil, 404, "NOT_FOUND"},
		{"bad json", "POST", "/api/orders", tok, nil, "{", key, 400, "BAD_REQUEST"},
		{"no lines", "POST", "/api/orders", tok, map[string]any{"items": []any{}, "address": address}, "", key, 400, "BAD_REQUEST"},
		{"qty 0", "POST", "/api/orders", tok, map[string]any{"items": []map[string]any{{"sku_id": "sku-phone", "qty": 0}}, "address": address}, "", key, 400, "BAD_REQUEST"},
		{"qty 100", "POST", "/api/orders", tok, map[string]any{"items": []map[string]any{{"sku_id": "sku-phone", "qty": 100}}, "address": address}, "", key, 400, "BAD_REQUEST"},
		{"unknown sku in order", "POST", "/api/orders", tok, map[string]any{"items": []map[string]any{{"sku_id": "nope", "qty": 1}}, "address": address}, "", key, 400, "BAD_REQUEST"},
		{"no address", "POST", "/api/orders", tok, map[string]any{"items": []map[string]any{{"sku_id": "sku-phone", "qty": 1}}}, "", key, 400, "BAD_REQUEST"},
		{"51 lines", "POST", "/api/orders", tok, map[string]any{"items": lines(51), "address": address}, "", key, 400, "BAD_REQUEST"},
		{"no idempotency key", "POST", "/api/orders", tok, valid, "", nil, 400, "BAD_REQUEST"},
		{"login without user", "POST", "/api/login", "", map[string]any{}, "", nil, 400, "BAD_REQUEST"},
		{"no such endpoint", "GET", "/api/nope", tok, nil, "", nil, 404, "NOT_FOUND"},
	}
	for _, tc := range cases {
		var r reply
		if tc.raw != "" {
			hdr := map[string]string{}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			r = a.raw(tc.method, a.s.Gateway+tc.path, tc.token, []byte(tc.raw), hdr)
		} else {
			r = a.call(tc.method, tc.path, tc.token, tc.body, tc.hdr)
		}
		require.Equal(t, tc.status, r.Status, "%s: %s", tc.name, r.Body)
		require.Equal(t, tc.code, r.errCode(), "%s: %s", tc.name, r.Body)
		require.True(t, strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"), "%s: content type %q", tc.name, r.Header.Get("Content-Type"))
	}
	// Nothing of the above locked stock.
	var k invariant.SKU
	require.NoError(t, a.inv.Get(context.Background(), "", "/api/skus/sku-phone", &k))
	require.Zero(t, k.Locked)

	// Another user's order is 404 to read, pay and cancel.
	p := a.place("u-owner", "own-1", "sku-phone", 1, "")
	thief := a.token("u-thief")
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/orders/" + p.OrderID}, {"POST", "/api/orders/" + p.OrderID + "/pay"}, {"POST", "/api/orders/" + p.OrderID + "/cancel"},
	} {
		r := a.call(c.method, c.path, thief, nil, nil)
		require.Equal(t, http.StatusNotFound, r.Status, "%s %s: %s", c.method, c.path, r.Body)
	}
	r := a.call("POST", "/api/orders/"+p.OrderID+"/cancel", a.token("u-owner"), nil, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
}

func lines(n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = map[string]any{"sku_id": "sku-phone", "qty": 1}
	}
	return out
}

func happyPath(t *testing.T, a *api) {
	a.coupon("c-happy", "u-happy", 500, 1000)
	p := a.place("u-happy", "happy-1", "sku-phone", 2, "c-happy")
	require.Equal(t, int64(5000), p.TotalCents)
	require.Equal(t, int64(500), p.DiscountCents)
	require.Equal(t, int64(4500), p.PayCents)

	// The same key again: the same order, 200, nothing locked twice.
	r := a.call("POST", "/api/orders", a.token("u-happy"), map[string]any{
		"items": []map[string]any{{"sku_id": "sku-phone", "qty": 2}}, "coupon_id": "c-happy", "address": address},
		map[string]string{"Idempotency-Key": "happy-1"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var again placed
	r.json(t, &again)
	require.Equal(t, p.OrderID, again.OrderID)

	a.pay("u-happy", p.OrderID)
	o := a.waitState("u-happy", p.OrderID, "COMPLETED", 60*time.Second)
	require.NotNil(t, o.Shipment)
	require.NotEmpty(t, o.Shipment.TrackingNo)

	var pts invariant.Points
	require.NoError(t, a.inv.Get(context.Background(), "u-happy", "/api/points", &pts))
	require.Equal(t, int64(45), pts.Balance)
	eventually(t, 30*time.Second, func() bool {
		var cs []invariant.Coupon
		require.NoError(t, a.inv.Get(context.Background(), "u-happy", "/api/coupons", &cs))
		states := map[string]string{}
		for _, c := range cs {
			states[c.CouponID] = c.State
		}
		return states["c-happy"] == "USED" && states["reward-"+p.OrderID] == "AVAILABLE"
	}, "coupon not used or reward not issued")
	eventually(t, 30*time.Second, func() bool {
		var ns []invariant.Notification
		require.NoError(t, a.inv.Get(context.Background(), "u-happy", "/api/notifications", &ns))
		return len(ns) == 2
	}, "want ORDER_PAID and ORDER_SHIPPED notifications")
}

func outOfStockAndCoupons(t *testing.T, a *api) {
	tok := a.token("u-oos")
	order := func(key string, qty int, coupon string) reply {
		body := map[string]any{"items": []map[string]any{{"sku_id": "sku-case", "qty": qty}}, "address": address}
		if coupon != "" {
			body["coupon_id"] = coupon
		}
		return a.call("POST", "/api/orders", tok, body, map[string]string{"Idempotency-Key": key})
	}
	r := order("oos-1", 6, "")
	require.Equal(t, http.StatusConflict, r.Status, "%s", r.Body)
	require.Equal(t, "OUT_OF_STOCK", r.errCode())

	a.coupon("c-oos", "u-oos", 300, 5000)
	a.coupon("c-other", "u-someone", 300, 0)
	for _, c := range []struct{ key, coupon string }{{"cu-1", "c-unknown"}, {"cu-2", "c-other"}, {"cu-3", "c-oos"}} {
		r := order(c.key, 1, c.coupon) // 900 cents: below c-oos's minimum
		require.Equal(t, http.StatusConflict, r.Status, "%s: %s", c.coupon, r.Body)
		require.Equal(t, "COUPON_UNAVAILABLE", r.errCode(), c.coupon)
	}
	// Every failed placement gave back what it had locked.
	eventually(t, 30*time.Second, func() bool {
		var k invariant.SKU
		require.NoError(t, a.inv.Get(context.Background(), "", "/api/skus/sku-case", &k))
		return k.Locked == 0 && k.Available == 5
	}, "sku-case still has locked units after failed placements")
}

func cancelBeforePay(t *testing.T, a *api) {
	p := a.place("u-cancel", "cancel-1", "sku-phone", 3, "")
	r := a.call("POST", "/api/orders/"+p.OrderID+"/cancel", a.token("u-cancel"), nil, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	a.waitState("u-cancel", p.OrderID, "CLOSED", 10*time.Second)
	// Cancelling again changes nothing.
	r = a.call("POST", "/api/orders/"+p.OrderID+"/cancel", a.token("u-cancel"), nil, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
}

func refundAfterPay(t *testing.T, a *api) {
	a.faults(map[string]any{"refund_error_rate": 0.5})
	defer a.faults(map[string]any{"refund_error_rate": 0})
	p := a.place("u-refund", "refund-1", "sku-phone", 1, "")
	a.pay("u-refund", p.OrderID)
	a.waitState("u-refund", p.OrderID, "PAID", 10*time.Second)
	r := a.call("POST", "/api/orders/"+p.OrderID+"/cancel", a.token("u-refund"), nil, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	o := a.waitState("u-refund", p.OrderID, "REFUNDED", 90*time.Second)
	require.NotNil(t, o.Refund)
	require.NotEmpty(t, o.Refund.ProviderRefundID)

	// A completed order cannot be cancelled.
	q := a.place("u-refund", "refund-2", "sku-phone", 1, "")
	a.pay("u-refund", q.OrderID)
	a.waitState("u-refund", q.OrderID, "COMPLETED", 60*time.Second)
	r = a.call("POST", "/api/orders/"+q.OrderID+"/cancel", a.token("u-refund"), nil, nil)
	require.Equal(t, http.StatusConflict, r.Status, "%s", r.Body)
	require.Equal(t, "ALREADY_SHIPPED", r.errCode())
}

func unpaidCloses(t *testing.T, a *api) {
	p := a.place("u-late", "late-1", "sku-phone", 1, "")
	tok := a.token("u-late")
	r := a.call("POST", "/api/orders/"+p.OrderID+"/pay", tok, nil, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var pay struct {
		PaymentID string `json:"payment_id"`
	}
	r.json(t, &pay)
	// Closed by its timer within --order-timeout + 2 s of placing it.
	a.waitState("u-late", p.OrderID, "CLOSED", time.Until(p.ExpiresAt)+2*time.Second)

	// The user pays anyway: the money goes back by itself.
	a.confirm(pay.PaymentID)
	eventually(t, 60*time.Second, func() bool {
		l, err := a.inv.Ledger(context.Background(), p.OrderID)
		require.NoError(t, err)
		return len(l.Payments) == 1 && len(l.Refunds) == 1 && l.Refunds[0].Cents == l.Payments[0].Cents
	}, "late payment of %s not refunded", p.OrderID)
	require.Equal(t, "CLOSED", a.order("u-late", p.OrderID).State)
}
