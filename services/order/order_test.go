package order_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/services/events"
	"qianlang.io/services/order"
	"qianlang.io/services/providerclient"
	"qianlang.io/services/providerclient/providertest"
	"qianlang.io/services/svctest"
)

// TestOrderService runs every flow against one service (order timeout 2 s),
// one queue cluster and one database.
func TestOrderService(t *testing.T) {
	e := startEnv(t)
	t.Run("Login", e.testLogin)
	t.Run("Unauthorized", e.testUnauthorized)
	t.Run("PlaceAndReplay", e.testPlaceAndReplay)
	t.Run("PlaceBadRequests", e.testPlaceBadRequests)
	t.Run("PlaceRefusedReleases", e.testPlaceRefused)
	t.Run("PlaceRequestTimeout", e.testPlaceRequestTimeout)
	t.Run("PlaceConcurrentDuplicates", e.testConcurrentDuplicates)
	t.Run("OtherUsersOrder", e.testOtherUser)
	t.Run("List", e.testList)
	t.Run("PayAndCallback", e.testPayAndCallback)
	t.Run("TimeoutThenLatePayment", e.testTimeoutThenLatePayment)
	t.Run("TimerOfUnplacedOrder", e.testTimerOfUnplacedOrder)
	t.Run("CancelUnpaid", e.testCancelUnpaid)
	t.Run("CancelPaidRefundRetried", e.testCancelPaid)
	t.Run("FreeOrder", e.testFreeOrder)
	t.Run("Shipping", e.testShipping)
}

func (e *env) testLogin(t *testing.T) {
	tok := e.login(t, "alice")
	require.True(t, strings.HasPrefix(tok, "v1.alice."), tok)
	for name, body := range map[string]any{
		"missing user": map[string]string{}, "bad user": map[string]string{"user_id": "a b"},
		"too long": map[string]string{"user_id": strings.Repeat("u", 65)}, "bad json": "{",
	} {
		st, b := e.call(t, "POST", "/api/login", "", "", body)
		require.Equal(t, http.StatusBadRequest, st, name)
		require.Equal(t, "BAD_REQUEST", svctest.ErrorCode(t, b), name)
	}
}

func (e *env) testUnauthorized(t *testing.T) {
	for _, tok := range []string{"", "v1.alice.9999999999.forged"} {
		for _, c := range []struct{ method, path string }{
			{"POST", "/api/orders"}, {"GET", "/api/orders"}, {"GET", "/api/orders/O1"},
			{"POST", "/api/orders/O1/pay"}, {"POST", "/api/orders/O1/cancel"},
		} {
			st, b := e.call(t, c.method, c.path, tok, "k", placeBody(nil, "", item("sku-a", 1)))
			require.Equal(t, http.StatusUnauthorized, st, "%s %s", c.method, c.path)
			require.Equal(t, "UNAUTHORIZED", svctest.ErrorCode(t, b))
		}
	}
}

