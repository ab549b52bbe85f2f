package points_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/services/daemon"
	"qianlang.io/services/events"
	"qianlang.io/services/points"
	"qianlang.io/services/svctest"
)

// TestPoints runs the service once, with one queue cluster, and feeds it
// the order service's events.
func TestPoints(t *testing.T) {
	e := svctest.Start(t, daemon.Spec{Name: "points", Queue: true, Migrations: points.Migrations, Setup: points.Setup},
		events.GroupCredit, events.TopicOrderPaySuccess, events.TopicOrderRefund)

	t.Run("Auth", func(t *testing.T) { testAuth(t, e) })
	t.Run("EmptyAccount", func(t *testing.T) { testEmpty(t, e) })
	t.Run("PayRefund", func(t *testing.T) { testPayRefund(t, e) })
	t.Run("RefundBeforePaid", func(t *testing.T) { testRefundBeforePaid(t, e) })
	t.Run("FloorAndOwnEntries", func(t *testing.T) { testFloorAndOwn(t, e) })
	t.Run("ManyDeliveries", func(t *testing.T) { testManyDeliveries(t, e) })
	t.Run("AtMostOnePlusOneMinus", func(t *testing.T) { testAtMostOneEach(t, e) })
}

func account(t *testing.T, e *svctest.Env, user string) points.AccountView {
	t.Helper()
	status, b := e.Do(t, http.MethodGet, "/api/points", e.User(user), nil)
	require.Equal(t, http.StatusOK, status, string(b))
	var v points.AccountView
	require.NoError(t, json.Unmarshal(b, &v))
	return v
}

func paid(orderID, user string, pay int64) events.OrderPaid {
	return events.OrderPaid{OrderID: orderID, UserID: user, PaymentID: "pay-" + orderID, PayCents: pay, PaidAt: time.Now().UTC()}
}

func refund(orderID, user string, pay int64) events.OrderRefund {
	return events.OrderRefund{OrderID: orderID, UserID: user, RefundID: "r-" + orderID, PaymentID: "pay-" + orderID, PayCents: pay, At: time.Now().UTC()}
}

func testAuth(t *testing.T, e *svctest.Env) {
	for _, tc := range []struct{ name, token string }{
		{"no token", ""}, {"bad token", "v1.u1.1.sig"}, {"admin token is no user", e.Admin()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b := e.Do(t, http.MethodGet, "/api/points", tc.token, nil)
			require.Equal(t, http.StatusUnauthorized, status, string(b))
			require.Equal(t, "UNAUTHORIZED", svctest.ErrorCode(t, b))
		})
	}
	expired, err := e.Tokens.Sign("u1", time.Now().Add(-time.Minute))
	require.NoError(t, err)
	status, _ := e.Do(t, http.MethodGet, "/api/points", expired, nil)
	require.Equal(t, http.StatusUnauthorized, status)
}

