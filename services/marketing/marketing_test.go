package marketing_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/services/daemon"
	"qianlang.io/services/events"
	"qianlang.io/services/marketing"
	"qianlang.io/services/svctest"
)

// TestMarketing runs the service once, with one queue cluster, and drives
// it over HTTP and through the queue exactly as the order service will.
func TestMarketing(t *testing.T) {
	e := svctest.Start(t, daemon.Spec{Name: "marketing", Queue: true, Migrations: marketing.Migrations, Setup: marketing.Setup},
		events.GroupMarketing, events.TopicCouponReserve, events.TopicOrderPaySuccess, events.TopicOrderClosed, events.TopicOrderRefund)
	warmUp(t, e)

	t.Run("AdminAuth", func(t *testing.T) { testAdminAuth(t, e) })
	t.Run("AdminValidation", func(t *testing.T) { testAdminValidation(t, e) })
	t.Run("IssueAgain", func(t *testing.T) { testIssueAgain(t, e) })
	t.Run("ListOwnCoupons", func(t *testing.T) { testListOwn(t, e) })
	t.Run("ReservePayRefund", func(t *testing.T) { testReservePayRefund(t, e) })
	t.Run("ReserveRefusals", func(t *testing.T) { testReserveRefusals(t, e) })
	t.Run("ReserveClose", func(t *testing.T) { testReserveClose(t, e) })
	t.Run("CloseBeforeReserve", func(t *testing.T) { testCloseBeforeReserve(t, e) })
	t.Run("RefundBeforePaid", func(t *testing.T) { testRefundBeforePaid(t, e) })
	t.Run("PaidWithoutCoupon", func(t *testing.T) { testPaidWithoutCoupon(t, e) })
	t.Run("RewardHeldByAnotherOrder", func(t *testing.T) { testRewardHeld(t, e) })
	t.Run("ConcurrentReservations", func(t *testing.T) { testConcurrentReservations(t, e) })
}

func warmUp(t *testing.T, e *svctest.Env) {
	t.Helper()
	require.Eventually(t, func() bool {
		var reply events.CouponReserveReply
		err := e.Producer.Request(context.Background(), events.TopicCouponReserve, "warmup",
			events.CouponReserveRequest{OrderID: "warmup", UserID: "nobody", CouponID: "nosuch", TotalCents: 1}, &reply, 3*time.Second)
		return err == nil && reply.Result == events.CouponUnavailable
	}, 90*time.Second, 100*time.Millisecond, "reservation responder never answered")
}

type couponBody struct {
	UserID        string `json:"user_id"`
	AmountCents   int64  `json:"amount_cents"`
	MinSpendCents int64  `json:"min_spend_cents"`
}

func issue(t *testing.T, e *svctest.Env, user string, amount, minSpend int64) string {
	t.Helper()
	id := svctest.Unique("c")
	status, b := e.Do(t, http.MethodPut, "/api/admin/coupons/"+id, e.Admin(), couponBody{user, amount, minSpend})
	require.Equal(t, http.StatusOK, status, string(b))
	return id
}