func (e *env) testPlaceAndReplay(t *testing.T) {
	tok := e.login(t, "u-place")
	before := time.Now()
	st, b := e.call(t, "POST", "/api/orders", tok, "key-1", placeBody(nil, "c-1000", item("sku-a", 2), item("sku-b", 1)))
	require.Equal(t, http.StatusCreated, st, string(b))
	p := decode[order.PlacedView](t, b)
	require.Equal(t, order.StatePending, p.State)
	require.EqualValues(t, 2250, p.TotalCents)
	require.EqualValues(t, 1000, p.DiscountCents)
	require.EqualValues(t, 1250, p.PayCents)
	require.WithinDuration(t, before.Add(2*time.Second), p.ExpiresAt, time.Second)
	require.Contains(t, string(b), `"expires_at":"`)
	require.Contains(t, string(b), `Z"`, "times in UTC")
	r, ok := e.coupons.request(p.OrderID)
	require.True(t, ok)
	require.EqualValues(t, 2250, r.TotalCents, "the coupon is reserved for the total")
	require.Equal(t, "u-place", r.UserID)

	// The same key again: the same order, 200.
	st, b = e.call(t, "POST", "/api/orders", tok, "key-1", placeBody(nil, "", item("sku-b", 7)))
	require.Equal(t, http.StatusOK, st, string(b))
	require.Equal(t, p, decode[order.PlacedView](t, b))
	// Another user's identical key is a new order.
	st, b = e.call(t, "POST", "/api/orders", e.login(t, "u-place-2"), "key-1", placeBody(nil, "", item("sku-a", 1)))
	require.Equal(t, http.StatusCreated, st, string(b))
	require.NotEqual(t, p.OrderID, decode[order.PlacedView](t, b).OrderID)

	v := e.getOrder(t, tok, p.OrderID)
	require.Equal(t, "u-place", v.UserID)
	require.Equal(t, []order.ItemView{{SKUID: "sku-a", Qty: 2, PriceCents: 1000}, {SKUID: "sku-b", Qty: 1, PriceCents: 250}}, v.Items)
	require.Equal(t, "c-1000", v.CouponID)
	require.Nil(t, v.PaidAt)
	require.Nil(t, v.Shipment)
	require.Nil(t, v.Refund)
	_, raw := e.call(t, "GET", "/api/orders/"+p.OrderID, tok, "", nil)
	for _, f := range []string{`"paid_at":null`, `"shipment":null`, `"refund":null`, `"created_at":"`} {
		require.Contains(t, string(raw), f)
	}
}

