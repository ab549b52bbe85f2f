package inventory_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/services/daemon"
	"qianlang.io/services/events"
	"qianlang.io/services/inventory"
	"qianlang.io/services/svctest"
)

// TestInventory runs the service once, with one queue cluster, and drives
// it over HTTP and through the queue exactly as the order service will.
func TestInventory(t *testing.T) {
	e := svctest.Start(t, daemon.Spec{Name: "inventory", Queue: true, Migrations: inventory.Migrations, Setup: inventory.Setup},
		events.GroupStock, events.TopicStockLock, events.TopicOrderPaySuccess, events.TopicOrderClosed, events.TopicOrderRefunded)
	warmUp(t, e)

	t.Run("AdminAuth", func(t *testing.T) { testAdminAuth(t, e) })
	t.Run("AdminValidation", func(t *testing.T) { testAdminValidation(t, e) })
	t.Run("PutCreatesAndAddsStock", func(t *testing.T) { testPutAddsStock(t, e) })
	t.Run("GetSKU", func(t *testing.T) { testGetSKU(t, e) })
	t.Run("LockPayRefund", func(t *testing.T) { testLockPayRefund(t, e) })
	t.Run("LockClose", func(t *testing.T) { testLockClose(t, e) })
	t.Run("OutOfStockLocksNothing", func(t *testing.T) { testOutOfStock(t, e) })
	t.Run("UnknownSKU", func(t *testing.T) { testUnknownSKU(t, e) })
	t.Run("CloseBeforeLock", func(t *testing.T) { testCloseBeforeLock(t, e) })
	t.Run("RefundBeforePaid", func(t *testing.T) { testRefundBeforePaid(t, e) })
	t.Run("ConcurrentLocks", func(t *testing.T) { testConcurrentLocks(t, e) })
	t.Run("StockConserved", func(t *testing.T) { testConserved(t, e) })
}

// warmUp waits until the lock responder answers (its consumer has its
// queues).
func warmUp(t *testing.T, e *svctest.Env) {
	t.Helper()
	require.Eventually(t, func() bool {
		var reply events.StockLockReply
		err := e.Producer.Request(context.Background(), events.TopicStockLock, "warmup",
			events.StockLockRequest{OrderID: "warmup"}, &reply, 3*time.Second)
		return err == nil && reply.Result == events.StockUnknownSKU
	}, 90*time.Second, 100*time.Millisecond, "lock responder never answered")
}

type skuBody struct {
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	CostCents  int64  `json:"cost_cents"`
	Stock      int64  `json:"stock"`
}

func putSKU(t *testing.T, e *svctest.Env, id string, b skuBody) inventory.AdminSKUView {
	t.Helper()
	status, body := e.Do(t, http.MethodPut, "/api/admin/skus/"+id, e.Admin(), b)
	require.Equal(t, http.StatusOK, status, string(body))
	var v inventory.AdminSKUView
	require.NoError(t, json.Unmarshal(body, &v))
	return v
}

func newSKU(t *testing.T, e *svctest.Env, stock, price, cost int64) string {
	t.Helper()
	id := svctest.Unique("sku")
	putSKU(t, e, id, skuBody{Name: "item " + id, PriceCents: price, CostCents: cost, Stock: stock})
	return id
}

func getSKU(t *testing.T, e *svctest.Env, id string) inventory.SKUView {
	t.Helper()
	status, body := e.Do(t, http.MethodGet, "/api/skus/"+id, "", nil)
	require.Equal(t, http.StatusOK, status, string(body))
	var v inventory.SKUView
	require.NoError(t, json.Unmarshal(body, &v))
	return v
}

// counters is (available, locked, sold).
type counters [3]int64

func countersOf(t *testing.T, e *svctest.Env, id string) counters {
	t.Helper()
	v := getSKU(t, e, id)
	return counters{v.Available, v.Locked, v.Sold}
}

func lock(t *testing.T, e *svctest.Env, orderID string, lines ...events.Line) events.StockLockReply {
	t.Helper()
	var reply events.StockLockReply
	e.Request(t, events.TopicStockLock, orderID, events.StockLockRequest{OrderID: orderID, Items: lines}, &reply)
	return reply
}

func line(sku string, qty int) events.Line { return events.Line{SKUID: sku, Qty: qty} }

func paid(orderID string, lines ...events.Line) events.OrderPaid {
	return events.OrderPaid{OrderID: orderID, UserID: "u1", PaymentID: "pay-" + orderID, PayCents: 1000, Items: lines, PaidAt: time.Now().UTC()}
}

func closed(orderID, reason string, lines ...events.Line) events.OrderClosed {
	return events.OrderClosed{OrderID: orderID, UserID: "u1", Reason: reason, Items: lines, ClosedAt: time.Now().UTC()}
}