func coupons(t *testing.T, e *svctest.Env, user string) []marketing.CouponView {
	t.Helper()
	status, b := e.Do(t, http.MethodGet, "/api/coupons", e.User(user), nil)
	require.Equal(t, http.StatusOK, status, string(b))
	var out []marketing.CouponView
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// state returns the state of a user's coupon ("" when the user has none
// such).
func state(t *testing.T, e *svctest.Env, user, id string) marketing.CouponState {
	t.Helper()
	for _, c := range coupons(t, e, user) {
		if c.CouponID == id {
			return c.State
		}
	}
	return ""
}

func reserve(t *testing.T, e *svctest.Env, orderID, user, coupon string, total int64) events.CouponReserveReply {
	t.Helper()
	var reply events.CouponReserveReply
	e.Request(t, events.TopicCouponReserve, orderID,
		events.CouponReserveRequest{OrderID: orderID, UserID: user, CouponID: coupon, TotalCents: total}, &reply)
	return reply
}

func reserved(amount int64) events.CouponReserveReply {
	return events.CouponReserveReply{Result: events.CouponReserved, AmountCents: amount}
}

func paid(orderID, user, coupon string, pay int64) events.OrderPaid {
	return events.OrderPaid{OrderID: orderID, UserID: user, PaymentID: "pay-" + orderID, PayCents: pay, CouponID: coupon, PaidAt: time.Now().UTC()}
}

func closed(orderID, user, reason, coupon string) events.OrderClosed {
	return events.OrderClosed{OrderID: orderID, UserID: user, Reason: reason, CouponID: coupon, ClosedAt: time.Now().UTC()}
}

func refund(orderID, user, coupon string) events.OrderRefund {
	return events.OrderRefund{OrderID: orderID, UserID: user, RefundID: "r-" + orderID, PaymentID: "pay-" + orderID, CouponID: coupon, At: time.Now().UTC()}
}

func testAdminAuth(t *testing.T, e *svctest.Env) {
	id := svctest.Unique("auth")
	for _, tc := range []struct {
		name   string
		token  string
		status int
		code   string
	}{
		{"no token", "", http.StatusUnauthorized, "UNAUTHORIZED"},
		{"bad token", "not-a-token", http.StatusUnauthorized, "UNAUTHORIZED"},
		{"user token", e.User("u1"), http.StatusForbidden, "FORBIDDEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := e.Do(t, http.MethodPut, "/api/admin/coupons/"+id, tc.token, couponBody{"authuser", 100, 0})
			require.Equal(t, tc.status, status, string(b))
			require.Equal(t, tc.code, svctest.ErrorCode(t, b))
		})
	}
	require.Empty(t, coupons(t, e, "authuser"), "a refused PUT issued the coupon")
}