func (e *env) testPlaceBadRequests(t *testing.T) {
	tok := e.login(t, "u-bad")
	many := make([]map[string]any, 51)
	for i := range many {
		many[i] = item("sku-a", 1)
	}
	addr := func(drop string) map[string]any {
		a := map[string]any{"name": "n", "phone": "p", "line": "l"}
		delete(a, drop)
		return a
	}
	for _, tc := range []struct {
		name string
		key  string
		body any
	}{
		{"no key", "", placeBody(nil, "", item("sku-a", 1))},
		{"long key", strings.Repeat("k", 129), placeBody(nil, "", item("sku-a", 1))},
		{"bad json", "k", `{"items": [`},
		{"wrong type", "k", `{"items": [{"sku_id": "sku-a", "qty": "2"}], "address": {"name": "n", "phone": "p", "line": "l"}}`},
		{"no lines", "k", placeBody(nil, "")},
		{"51 lines", "k", placeBody(nil, "", many...)},
		{"qty 0", "k", placeBody(nil, "", item("sku-a", 0))},
		{"qty -1", "k", placeBody(nil, "", item("sku-a", -1))},
		{"qty 100", "k", placeBody(nil, "", item("sku-a", 100))},
		{"no address", "k", map[string]any{"items": []any{item("sku-a", 1)}}},
		{"no name", "k", placeBody(addr("name"), "", item("sku-a", 1))},
		{"no phone", "k", placeBody(addr("phone"), "", item("sku-a", 1))},
		{"no line", "k", placeBody(addr("line"), "", item("sku-a", 1))},
		{"unknown sku", "k-unknown", placeBody(nil, "", item("sku-a", 1), item("sku-nope", 1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, b := e.call(t, "POST", "/api/orders", tok, tc.key, tc.body)
			require.Equal(t, http.StatusBadRequest, st, string(b))
			require.Equal(t, "BAD_REQUEST", svctest.ErrorCode(t, b))
		})
	}
	// The unknown SKU was refused after the lock request: released.
	ids := e.stock.ordersWith("sku-nope")
	require.Len(t, ids, 1)
	e.seen.wait(t, events.TopicOrderClosed, "closed:"+ids[0])
	st, b := e.call(t, "GET", "/api/orders", tok, "", nil)
	require.Equal(t, http.StatusOK, st)
	require.Empty(t, decode[order.ListView](t, b).Orders)
}

// closedEvent waits for an order id's TopicOrderClosed and decodes it.
func (e *env) closedEvent(t *testing.T, orderID string) events.OrderClosed {
	t.Helper()
	return decode[events.OrderClosed](t, e.seen.wait(t, events.TopicOrderClosed, "closed:"+orderID))
}

func (e *env) testPlaceRefused(t *testing.T) {
	tok := e.login(t, "u-refused")
	st, b := e.call(t, "POST", "/api/orders", tok, "oos", placeBody(nil, "", item("sku-a", 1), item("sku-oos", 1)))
	require.Equal(t, http.StatusConflict, st, string(b))
	require.Equal(t, "OUT_OF_STOCK", svctest.ErrorCode(t, b))
	ids := e.stock.ordersWith("sku-oos")
	require.Len(t, ids, 1)
	require.Equal(t, events.CloseAbandoned, e.closedEvent(t, ids[0]).Reason)

	st, b = e.call(t, "POST", "/api/orders", tok, "coupon", placeBody(nil, "c-taken", item("sku-b", 3)))
	require.Equal(t, http.StatusConflict, st, string(b))
	require.Equal(t, "COUPON_UNAVAILABLE", svctest.ErrorCode(t, b))
	var id string
	e.coupons.mu.Lock()
	for _, r := range e.coupons.reqs {
		if r.CouponID == "c-taken" {
			id = r.OrderID
		}
	}
	e.coupons.mu.Unlock()
	require.NotEmpty(t, id)
	ev := e.closedEvent(t, id)
	require.Equal(t, events.CloseAbandoned, ev.Reason)
	require.Equal(t, "c-taken", ev.CouponID)
	require.Equal(t, []events.Line{{SKUID: "sku-b", Qty: 3, PriceCents: 250, CostCents: 100}}, ev.Items)

	// A refused placement leaves no order: the key may be used again.
	st, b = e.call(t, "POST", "/api/orders", tok, "coupon", placeBody(nil, "", item("sku-b", 3)))
	require.Equal(t, http.StatusCreated, st, string(b))
}

func (e *env) testPlaceRequestTimeout(t *testing.T) {
	tok := e.login(t, "u-slow")
	start := time.Now()
	st, b := e.call(t, "POST", "/api/orders", tok, "slow", placeBody(nil, "", item("sku-slow", 1)))
	require.Equal(t, http.StatusServiceUnavailable, st, string(b))
	require.Equal(t, "UNAVAILABLE", svctest.ErrorCode(t, b))
	require.GreaterOrEqual(t, time.Since(start), requestTimeout)
	ids := e.stock.ordersWith("sku-slow")
	require.NotEmpty(t, ids)
	require.Equal(t, events.CloseAbandoned, e.closedEvent(t, ids[0]).Reason)
}

func (e *env) testConcurrentDuplicates(t *testing.T) {
	tok := e.login(t, "u-dup")
	const n = 6
	var wg sync.WaitGroup
	status := make([]int, n)
	placed := make([]order.PlacedView, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, b := e.call(t, "POST", "/api/orders", tok, "same-key", placeBody(nil, "", item("sku-a", 1), item("sku-b", 2)))
			status[i] = st
			if st == http.StatusCreated || st == http.StatusOK {
				placed[i] = decode[order.PlacedView](t, b)
			}
		}()
	}
	wg.Wait()
	created := 0
	for i := range n {
		require.Contains(t, []int{http.StatusCreated, http.StatusOK}, status[i])
		require.Equal(t, placed[0].OrderID, placed[i].OrderID)
		if status[i] == http.StatusCreated {
			created++
		}
	}
	require.Equal(t, 1, created)
	st, b := e.call(t, "GET", "/api/orders", tok, "", nil)
	require.Equal(t, http.StatusOK, st)
	require.Len(t, decode[order.ListView](t, b).Orders, 1)
	// Every loser released what it had locked.
	e.stock.mu.Lock()
	var losers []string
	for _, r := range e.stock.reqs {
		if len(r.Items) == 2 && r.Items[0].SKUID == "sku-a" && r.Items[1].Qty == 2 && r.OrderID != placed[0].OrderID {
			losers = append(losers, r.OrderID)
		}
	}
	e.stock.mu.Unlock()
	for _, id := range losers {
		require.Equal(t, events.CloseAbandoned, e.closedEvent(t, id).Reason)
	}
}

