package acceptance

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/services/invariant"
	"qianlang.io/services/stacktest"
)

// api drives the platform through the contract only: the gateway and the
// provider, with the admin token of stack.json and user tokens from login.
type api struct {
	t     *testing.T
	s     *stacktest.Stack
	inv   *invariant.Client
	world invariant.World
}

func newAPI(t *testing.T, s *stacktest.Stack) *api {
	return &api{t: t, s: s, inv: invariant.NewClient(s.Gateway, s.Provider, s.AdminToken),
		world: invariant.World{Stocked: map[string]int64{}}}
}

// reply is an answer: its status, headers and body.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r reply) json(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.Body, v), "body %s", r.Body)
}

// errCode is the contract error's code, "" when the body is not one.
func (r reply) errCode() string {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(r.Body, &e) != nil {
		return ""
	}
	return e.Error.Code
}

func (a *api) raw(method, url, token string, body []byte, hdr map[string]string) reply {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	require.NoError(a.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(a.t, err, "%s %s", method, url)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func (a *api) call(method, path, token string, in any, hdr map[string]string) reply {
	a.t.Helper()
	var body []byte
	if in != nil {
		var err error
		body, err = json.Marshal(in)
		require.NoError(a.t, err)
	}
	return a.raw(method, a.s.Gateway+path, token, body, hdr)
}

func (a *api) token(user string) string {
	a.t.Helper()
	tok, err := a.inv.Token(context.Background(), user)
	require.NoError(a.t, err)
	for _, u := range a.world.Users {
		if u == user {
			return tok
		}
	}
	a.world.Users = append(a.world.Users, user)
	return tok
}

func (a *api) admin(method, path string, in any) reply {
	a.t.Helper()
	return a.call(method, path, a.s.AdminToken, in, nil)
}

// stock creates a SKU (or adds units) and records the units in the world.
func (a *api) stock(sku string, price, cost, units int64) {
	a.t.Helper()
	r := a.admin(http.MethodPut, "/api/admin/skus/"+sku, map[string]any{"name": "SKU " + sku, "price_cents": price, "cost_cents": cost, "stock": units})
	require.Equal(a.t, http.StatusOK, r.Status, "%s", r.Body)
	a.world.Stocked[sku] += units
}

func (a *api) coupon(id, user string, amount, minSpend int64) {
	a.t.Helper()
	r := a.admin(http.MethodPut, "/api/admin/coupons/"+id, map[string]any{"user_id": user, "amount_cents": amount, "min_spend_cents": minSpend})
	require.Equal(a.t, http.StatusOK, r.Status, "%s", r.Body)
}

var address = map[string]string{"name": "Li Lei", "phone": "13800000000", "line": "1 Binjiang Road"}

type placed struct {
	OrderID       string    `json:"order_id"`
	State         string    `json:"state"`
	TotalCents    int64     `json:"total_cents"`
	DiscountCents int64     `json:"discount_cents"`
	PayCents      int64     `json:"pay_cents"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// place orders qty of sku as user and requires a 201.
func (a *api) place(user, key, sku string, qty int, coupon string) placed {
	a.t.Helper()
	body := map[string]any{"items": []map[string]any{{"sku_id": sku, "qty": qty}}, "address": address}
	if coupon != "" {
		body["coupon_id"] = coupon
	}
	r := a.call(http.MethodPost, "/api/orders", a.token(user), body, map[string]string{"Idempotency-Key": key})
	require.Equal(a.t, http.StatusCreated, r.Status, "%s", r.Body)
	var p placed
	r.json(a.t, &p)
	require.Equal(a.t, "PENDING_PAYMENT", p.State)
	return p
}

// pay opens the payment and confirms it at the provider, as the user would.
func (a *api) pay(user, orderID string) string {
	a.t.Helper()
	r := a.call(http.MethodPost, "/api/orders/"+orderID+"/pay", a.token(user), nil, nil)
	require.Equal(a.t, http.StatusOK, r.Status, "%s", r.Body)
	var p struct {
		PaymentID string `json:"payment_id"`
		PayCents  int64  `json:"pay_cents"`
	}
	r.json(a.t, &p)
	require.NotEmpty(a.t, p.PaymentID)
	a.confirm(p.PaymentID)
	return p.PaymentID
}

func (a *api) confirm(paymentID string) {
	a.t.Helper()
	r := a.raw(http.MethodPost, a.s.Provider+"/provider/payments/"+paymentID+"/confirm", "", nil, nil)
	require.Equal(a.t, http.StatusOK, r.Status, "%s", r.Body)
}

func (a *api) faults(f map[string]any) {
	a.t.Helper()
	b, err := json.Marshal(f)
	require.NoError(a.t, err)
	r := a.raw(http.MethodPut, a.s.Provider+"/provider/faults", "", b, nil)
	require.Equal(a.t, http.StatusOK, r.Status, "%s", r.Body)
}

func (a *api) order(user, id string) invariant.Order {
	a.t.Helper()
	var o invariant.Order
	require.NoError(a.t, a.inv.Get(context.Background(), user, "/api/orders/"+id, &o))
	return o
}

// waitState waits until the order is in state and returns it. It polls
// on the test goroutine (require must not fail on another).
func (a *api) waitState(user, id, state string, within time.Duration) invariant.Order {
	a.t.Helper()
	deadline := time.Now().Add(within)
	for {
		o := a.order(user, id)
		if o.State == state {
			return o
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("order %s is %s after %v, want %s", id, o.State, within, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eventually polls cond on the test goroutine until it holds.
func eventually(t *testing.T, within time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf(format, args...)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