func testAdminValidation(t *testing.T, e *svctest.Env) {
	for _, tc := range []struct {
		name string
		id   string
		body string
	}{
		{"bad coupon id", "bad.id", `{"user_id":"val","amount_cents":100,"min_spend_cents":0}`},
		{"malformed json", "", `{"user_id":`},
		{"empty body", "", ``},
		{"missing user", "", `{"amount_cents":100,"min_spend_cents":0}`},
		{"bad user", "", `{"user_id":"a b","amount_cents":100,"min_spend_cents":0}`},
		{"missing amount", "", `{"user_id":"val","min_spend_cents":0}`},
		{"zero amount", "", `{"user_id":"val","amount_cents":0,"min_spend_cents":0}`},
		{"negative amount", "", `{"user_id":"val","amount_cents":-100,"min_spend_cents":0}`},
		{"amount as string", "", `{"user_id":"val","amount_cents":"100","min_spend_cents":0}`},
		{"negative min spend", "", `{"user_id":"val","amount_cents":100,"min_spend_cents":-1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.id
			if id == "" {
				id = svctest.Unique("bad")
			}
			status, b := e.Do(t, http.MethodPut, "/api/admin/coupons/"+id, e.Admin(), tc.body)
			require.Equal(t, http.StatusBadRequest, status, string(b))
			require.Equal(t, "BAD_REQUEST", svctest.ErrorCode(t, b))
		})
	}
	require.Empty(t, coupons(t, e, "val"))
}

func testIssueAgain(t *testing.T, e *svctest.Env) {
	id := svctest.Unique("c")
	put := func(body couponBody) (int, []byte) {
		return e.Do(t, http.MethodPut, "/api/admin/coupons/"+id, e.Admin(), body)
	}
	status, b := put(couponBody{"issuer", 300, 1000})
	require.Equal(t, http.StatusOK, status, string(b))
	want := marketing.AdminCouponView{CouponID: id, UserID: "issuer", AmountCents: 300, MinSpendCents: 1000, State: marketing.CouponAvailable}
	var got marketing.AdminCouponView
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, want, got)

	status, b = put(couponBody{"issuer", 300, 1000})
	require.Equal(t, http.StatusOK, status, string(b))
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, want, got)

	for _, other := range []couponBody{{"thief", 300, 1000}, {"issuer", 301, 1000}, {"issuer", 300, 0}} {
		status, b = put(other)
		require.Equal(t, http.StatusConflict, status, string(b))
		require.Equal(t, "CONFLICT", svctest.ErrorCode(t, b))
	}
	require.Len(t, coupons(t, e, "issuer"), 1)
	require.Empty(t, coupons(t, e, "thief"))
}

func testListOwn(t *testing.T, e *svctest.Env) {
	alice, bob := svctest.Unique("alice"), svctest.Unique("bob")
	a1 := issue(t, e, alice, 100, 0)
	a2 := issue(t, e, alice, 200, 3000)
	b1 := issue(t, e, bob, 300, 0)
	require.Equal(t, []marketing.CouponView{
		{CouponID: a1, AmountCents: 100, State: marketing.CouponAvailable},
		{CouponID: a2, AmountCents: 200, MinSpendCents: 3000, State: marketing.CouponAvailable},
	}, coupons(t, e, alice))
	require.Equal(t, []marketing.CouponView{{CouponID: b1, AmountCents: 300, State: marketing.CouponAvailable}}, coupons(t, e, bob))

	status, b := e.Do(t, http.MethodGet, "/api/coupons", e.User(svctest.Unique("nobody")), nil)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `[]`, string(b))

	status, b = e.Do(t, http.MethodGet, "/api/coupons", e.User(alice), nil)
	require.Equal(t, http.StatusOK, status)
	var raw []map[string]any
	require.NoError(t, json.Unmarshal(b, &raw))
	require.Len(t, raw[0], 4)
	for _, k := range []string{"coupon_id", "amount_cents", "min_spend_cents", "state"} {
		require.Contains(t, raw[0], k)
	}

	for _, tok := range []string{"", "not-a-token", e.Admin()} {
		status, b = e.Do(t, http.MethodGet, "/api/coupons", tok, nil)
		require.Equal(t, http.StatusUnauthorized, status, string(b))
		require.Equal(t, "UNAUTHORIZED", svctest.ErrorCode(t, b))
	}
}

func testReservePayRefund(t *testing.T, e *svctest.Env) {
	user := svctest.Unique("u")
	c := issue(t, e, user, 1000, 5000)
	order := svctest.Unique("O")
	require.Equal(t, reserved(1000), reserve(t, e, order, user, c, 6000))
	require.Equal(t, marketing.CouponLocked, state(t, e, user, c))
	// Asked again (a retried send): the same answer.
	require.Equal(t, reserved(1000), reserve(t, e, order, user, c, 6000))
	// Another order cannot have it.
	other := reserve(t, e, svctest.Unique("O"), user, c, 6000)
	require.Equal(t, events.CouponUnavailable, other.Result)

	e.SendTwice(t, events.TopicOrderPaySuccess, order, "paid:"+order, paid(order, user, c, 5000))
	reward := marketing.RewardCouponID(order)
	require.Equal(t, []marketing.CouponView{
		{CouponID: c, AmountCents: 1000, MinSpendCents: 5000, State: marketing.CouponUsed},
		{CouponID: reward, AmountCents: 500, MinSpendCents: 5000, State: marketing.CouponAvailable},
	}, coupons(t, e, user))
	// A used coupon cannot be reserved again, not even by its order.
	require.Equal(t, events.CouponUnavailable, reserve(t, e, svctest.Unique("O"), user, c, 9000).Result)

	e.SendTwice(t, events.TopicOrderRefund, order, "refund:"+order, refund(order, user, c))
	require.Equal(t, []marketing.CouponView{
		{CouponID: c, AmountCents: 1000, MinSpendCents: 5000, State: marketing.CouponAvailable},
		{CouponID: reward, AmountCents: 500, MinSpendCents: 5000, State: marketing.CouponRevoked},
	}, coupons(t, e, user))

	// A late payment changes nothing; the coupon serves a new order.
	e.SendTwice(t, events.TopicOrderPaySuccess, order, "paid:"+order, paid(order, user, c, 5000))
	require.Equal(t, marketing.CouponAvailable, state(t, e, user, c))
	require.Equal(t, marketing.CouponRevoked, state(t, e, user, reward))
	require.Equal(t, reserved(1000), reserve(t, e, svctest.Unique("O"), user, c, 5000))
}

func testReserveRefusals(t *testing.T, e *svctest.Env) {
	user := svctest.Unique("u")
	mine := issue(t, e, user, 500, 2000)
	theirs := issue(t, e, svctest.Unique("other"), 500, 0)
	used := issue(t, e, user, 100, 0)
	usedBy := svctest.Unique("O")
	require.Equal(t, reserved(100), reserve(t, e, usedBy, user, used, 100))
	e.SendTwice(t, events.TopicOrderPaySuccess, usedBy, "paid:"+usedBy, paid(usedBy, user, used, 0))
	require.Equal(t, marketing.CouponUsed, state(t, e, user, used))
	refunded := svctest.Unique("O")
	e.SendTwice(t, events.TopicOrderPaySuccess, refunded, "paid:"+refunded, paid(refunded, user, "", 100))
	e.SendTwice(t, events.TopicOrderRefund, refunded, "refund:"+refunded, refund(refunded, user, ""))
	revoked := marketing.RewardCouponID(refunded)
	require.Equal(t, marketing.CouponRevoked, state(t, e, user, revoked))
	locked := issue(t, e, user, 100, 0)
	require.Equal(t, reserved(100), reserve(t, e, svctest.Unique("O"), user, locked, 100))

	for _, tc := range []struct {
		name, coupon string
		total        int64
	}{
		{"unknown coupon", svctest.Unique("nosuch"), 9000},
		{"another user's coupon", theirs, 9000},
		{"below minimum spend", mine, 1999},
		{"used", used, 9000},
		{"revoked", revoked, 9000},
		{"reserved by another order", locked, 9000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reply := reserve(t, e, svctest.Unique("O"), user, tc.coupon, tc.total)
			require.Equal(t, events.CouponUnavailable, reply.Result)
			require.NotEmpty(t, reply.Reason)
		})
	}
	require.Equal(t, marketing.CouponAvailable, state(t, e, user, mine))
	require.Equal(t, marketing.CouponLocked, state(t, e, user, locked))
	require.Equal(t, marketing.CouponUsed, state(t, e, user, used))
	require.Equal(t, reserved(500), reserve(t, e, svctest.Unique("O"), user, mine, 2000), "exactly the minimum spend")
}

func testReserveClose(t *testing.T, e *svctest.Env) {
	user := svctest.Unique("u")
	c := issue(t, e, user, 300, 0)
	order := svctest.Unique("O")
	require.Equal(t, reserved(300), reserve(t, e, order, user, c, 1000))
	e.SendTwice(t, events.TopicOrderClosed, order, "closed:"+order, closed(order, user, events.CloseTimeout, c))
	require.Equal(t, marketing.CouponAvailable, state(t, e, user, c))
	// The closed order's request, coming again, gets nothing.
	require.Equal(t, events.CouponUnavailable, reserve(t, e, order, user, c, 1000).Result)
	require.Equal(t, marketing.CouponAvailable, state(t, e, user, c))
	// A closed order earns nothing, even if a payment event came.
	e.SendTwice(t, events.TopicOrderPaySuccess, order, "paid:"+order, paid(order, user, c, 700))
	require.Equal(t, "", string(state(t, e, user, marketing.RewardCouponID(order))))
	require.Equal(t, reserved(300), reserve(t, e, svctest.Unique("O"), user, c, 1000))
}

func testCloseBeforeReserve(t *testing.T, e *svctest.Env) {
	user := svctest.Unique("u")
	c := issue(t, e, user, 300, 0)
	order := svctest.Unique("O")
	// The order's reservation timed out, so it was released, and the
	// release overtook the request.
	e.SendTwice(t, events.TopicOrderClosed, order, "closed:"+order, closed(order, user, events.CloseAbandoned, ""))
	require.Equal(t, events.CouponUnavailable, reserve(t, e, order, user, c, 1000).Result)
	require.Equal(t, marketing.CouponAvailable, state(t, e, user, c))
}

func testRefundBeforePaid(t *testing.T, e *svctest.Env) {
	user := svctest.Unique("u")
	c := issue(t, e, user, 300, 0)
	order := svctest.Unique("O")
	require.Equal(t, reserved(300), reserve(t, e, order, user, c, 1000))
	e.SendTwice(t, events.TopicOrderRefund, order, "refund:"+order, refund(order, user, c))
	require.Equal(t, marketing.CouponAvailable, state(t, e, user, c))
	e.SendTwice(t, events.TopicOrderPaySuccess, order, "paid:"+order, paid(order, user, c, 700))
	require.Equal(t, []marketing.CouponView{{CouponID: c, AmountCents: 300, State: marketing.CouponAvailable}}, coupons(t, e, user),
		"the late payment spent the coupon or earned a reward")
}

func testPaidWithoutCoupon(t *testing.T, e *svctest.Env) {
	user := svctest.Unique("u")
	order := svctest.Unique("O")
	e.SendTwice(t, events.TopicOrderPaySuccess, order, "paid:"+order, paid(order, user, "", 9900))
	require.Equal(t, []marketing.CouponView{
		{CouponID: marketing.RewardCouponID(order), AmountCents: 500, MinSpendCents: 5000, State: marketing.CouponAvailable},
	}, coupons(t, e, user))
	require.Empty(t, coupons(t, e, svctest.Unique("other")))
}

func testRewardHeld(t *testing.T, e *svctest.Env) {
	user := svctest.Unique("u")
	first := svctest.Unique("O")
	e.SendTwice(t, events.TopicOrderPaySuccess, first, "paid:"+first, paid(first, user, "", 6000))
	reward := marketing.RewardCouponID(first)
	require.Equal(t, events.CouponUnavailable, reserve(t, e, svctest.Unique("O"), user, reward, 4999).Result)
	next := svctest.Unique("O")
	require.Equal(t, reserved(500), reserve(t, e, next, user, reward, 5000))
	// The first order's refund leaves the reward to the order holding it.
	e.SendTwice(t, events.TopicOrderRefund, first, "refund:"+first, refund(first, user, ""))
	require.Equal(t, marketing.CouponLocked, state(t, e, user, reward))
	e.SendTwice(t, events.TopicOrderPaySuccess, next, "paid:"+next, paid(next, user, reward, 4500))
	require.Equal(t, marketing.CouponUsed, state(t, e, user, reward))
}

func testConcurrentReservations(t *testing.T, e *svctest.Env) {
	user := svctest.Unique("u")
	c := issue(t, e, user, 100, 0)
	const n = 20
	results := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			order := svctest.Unique("C")
			var reply events.CouponReserveReply
			err := e.Producer.Request(context.Background(), events.TopicCouponReserve, events.Key(order),
				events.CouponReserveRequest{OrderID: order, UserID: user, CouponID: c, TotalCents: 1000}, &reply, 30*time.Second)
			if err != nil {
				results[i] = err.Error()
				return
			}
			results[i] = reply.Result
		}()
	}
	wg.Wait()
	count := map[string]int{}
	for _, r := range results {
		count[r]++
	}
	require.Equal(t, map[string]int{events.CouponReserved: 1, events.CouponUnavailable: n - 1}, count)
	require.Equal(t, marketing.CouponLocked, state(t, e, user, c))
}