func (e *env) testOtherUser(t *testing.T) {
	owner, other := e.login(t, "u-owner"), e.login(t, "u-other")
	id := e.place(t, owner, "")
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/orders/" + id}, {"POST", "/api/orders/" + id + "/pay"}, {"POST", "/api/orders/" + id + "/cancel"},
		{"GET", "/api/orders/O-unknown"}, {"POST", "/api/orders/O-unknown/pay"}, {"POST", "/api/orders/O-unknown/cancel"},
	} {
		st, b := e.call(t, c.method, c.path, other, "", nil)
		require.Equal(t, http.StatusNotFound, st, "%s %s", c.method, c.path)
		require.Equal(t, "NOT_FOUND", svctest.ErrorCode(t, b))
	}
	st, b := e.call(t, "GET", "/api/orders", other, "", nil)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, `{"orders":[],"next_cursor":null}`, strings.TrimSpace(string(b)))
	require.Equal(t, order.StatePending, e.getOrder(t, owner, id).State, "untouched by the other user")
}

// place places a one-line order and returns its id.
func (e *env) place(t *testing.T, token, coupon string) string {
	t.Helper()
	st, b := e.call(t, "POST", "/api/orders", token, fmt.Sprintf("k-%d", time.Now().UnixNano()), placeBody(nil, coupon, item("sku-a", 1)))
	require.Equal(t, http.StatusCreated, st, string(b))
	return decode[order.PlacedView](t, b).OrderID
}

func (e *env) testList(t *testing.T) {
	tok := e.login(t, "u-list")
	ids := []string{e.place(t, tok, ""), e.place(t, tok, ""), e.place(t, tok, "")}
	st, b := e.call(t, "GET", "/api/orders?limit=2", tok, "", nil)
	require.Equal(t, http.StatusOK, st, string(b))
	page := decode[order.ListView](t, b)
	require.Len(t, page.Orders, 2)
	require.Equal(t, []string{ids[2], ids[1]}, []string{page.Orders[0].OrderID, page.Orders[1].OrderID}, "newest first")
	require.NotNil(t, page.NextCursor)
	st, b = e.call(t, "GET", "/api/orders?limit=2&cursor="+*page.NextCursor, tok, "", nil)
	require.Equal(t, http.StatusOK, st, string(b))
	page = decode[order.ListView](t, b)
	require.Len(t, page.Orders, 1)
	require.Equal(t, ids[0], page.Orders[0].OrderID)
	require.Nil(t, page.NextCursor)
	require.Contains(t, string(b), `"next_cursor":null`)
	st, b = e.call(t, "GET", "/api/orders", tok, "", nil)
	require.Equal(t, http.StatusOK, st)
	require.Len(t, decode[order.ListView](t, b).Orders, 3)
	for _, q := range []string{"limit=0", "limit=101", "limit=x", "cursor=%21%21", "cursor=bm9waXBl"} {
		st, b := e.call(t, "GET", "/api/orders?"+q, tok, "", nil)
		require.Equal(t, http.StatusBadRequest, st, q)
		require.Equal(t, "BAD_REQUEST", svctest.ErrorCode(t, b))
	}
}

// pay opens the order's payment and returns it.
func (e *env) pay(t *testing.T, token, id string) (string, int64) {
	t.Helper()
	st, b := e.call(t, "POST", "/api/orders/"+id+"/pay", token, "", nil)
	require.Equal(t, http.StatusOK, st, string(b))
	p := decode[struct {
		PaymentID string `json:"payment_id"`
		PayCents  int64  `json:"pay_cents"`
	}](t, b)
	return p.PaymentID, p.PayCents
}

// placePaid places an order and pays it through a signed callback.
func (e *env) placePaid(t *testing.T, token string) (string, string) {
	t.Helper()
	id := e.place(t, token, "")
	pid, cents := e.pay(t, token, id)
	st, b := e.callback(t, providerclient.PaymentNotification{PaymentID: pid, OrderID: id, Cents: cents, PaidAt: time.Now().UTC()}, "")
	require.Equal(t, http.StatusOK, st, string(b))
	require.Equal(t, order.StatePaid, e.getOrder(t, token, id).State)
	return id, pid
}