func testEmpty(t *testing.T, e *svctest.Env) {
	status, b := e.Do(t, http.MethodGet, "/api/points", e.User(svctest.Unique("new")), nil)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"balance":0,"entries":[]}`, string(b))
}

func testPayRefund(t *testing.T, e *svctest.Env) {
	user, order := svctest.Unique("u"), svctest.Unique("O")
	e.SendTwice(t, events.TopicOrderPaySuccess, order, "paid:"+order, paid(order, user, 12345))
	require.Equal(t, points.AccountView{Balance: 123, Entries: []points.EntryView{{OrderID: order, Delta: 123, Reason: points.ReasonPaid}}},
		account(t, e, user))

	e.SendTwice(t, events.TopicOrderRefund, order, "refund:"+order, refund(order, user, 12345))
	require.Equal(t, points.AccountView{Balance: 0, Entries: []points.EntryView{
		{OrderID: order, Delta: -123, Reason: points.ReasonRefunded},
		{OrderID: order, Delta: 123, Reason: points.ReasonPaid},
	}}, account(t, e, user))

	// A payment seen again after the refund earns nothing.
	e.SendTwice(t, events.TopicOrderPaySuccess, order, "paid:"+order, paid(order, user, 12345))
	require.Equal(t, int64(0), account(t, e, user).Balance)
	require.Len(t, account(t, e, user).Entries, 2)
}

func testRefundBeforePaid(t *testing.T, e *svctest.Env) {
	user, order := svctest.Unique("u"), svctest.Unique("O")
	e.SendTwice(t, events.TopicOrderRefund, order, "refund:"+order, refund(order, user, 5000))
	e.SendTwice(t, events.TopicOrderPaySuccess, order, "paid:"+order, paid(order, user, 5000))
	require.Equal(t, points.AccountView{Balance: 0, Entries: []points.EntryView{}}, account(t, e, user))
}

func testFloorAndOwn(t *testing.T, e *svctest.Env) {
	alice, bob := svctest.Unique("alice"), svctest.Unique("bob")
	o1, o2, o3, o4 := svctest.Unique("O"), svctest.Unique("O"), svctest.Unique("O"), svctest.Unique("O")
	e.SendTwice(t, events.TopicOrderPaySuccess, o1, "paid:"+o1, paid(o1, alice, 99))
	e.SendTwice(t, events.TopicOrderPaySuccess, o2, "paid:"+o2, paid(o2, alice, 100))
	e.SendTwice(t, events.TopicOrderPaySuccess, o3, "paid:"+o3, paid(o3, alice, 250))
	e.SendTwice(t, events.TopicOrderPaySuccess, o4, "paid:"+o4, paid(o4, bob, 1000))
	require.Equal(t, points.AccountView{Balance: 3, Entries: []points.EntryView{
		{OrderID: o3, Delta: 2, Reason: points.ReasonPaid},
		{OrderID: o2, Delta: 1, Reason: points.ReasonPaid},
	}}, account(t, e, alice))
	require.Equal(t, points.AccountView{Balance: 10, Entries: []points.EntryView{{OrderID: o4, Delta: 10, Reason: points.ReasonPaid}}},
		account(t, e, bob))
	// An order that earned nothing loses nothing.
	e.SendTwice(t, events.TopicOrderRefund, o1, "refund:"+o1, refund(o1, alice, 99))
	require.Equal(t, int64(3), account(t, e, alice).Balance)
}

// The same event delivered many times at once applies once.
func testManyDeliveries(t *testing.T, e *svctest.Env) {
	user, order := svctest.Unique("u"), svctest.Unique("O")
	base := e.Consumed(t, events.TopicOrderPaySuccess)
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			errs <- e.Producer.Send(context.Background(), events.TopicOrderPaySuccess, events.Key(order), "paid:"+order, paid(order, user, 777))
		}()
	}
	for range n {
		require.NoError(t, <-errs)
	}
	e.WaitConsumed(t, events.TopicOrderPaySuccess, base+n)
	require.Equal(t, points.AccountView{Balance: 7, Entries: []points.EntryView{{OrderID: order, Delta: 7, Reason: points.ReasonPaid}}},
		account(t, e, user))
}

// Invariant 3's second half, over everything the tests did.
func testAtMostOneEach(t *testing.T, e *svctest.Env) {
	var dup int
	require.NoError(t, e.DB.QueryRow(`SELECT COUNT(*) FROM (
  SELECT order_id, sign FROM points_entries GROUP BY order_id, sign HAVING COUNT(*) > 1) d`).Scan(&dup))
	require.Zero(t, dup)
	var orphan int
	require.NoError(t, e.DB.QueryRow(`SELECT COUNT(*) FROM points_entries m WHERE m.sign = '-' AND NOT EXISTS (
  SELECT 1 FROM points_entries p WHERE p.order_id = m.order_id AND p.sign = '+' AND p.delta = -m.delta)`).Scan(&orphan))
	require.Zero(t, orphan)
}