func refunded(orderID string, lines ...events.Line) events.OrderRefunded {
	return events.OrderRefunded{OrderID: orderID, UserID: "u1", RefundID: "r-" + orderID, ProviderRefundID: "pr-" + orderID, Items: lines, At: time.Now().UTC()}
}

func testAdminAuth(t *testing.T, e *svctest.Env) {
	id := svctest.Unique("auth")
	body := skuBody{Name: "x", PriceCents: 1, CostCents: 1, Stock: 1}
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
			status, b := e.Do(t, http.MethodPut, "/api/admin/skus/"+id, tc.token, body)
			require.Equal(t, tc.status, status, string(b))
			require.Equal(t, tc.code, svctest.ErrorCode(t, b))
		})
	}
	status, _ := e.Do(t, http.MethodGet, "/api/skus/"+id, "", nil)
	require.Equal(t, http.StatusNotFound, status, "a refused PUT created the SKU")
	status, b := e.Do(t, http.MethodPut, "/api/admin/skus/"+id, e.Admin(), body)
	require.Equal(t, http.StatusOK, status, string(b))
}

func testAdminValidation(t *testing.T, e *svctest.Env) {
	for _, tc := range []struct {
		name string
		id   string
		body string
	}{
		{"bad sku id", "bad.id", `{"name":"a","price_cents":1,"cost_cents":1,"stock":1}`},
		{"sku id too long", strings.Repeat("s", 65), `{"name":"a","price_cents":1,"cost_cents":1,"stock":1}`},
		{"malformed json", "", `{"name":`},
		{"empty body", "", ``},
		{"not an object", "", `[1]`},
		{"missing name", "", `{"price_cents":1,"cost_cents":1,"stock":1}`},
		{"blank name", "", `{"name":"  ","price_cents":1,"cost_cents":1,"stock":1}`},
		{"name too long", "", `{"name":"` + strings.Repeat("n", 256) + `","price_cents":1,"cost_cents":1,"stock":1}`},
		{"missing price", "", `{"name":"a","cost_cents":1,"stock":1}`},
		{"negative price", "", `{"name":"a","price_cents":-1,"cost_cents":1,"stock":1}`},
		{"price as string", "", `{"name":"a","price_cents":"1","cost_cents":1,"stock":1}`},
		{"missing cost", "", `{"name":"a","price_cents":1,"stock":1}`},
		{"negative cost", "", `{"name":"a","price_cents":1,"cost_cents":-1,"stock":1}`},
		{"negative stock", "", `{"name":"a","price_cents":1,"cost_cents":1,"stock":-1}`},
		{"fractional stock", "", `{"name":"a","price_cents":1,"cost_cents":1,"stock":1.5}`},
		{"stock too large", "", `{"name":"a","price_cents":1,"cost_cents":1,"stock":1000000000000}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.id
			if id == "" {
				id = svctest.Unique("bad")
			}
			status, b := e.Do(t, http.MethodPut, "/api/admin/skus/"+id, e.Admin(), tc.body)
			require.Equal(t, http.StatusBadRequest, status, string(b))
			require.Equal(t, "BAD_REQUEST", svctest.ErrorCode(t, b))
			status, _ = e.Do(t, http.MethodGet, "/api/skus/"+id, "", nil)
			require.Equal(t, http.StatusNotFound, status)
		})
	}
}

func testPutAddsStock(t *testing.T, e *svctest.Env) {
	id := svctest.Unique("tea")
	v := putSKU(t, e, id, skuBody{Name: "Tea", PriceCents: 1200, CostCents: 800, Stock: 5})
	require.Equal(t, inventory.AdminSKUView{
		SKUView:   inventory.SKUView{SKUID: id, Name: "Tea", PriceCents: 1200, Available: 5},
		CostCents: 800, Stocked: 5,
	}, v)
	v = putSKU(t, e, id, skuBody{Name: "Green tea", PriceCents: 1300, CostCents: 900, Stock: 3})
	require.Equal(t, int64(8), v.Available)
	require.Equal(t, int64(8), v.Stocked)
	require.Equal(t, int64(1300), v.PriceCents)
	require.Equal(t, int64(900), v.CostCents)
	// Stock may be left out: only the price changes.
	status, b := e.Do(t, http.MethodPut, "/api/admin/skus/"+id, e.Admin(), `{"name":"Green tea","price_cents":1250,"cost_cents":900}`)
	require.Equal(t, http.StatusOK, status, string(b))
	require.Equal(t, inventory.SKUView{SKUID: id, Name: "Green tea", PriceCents: 1250, Available: 8}, getSKU(t, e, id))
	// Zero stock and price are fine.
	putSKU(t, e, svctest.Unique("free"), skuBody{Name: "Free sample"})
}

func testGetSKU(t *testing.T, e *svctest.Env) {
	id := newSKU(t, e, 7, 990, 500)
	status, b := e.Do(t, http.MethodGet, "/api/skus/"+id, "", nil)
	require.Equal(t, http.StatusOK, status, string(b))
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	require.Equal(t, []string{"available", "locked", "name", "price_cents", "sku_id", "sold"}, keys)
	require.Equal(t, inventory.SKUView{SKUID: id, Name: "item " + id, PriceCents: 990, Available: 7}, getSKU(t, e, id))

	for _, path := range []string{"/api/skus/" + svctest.Unique("nosuch"), "/api/skus/bad.id"} {
		status, b := e.Do(t, http.MethodGet, path, "", nil)
		require.Equal(t, http.StatusNotFound, status, path)
		require.Equal(t, "NOT_FOUND", svctest.ErrorCode(t, b))
	}
}

func testLockPayRefund(t *testing.T, e *svctest.Env) {
	a := newSKU(t, e, 10, 1500, 700)
	b := newSKU(t, e, 4, 300, 100)
	order := svctest.Unique("O")
	reply := lock(t, e, order, line(a, 3), line(b, 2), line(a, 1))
	require.Equal(t, events.StockLockReply{Result: events.StockLocked, Items: []events.Line{
		{SKUID: a, Qty: 3, PriceCents: 1500, CostCents: 700},
		{SKUID: b, Qty: 2, PriceCents: 300, CostCents: 100},
		{SKUID: a, Qty: 1, PriceCents: 1500, CostCents: 700},
	}}, reply)
	require.Equal(t, counters{6, 4, 0}, countersOf(t, e, a))
	require.Equal(t, counters{2, 2, 0}, countersOf(t, e, b))

	// The same request again (a retried send) answers the same and locks
	// nothing more, even after a price change.
	putSKU(t, e, a, skuBody{Name: "item " + a, PriceCents: 1600, CostCents: 700})
	require.Equal(t, reply, lock(t, e, order, line(a, 3), line(b, 2), line(a, 1)))
	require.Equal(t, counters{6, 4, 0}, countersOf(t, e, a))

	items := reply.Items
	e.SendTwice(t, events.TopicOrderPaySuccess, order, "paid:"+order, paid(order, items...))
	require.Equal(t, counters{6, 0, 4}, countersOf(t, e, a))
	require.Equal(t, counters{2, 0, 2}, countersOf(t, e, b))

	e.SendTwice(t, events.TopicOrderRefunded, order, "refunded:"+order, refunded(order, items...))
	require.Equal(t, counters{10, 0, 0}, countersOf(t, e, a))
	require.Equal(t, counters{4, 0, 0}, countersOf(t, e, b))

	// Late and stray events change nothing.
	e.SendTwice(t, events.TopicOrderPaySuccess, order, "paid:"+order, paid(order, items...))
	e.SendTwice(t, events.TopicOrderClosed, order, "closed:"+order, closed(order, events.CloseTimeout, items...))
	require.Equal(t, counters{10, 0, 0}, countersOf(t, e, a))
	require.Equal(t, counters{4, 0, 0}, countersOf(t, e, b))
}

func testLockClose(t *testing.T, e *svctest.Env) {
	a := newSKU(t, e, 5, 100, 50)
	order := svctest.Unique("O")
	reply := lock(t, e, order, line(a, 2))
	require.Equal(t, events.StockLocked, reply.Result)
	require.Equal(t, counters{3, 2, 0}, countersOf(t, e, a))

	e.SendTwice(t, events.TopicOrderClosed, order, "closed:"+order, closed(order, events.CloseTimeout, reply.Items...))
	require.Equal(t, counters{5, 0, 0}, countersOf(t, e, a))

	// A lock request that comes again after the close gets its old answer
	// and locks nothing; a payment after the close sells nothing.
	require.Equal(t, reply, lock(t, e, order, line(a, 2)))
	e.SendTwice(t, events.TopicOrderPaySuccess, order, "paid:"+order, paid(order, reply.Items...))
	require.Equal(t, counters{5, 0, 0}, countersOf(t, e, a))
}

func testOutOfStock(t *testing.T, e *svctest.Env) {
	plenty := newSKU(t, e, 5, 100, 50)
	scarce := newSKU(t, e, 2, 100, 50)
	order := svctest.Unique("O")
	want := events.StockLockReply{Result: events.StockOutOfStock, SKUID: scarce}
	require.Equal(t, want, lock(t, e, order, line(plenty, 1), line(scarce, 3)))
	require.Equal(t, counters{5, 0, 0}, countersOf(t, e, plenty))
	require.Equal(t, counters{2, 0, 0}, countersOf(t, e, scarce))

	// Asked again after stock arrived, the order still gets its answer.
	putSKU(t, e, scarce, skuBody{Name: "item " + scarce, PriceCents: 100, CostCents: 50, Stock: 10})
	require.Equal(t, want, lock(t, e, order, line(plenty, 1), line(scarce, 3)))
	require.Equal(t, counters{5, 0, 0}, countersOf(t, e, plenty))

	// The order service gives back what it reserved: nothing here.
	e.SendTwice(t, events.TopicOrderClosed, order, "closed:"+order, closed(order, events.CloseAbandoned))
	require.Equal(t, counters{5, 0, 0}, countersOf(t, e, plenty))
	require.Equal(t, counters{12, 0, 0}, countersOf(t, e, scarce))

	// Exactly all that is left can be locked.
	require.Equal(t, events.StockLocked, lock(t, e, svctest.Unique("O"), line(scarce, 12)).Result)
	require.Equal(t, counters{0, 12, 0}, countersOf(t, e, scarce))
}

func testUnknownSKU(t *testing.T, e *svctest.Env) {
	a := newSKU(t, e, 5, 100, 50)
	missing := svctest.Unique("nosuch")
	for _, tc := range []struct {
		name  string
		lines []events.Line
		want  events.StockLockReply
	}{
		{"unknown sku", []events.Line{line(a, 1), line(missing, 1)}, events.StockLockReply{Result: events.StockUnknownSKU, SKUID: missing}},
		{"malformed sku id", []events.Line{line(a, 1), line("no such", 1)}, events.StockLockReply{Result: events.StockUnknownSKU, SKUID: "no such"}},
		{"zero qty", []events.Line{line(a, 0)}, events.StockLockReply{Result: events.StockUnknownSKU, SKUID: a}},
		{"no lines", nil, events.StockLockReply{Result: events.StockUnknownSKU}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			order := svctest.Unique("O")
			require.Equal(t, tc.want, lock(t, e, order, tc.lines...))
			require.Equal(t, tc.want, lock(t, e, order, tc.lines...))
			require.Equal(t, counters{5, 0, 0}, countersOf(t, e, a))
		})
	}
}

func testCloseBeforeLock(t *testing.T, e *svctest.Env) {
	a := newSKU(t, e, 5, 100, 50)
	order := svctest.Unique("O")
	// The order's lock request timed out, so the order service released
	// it, and the release overtook the request.
	e.SendTwice(t, events.TopicOrderClosed, order, "closed:"+order, closed(order, events.CloseAbandoned))
	require.Equal(t, events.StockLockReply{Result: events.StockReleased}, lock(t, e, order, line(a, 2)))
	require.Equal(t, counters{5, 0, 0}, countersOf(t, e, a))
}

func testRefundBeforePaid(t *testing.T, e *svctest.Env) {
	a := newSKU(t, e, 5, 100, 50)
	order := svctest.Unique("O")
	reply := lock(t, e, order, line(a, 2))
	require.Equal(t, events.StockLocked, reply.Result)
	e.SendTwice(t, events.TopicOrderRefunded, order, "refunded:"+order, refunded(order, reply.Items...))
	require.Equal(t, counters{5, 0, 0}, countersOf(t, e, a))
	e.SendTwice(t, events.TopicOrderPaySuccess, order, "paid:"+order, paid(order, reply.Items...))
	require.Equal(t, counters{5, 0, 0}, countersOf(t, e, a))
}

func testConcurrentLocks(t *testing.T, e *svctest.Env) {
	a := newSKU(t, e, 10, 100, 50)
	const n = 50
	results := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			order := svctest.Unique("C")
			var reply events.StockLockReply
			err := e.Producer.Request(context.Background(), events.TopicStockLock, events.Key(order),
				events.StockLockRequest{OrderID: order, Items: []events.Line{line(a, 1)}}, &reply, 30*time.Second)
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
	require.Equal(t, map[string]int{events.StockLocked: 10, events.StockOutOfStock: 40}, count)
	require.Equal(t, counters{0, 10, 0}, countersOf(t, e, a))
}

// testConserved checks invariant 1 over every SKU the tests touched.
func testConserved(t *testing.T, e *svctest.Env) {
	var bad, total int
	require.NoError(t, e.DB.QueryRow(`SELECT
  COALESCE(SUM(available + locked + sold <> stocked OR available < 0 OR locked < 0 OR sold < 0), 0), COUNT(*)
FROM skus`).Scan(&bad, &total))
	require.Zero(t, bad)
	require.Greater(t, total, 10)
	// The CHECK constraint refuses a row that breaks it.
	_, err := e.DB.Exec("UPDATE skus SET available = available + 1 LIMIT 1")
	require.Error(t, err)
}