func (e *env) testPayAndCallback(t *testing.T) {
	tok := e.login(t, "u-pay")
	id := e.place(t, tok, "")
	pid, cents := e.pay(t, tok, id)
	require.EqualValues(t, 1000, cents)
	again, _ := e.pay(t, tok, id)
	require.Equal(t, pid, again, "the opened payment is reused")
	payments := e.provider.Payments(id)
	require.Len(t, payments, 1)
	require.Equal(t, "pay:"+id, payments[0].Key)
	require.Equal(t, e.Base+"/callbacks/payment", payments[0].Req.NotifyURL)
	require.EqualValues(t, 1000, payments[0].Req.Cents)

	n := providerclient.PaymentNotification{PaymentID: pid, OrderID: id, Cents: cents, PaidAt: time.Now().UTC()}
	st, b := e.callback(t, n, "bad-signature")
	require.Equal(t, http.StatusUnauthorized, st, string(b))
	require.Equal(t, order.StatePending, e.getOrder(t, tok, id).State)

	st, b = e.callback(t, n, "")
	require.Equal(t, http.StatusOK, st, string(b))
	v := e.getOrder(t, tok, id)
	require.Equal(t, order.StatePaid, v.State)
	require.NotNil(t, v.PaidAt)
	paid := decode[events.OrderPaid](t, e.seen.wait(t, events.TopicOrderPaySuccess, "paid:"+id))
	require.Equal(t, pid, paid.PaymentID)
	require.EqualValues(t, 1000, paid.PayCents)
	require.Equal(t, "u-pay", paid.UserID)
	require.Equal(t, "Li Lei", paid.Address.Name)
	require.Len(t, paid.Items, 1)

	// The provider notifies again: nothing more happens.
	st, b = e.callback(t, n, "")
	require.Equal(t, http.StatusOK, st, string(b))
	st, b = e.call(t, "POST", "/api/orders/"+id+"/pay", tok, "", nil)
	require.Equal(t, http.StatusConflict, st)
	require.Equal(t, "ORDER_NOT_PAYABLE", svctest.ErrorCode(t, b))
	unknown := providerclient.PaymentNotification{PaymentID: "P-x", OrderID: "O-unknown", Cents: 1}
	st, _ = e.callback(t, unknown, "")
	require.Equal(t, http.StatusNotFound, st)
	// One paid event committed (its tx_events row) and one payment recorded.
	require.Equal(t, 1, e.rows(t, "SELECT COUNT(*) FROM tx_events WHERE event_id = ?", "paid:"+id))
	require.Equal(t, 1, e.rows(t, "SELECT COUNT(*) FROM payments WHERE order_id = ?", id))
	require.Equal(t, 1, e.seen.count(events.TopicOrderPaySuccess, "paid:"+id))
	require.Zero(t, e.seen.count(events.TopicPaymentRefund, "payrefund:"+pid))
	// The timer fires after the payment: the order stays paid.
	time.Sleep(time.Until(v.CreatedAt.Add(2500 * time.Millisecond)))
	require.Equal(t, order.StatePaid, e.getOrder(t, tok, id).State)
	require.Zero(t, e.seen.count(events.TopicOrderClosed, "closed:"+id))
}

func (e *env) testTimeoutThenLatePayment(t *testing.T) {
	tok := e.login(t, "u-late")
	st, b := e.call(t, "POST", "/api/orders", tok, "late", placeBody(nil, "c-1000", item("sku-a", 3)))
	require.Equal(t, http.StatusCreated, st, string(b))
	p := decode[order.PlacedView](t, b)
	pid, cents := e.pay(t, tok, p.OrderID)
	require.EqualValues(t, 2000, cents)
	// A timer delivered before the deadline (a clock ahead of ours) must
	// not close the order early.
	early := events.OrderTimeout{OrderID: p.OrderID, UserID: "u-late", Deadline: p.ExpiresAt}
	require.NoError(t, e.Producer.Send(t.Context(), events.TopicOrderTimeout, events.Key(p.OrderID), "timeout:"+p.OrderID, early))
	for time.Until(p.ExpiresAt) > 100*time.Millisecond {
		require.Equal(t, order.StatePending, e.getOrder(t, tok, p.OrderID).State)
		time.Sleep(100 * time.Millisecond)
	}
	closed := e.closedEvent(t, p.OrderID)
	require.Equal(t, events.CloseTimeout, closed.Reason)
	require.False(t, closed.ClosedAt.Before(p.ExpiresAt), "closed at %s before %s", closed.ClosedAt, p.ExpiresAt)
	require.Equal(t, "c-1000", closed.CouponID)
	require.Equal(t, []events.Line{{SKUID: "sku-a", Qty: 3, PriceCents: 1000, CostCents: 600}}, closed.Items)
	require.Equal(t, order.StateClosed, e.getOrder(t, tok, p.OrderID).State)

	// The user pays anyway: the money is returned.
	n := providerclient.PaymentNotification{PaymentID: pid, OrderID: p.OrderID, Cents: cents, PaidAt: time.Now().UTC()}
	for range 2 {
		st, b = e.callback(t, n, "")
		require.Equal(t, http.StatusOK, st, string(b))
	}
	ev := decode[events.PaymentRefund](t, e.seen.wait(t, events.TopicPaymentRefund, "payrefund:"+pid))
	require.Equal(t, pid, ev.PaymentID)
	require.EqualValues(t, 2000, ev.Cents)
	require.Eventually(t, func() bool { return len(e.provider.Refunds(pid)) == 1 }, 20*time.Second, 20*time.Millisecond)
	r := e.provider.Refunds(pid)[0]
	require.Equal(t, ev.RefundID, r.Key)
	require.EqualValues(t, 2000, r.Req.Cents)

	require.Eventually(t, func() bool {
		return e.rows(t, "SELECT COUNT(*) FROM payments WHERE payment_id = ? AND refund_state = 'REFUNDED'", pid) == 1
	}, 10*time.Second, 20*time.Millisecond, "returned payment recorded")

	// The same refund delivered twice more returns nothing more; the timer
	// twice more closes nothing more.
	e.in(events.GroupRefund).SendTwice(t, events.TopicPaymentRefund, p.OrderID, "payrefund:"+pid, ev)
	e.in(events.GroupOrderTimeout).SendTwice(t, events.TopicOrderTimeout, p.OrderID, "timeout:"+p.OrderID, early)
	require.Len(t, e.provider.Refunds(pid), 1)
	require.Equal(t, 1, e.seen.count(events.TopicOrderClosed, "closed:"+p.OrderID))
	v := e.getOrder(t, tok, p.OrderID)
	require.Equal(t, order.StateClosed, v.State)
	require.Nil(t, v.PaidAt)
}

// A placement that died after its timer was set leaves a timer and no
// order: the timer releases what the order id may hold, once it has
// claimed the id so that the placement can no longer create the order.
func (e *env) testTimerOfUnplacedOrder(t *testing.T) {
	id := "O-never-placed"
	timer := events.OrderTimeout{OrderID: id, UserID: "u-ghost", Deadline: time.Now().Add(-time.Second)}
	e.in(events.GroupOrderTimeout).SendTwice(t, events.TopicOrderTimeout, id, "timeout:"+id, timer)
	ev := e.closedEvent(t, id)
	require.Equal(t, events.CloseAbandoned, ev.Reason)
	require.Equal(t, "u-ghost", ev.UserID)
	require.False(t, ev.Notify())
	require.Equal(t, 1, e.rows(t, "SELECT COUNT(*) FROM order_claims WHERE order_id = ? AND outcome = 'ABANDONED'", id))
}

func (e *env) testCancelUnpaid(t *testing.T) {
	tok := e.login(t, "u-cancel")
	id := e.place(t, tok, "c-1000")
	st, b := e.call(t, "POST", "/api/orders/"+id+"/cancel", tok, "", nil)
	require.Equal(t, http.StatusOK, st, string(b))
	require.Equal(t, order.StateClosed, decode[order.OrderView](t, b).State)
	ev := e.closedEvent(t, id)
	require.Equal(t, events.CloseCancelled, ev.Reason)
	require.Equal(t, "c-1000", ev.CouponID)
	require.Equal(t, "u-cancel", ev.UserID)
	// Again: unchanged, 200.
	st, b = e.call(t, "POST", "/api/orders/"+id+"/cancel", tok, "", nil)
	require.Equal(t, http.StatusOK, st, string(b))
	require.Equal(t, order.StateClosed, decode[order.OrderView](t, b).State)
	st, b = e.call(t, "POST", "/api/orders/"+id+"/pay", tok, "", nil)
	require.Equal(t, http.StatusConflict, st)
	require.Equal(t, "ORDER_NOT_PAYABLE", svctest.ErrorCode(t, b))
	// A timer for a closed order, fed twice, changes nothing.
	timer := events.OrderTimeout{OrderID: id, UserID: "u-cancel", Deadline: time.Now().Add(-time.Second)}
	e.in(events.GroupOrderTimeout).SendTwice(t, events.TopicOrderTimeout, id, "timeout:"+id, timer)
	require.Equal(t, 1, e.rows(t, "SELECT COUNT(*) FROM tx_events WHERE event_id = ?", "closed:"+id))
	require.Equal(t, events.CloseCancelled, e.closedEvent(t, id).Reason)
}

func (e *env) testCancelPaid(t *testing.T) {
	tok := e.login(t, "u-refund")
	id, pid := e.placePaid(t, tok)
	// The provider fails the refund three times, which uses up the
	// consumer's tries in place, so the message goes back to the queue; on
	// its redelivery the provider applies the refund but drops the answer,
	// and the retry (by the HTTP client, the key making the call idempotent)
	// gets the same refund back. One key throughout, one refund.
	attempts := e.provider.Attempts(providerclient.PathRefunds)
	e.provider.Fail(providerclient.PathRefunds, 3, providertest.Status500)
	e.provider.Fail(providerclient.PathRefunds, 1, providertest.DropAfter)

	st, b := e.call(t, "POST", "/api/orders/"+id+"/cancel", tok, "", nil)
	require.Equal(t, http.StatusOK, st, string(b))
	v := decode[order.OrderView](t, b)
	require.Equal(t, order.StateRefunding, v.State)
	require.NotNil(t, v.Refund)
	require.Equal(t, order.RefundPending, v.Refund.State)
	require.Nil(t, v.Refund.ProviderRefundID)
	refund := decode[events.OrderRefund](t, e.seen.wait(t, events.TopicOrderRefund, "refund:"+id))
	require.Equal(t, pid, refund.PaymentID)
	require.EqualValues(t, 1000, refund.PayCents)

	require.Eventually(t, func() bool { return e.getOrder(t, tok, id).State == order.StateRefunded }, 30*time.Second, 50*time.Millisecond)
	v = e.getOrder(t, tok, id)
	require.Equal(t, order.RefundDone, v.Refund.State)
	require.NotNil(t, v.Refund.ProviderRefundID)
	refunds := e.provider.Refunds(pid)
	require.Len(t, refunds, 1, "one refund however often it was tried")
	require.Equal(t, refund.RefundID, refunds[0].Key)
	require.Equal(t, attempts+5, e.provider.Attempts(providerclient.PathRefunds))
	require.Regexp(t, `"msg":"consume failed; the queue will redeliver".*"topic":"TopicOrderRefund"`, e.Logs(1000))
	done := decode[events.OrderRefunded](t, e.seen.wait(t, events.TopicOrderRefunded, "refunded:"+id))
	require.Equal(t, *v.Refund.ProviderRefundID, done.ProviderRefundID)

	// Cancelling again changes nothing; the refund message delivered again
	// refunds nothing; the warehouse may not ship.
	st, b = e.call(t, "POST", "/api/orders/"+id+"/cancel", tok, "", nil)
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, order.StateRefunded, decode[order.OrderView](t, b).State)
	e.in(events.GroupRefund).SendTwice(t, events.TopicOrderRefund, id, "refund:"+id, refund)
	res, err := e.shipmentStart(id, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, events.ShipmentCancelled, res)
	require.Len(t, e.provider.Refunds(pid), 1)
	require.Equal(t, 1, e.seen.count(events.TopicOrderRefunded, "refunded:"+id))
}

func (e *env) testFreeOrder(t *testing.T) {
	tok := e.login(t, "u-free")
	id := e.place(t, tok, "c-huge")
	v := e.getOrder(t, tok, id)
	require.EqualValues(t, 1000, v.DiscountCents)
	require.EqualValues(t, 0, v.PayCents)
	pid, cents := e.pay(t, tok, id)
	require.Zero(t, cents)
	require.Equal(t, "free-"+id, pid)
	require.Equal(t, order.StatePaid, e.getOrder(t, tok, id).State)
	e.seen.wait(t, events.TopicOrderPaySuccess, "paid:"+id)
	require.Empty(t, e.provider.Payments(id))
	st, _ := e.call(t, "POST", "/api/orders/"+id+"/cancel", tok, "", nil)
	require.Equal(t, http.StatusOK, st)
	require.Eventually(t, func() bool { return e.getOrder(t, tok, id).State == order.StateRefunded }, 20*time.Second, 50*time.Millisecond)
	require.Empty(t, e.provider.Refunds(pid))
}

func (e *env) testShipping(t *testing.T) {
	tok := e.login(t, "u-ship")
	id, _ := e.placePaid(t, tok)
	for range 2 { // asked twice: GO both times
		res, err := e.shipmentStart(id, 5*time.Second)
		require.NoError(t, err)
		require.Equal(t, events.ShipmentGo, res)
	}
	st, b := e.call(t, "POST", "/api/orders/"+id+"/cancel", tok, "", nil)
	require.Equal(t, http.StatusConflict, st, string(b))
	require.Equal(t, "ALREADY_SHIPPED", svctest.ErrorCode(t, b))
	require.Equal(t, order.StatePaid, e.getOrder(t, tok, id).State)

	shipped := events.OrderShipped{OrderID: id, UserID: "u-ship", Carrier: "SF", TrackingNo: "T1", At: time.Now().UTC()}
	ship := e.in(events.GroupOrderShipping)
	ship.SendTwice(t, events.TopicOrderShipped, id, "shipped:"+id, shipped)
	v := e.getOrder(t, tok, id)
	require.Equal(t, order.StateShipped, v.State)
	require.Equal(t, &order.ShipmentView{State: "SHIPPED", Carrier: "SF", TrackingNo: "T1"}, v.Shipment)
	res, err := e.shipmentStart(id, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, events.ShipmentGo, res)
	st, b = e.call(t, "POST", "/api/orders/"+id+"/cancel", tok, "", nil)
	require.Equal(t, http.StatusConflict, st)
	require.Equal(t, "ALREADY_SHIPPED", svctest.ErrorCode(t, b))

	delivered := events.OrderDelivered{OrderID: id, UserID: "u-ship", Carrier: "SF", TrackingNo: "T1", At: time.Now().UTC()}
	ship.SendTwice(t, events.TopicOrderDelivered, id, "delivered:"+id, delivered)
	require.Equal(t, order.StateCompleted, e.getOrder(t, tok, id).State)
	require.Equal(t, &order.ShipmentView{State: "DELIVERED", Carrier: "SF", TrackingNo: "T1"}, e.getOrder(t, tok, id).Shipment)
	st, _ = e.call(t, "POST", "/api/orders/"+id+"/cancel", tok, "", nil)
	require.Equal(t, http.StatusConflict, st)

	// A delivery that overtakes its shipped event completes a paid order;
	// the late shipped event changes nothing.
	id2, _ := e.placePaid(t, tok)
	res, err = e.shipmentStart(id2, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, events.ShipmentGo, res)
	delivered.OrderID, delivered.TrackingNo = id2, "T2"
	ship.SendTwice(t, events.TopicOrderDelivered, id2, "delivered:"+id2, delivered)
	require.Equal(t, order.StateCompleted, e.getOrder(t, tok, id2).State)
	shipped.OrderID, shipped.TrackingNo = id2, "T2"
	ship.SendTwice(t, events.TopicOrderShipped, id2, "shipped:"+id2, shipped)
	v = e.getOrder(t, tok, id2)
	require.Equal(t, order.StateCompleted, v.State)
	require.Equal(t, "T2", v.Shipment.TrackingNo)

	// A closed order may not ship.
	closed := e.place(t, tok, "")
	st, _ = e.call(t, "POST", "/api/orders/"+closed+"/cancel", tok, "", nil)
	require.Equal(t, http.StatusOK, st)
	res, err = e.shipmentStart(closed, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, events.ShipmentCancelled, res)
}
