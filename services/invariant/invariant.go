// Package invariant checks the platform's invariants (contract §4) after a
// run, reading only what the contract publishes: the gateway API (orders,
// stock, points, coupons, notifications) and the provider's ledger. The
// integration tests, `make demo` and `qlload` all end with it.
package invariant

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// World is what the traffic knows that the platform does not publish: the
// users it acted as and the units of each SKU it ever stocked.
type World struct {
	Users   []string
	Stocked map[string]int64
}

// Result is one invariant's outcome.
type Result struct {
	N          int
	Name       string
	Checked    int // things looked at (SKUs, orders, users, coupons)
	Violations []string
}

// OK reports whether the invariant held.
func (r Result) OK() bool { return len(r.Violations) == 0 }

// Report is every invariant's outcome.
type Report struct{ Results []Result }

// OK reports whether every invariant held.
func (r Report) OK() bool {
	for _, x := range r.Results {
		if !x.OK() {
			return false
		}
	}
	return true
}

// String prints one line per invariant with ✓ or ✗, then up to five
// violations of each that failed.
func (r Report) String() string {
	var b strings.Builder
	for _, x := range r.Results {
		mark := "✓"
		if !x.OK() {
			mark = "✗"
		}
		fmt.Fprintf(&b, "%s %d. %s (%d checked", mark, x.N, x.Name, x.Checked)
		if !x.OK() {
			fmt.Fprintf(&b, ", %d violations", len(x.Violations))
		}
		b.WriteString(")\n")
		for i, v := range x.Violations {
			if i == 5 {
				fmt.Fprintf(&b, "    … and %d more\n", len(x.Violations)-5)
				break
			}
			fmt.Fprintf(&b, "    %s\n", v)
		}
	}
	return b.String()
}

type userView struct {
	orders  []Order
	points  Points
	coupons []Coupon
	notes   []Notification
}

type snapshot struct {
	users   map[string]*userView
	skus    map[string]SKU
	ledgers map[string]Ledger
}

func read(ctx context.Context, c *Client, w World) (*snapshot, error) {
	s := &snapshot{users: map[string]*userView{}, skus: map[string]SKU{}, ledgers: map[string]Ledger{}}
	for _, u := range w.Users {
		v := &userView{}
		var err error
		if v.orders, err = c.Orders(ctx, u); err != nil {
			return nil, err
		}
		if err := c.Get(ctx, u, "/api/points", &v.points); err != nil {
			return nil, err
		}
		if err := c.Get(ctx, u, "/api/coupons", &v.coupons); err != nil {
			return nil, err
		}
		if err := c.Get(ctx, u, "/api/notifications", &v.notes); err != nil {
			return nil, err
		}
		for _, o := range v.orders {
			l, err := c.Ledger(ctx, o.OrderID)
			if err != nil {
				return nil, err
			}
			s.ledgers[o.OrderID] = l
		}
		s.users[u] = v
	}
	for id := range w.Stocked {
		var k SKU
		if err := c.Get(ctx, "", "/api/skus/"+id, &k); err != nil {
			return nil, err
		}
		s.skus[id] = k
	}
	return s, nil
}

// Check reads the platform and checks invariants 1-6. An error means the
// platform could not be read, not that an invariant failed.
func Check(ctx context.Context, c *Client, w World) (Report, error) {
	s, err := read(ctx, c, w)
	if err != nil {
		return Report{}, err
	}
	return Report{Results: []Result{
		s.stock(w), s.money(), s.points(), s.coupons(), s.shipments(), s.notifications(),
	}}, nil
}

func (s *snapshot) allOrders() []Order {
	var out []Order
	for _, u := range sortedKeys(s.users) {
		out = append(out, s.users[u].orders...)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (s *snapshot) stock(w World) Result {
	r := Result{N: 1, Name: "stock: available + locked + sold = stocked; sold and locked match the orders"}
	sold, locked := map[string]int64{}, map[string]int64{}
	for _, o := range s.allOrders() {
		for _, it := range o.Items {
			switch {
			case in(o.State, Paid, Shipped, Completed, Refunding):
				sold[it.SKUID] += it.Qty
			case o.State == Pending:
				locked[it.SKUID] += it.Qty
			}
		}
	}
	for _, id := range sortedKeys(w.Stocked) {
		k := s.skus[id]
		r.Checked++
		if k.Available < 0 || k.Locked < 0 || k.Sold < 0 {
			r.Violations = append(r.Violations, fmt.Sprintf("sku %s: negative counter %+v", id, k))
		}
		if got := k.Available + k.Locked + k.Sold; got != w.Stocked[id] {
			r.Violations = append(r.Violations, fmt.Sprintf("sku %s: available %d + locked %d + sold %d = %d, stocked %d", id, k.Available, k.Locked, k.Sold, got, w.Stocked[id]))
		}
		if k.Sold != sold[id] {
			r.Violations = append(r.Violations, fmt.Sprintf("sku %s: sold %d, orders hold %d", id, k.Sold, sold[id]))
		}
		if k.Locked != locked[id] {
			r.Violations = append(r.Violations, fmt.Sprintf("sku %s: locked %d, pending orders hold %d", id, k.Locked, locked[id]))
		}
	}
	return r
}

func (s *snapshot) money() Result {
	r := Result{N: 2, Name: "money: provider payments − refunds match each order's state"}
	for _, o := range s.allOrders() {
		l := s.ledgers[o.OrderID]
		r.Checked++
		var paid, refunded int64
		for _, p := range l.Payments {
			paid += p.Cents
		}
		for _, x := range l.Refunds {
			refunded += x.Cents
		}
		want := int64(0)
		if in(o.State, Paid, Shipped, Completed, Refunding) {
			want = o.PayCents
		}
		if paid-refunded != want {
			r.Violations = append(r.Violations, fmt.Sprintf("order %s %s: payments %d − refunds %d = %d, want %d", o.OrderID, o.State, paid, refunded, paid-refunded, want))
		}
		if refunded > paid || len(l.Refunds) > len(l.Payments) {
			r.Violations = append(r.Violations, fmt.Sprintf("order %s: %d refunds (%d cents) for %d payments (%d cents)", o.OrderID, len(l.Refunds), refunded, len(l.Payments), paid))
		}
	}
	return r
}

func (s *snapshot) points() Result {
	r := Result{N: 3, Name: "points: balance = Σ floor(pay/100) over paid orders; one + and one − per order at most"}
	for _, u := range sortedKeys(s.users) {
		v := s.users[u]
		r.Checked++
		var want int64
		for _, o := range v.orders {
			if in(o.State, Paid, Shipped, Completed) {
				want += o.PayCents / 100
			}
		}
		if v.points.Balance != want {
			r.Violations = append(r.Violations, fmt.Sprintf("user %s: balance %d, want %d", u, v.points.Balance, want))
		}
		plus, minus := map[string]int{}, map[string]int{}
		var sum int64
		for _, e := range v.points.Entries {
			sum += e.Delta
			if e.Delta > 0 {
				plus[e.OrderID]++
			} else if e.Delta < 0 {
				minus[e.OrderID]++
			}
		}
		if sum != v.points.Balance {
			r.Violations = append(r.Violations, fmt.Sprintf("user %s: entries sum to %d, balance %d", u, sum, v.points.Balance))
		}
		for id, n := range plus {
			if n > 1 {
				r.Violations = append(r.Violations, fmt.Sprintf("order %s: %d + entries", id, n))
			}
		}
		for id, n := range minus {
			if n > 1 {
				r.Violations = append(r.Violations, fmt.Sprintf("order %s: %d − entries", id, n))
			}
		}
	}
	return r
}

func (s *snapshot) coupons() Result {
	r := Result{N: 4, Name: "coupons: USED by one paid order, LOCKED by one pending order, otherwise AVAILABLE"}
	for _, u := range sortedKeys(s.users) {
		v := s.users[u]
		used, lockedBy, refunding := map[string]int{}, map[string]int{}, map[string]int{}
		for _, o := range v.orders {
			if o.CouponID == "" {
				if o.DiscountCents > 0 {
					r.Violations = append(r.Violations, fmt.Sprintf("order %s: discount %d but no coupon_id shown", o.OrderID, o.DiscountCents))
				}
				continue
			}
			switch {
			case in(o.State, Paid, Shipped, Completed):
				used[o.CouponID]++
			case o.State == Pending:
				lockedBy[o.CouponID]++
			case o.State == Refunding:
				refunding[o.CouponID]++
			}
		}
		for _, cp := range v.coupons {
			r.Checked++
			id := cp.CouponID
			n := used[id] + lockedBy[id]
			switch {
			case n > 1:
				r.Violations = append(r.Violations, fmt.Sprintf("coupon %s: held by %d orders", id, n))
			case used[id] == 1 && cp.State != "USED":
				r.Violations = append(r.Violations, fmt.Sprintf("coupon %s: %s, but a paid order uses it", id, cp.State))
			case lockedBy[id] == 1 && cp.State != "LOCKED":
				r.Violations = append(r.Violations, fmt.Sprintf("coupon %s: %s, but a pending order holds it", id, cp.State))
			case n == 0 && refunding[id] == 0 && cp.State != "AVAILABLE" && cp.State != "REVOKED":
				r.Violations = append(r.Violations, fmt.Sprintf("coupon %s: %s, but no live order holds it", id, cp.State))
			}
		}
	}
	return r
}

func (s *snapshot) shipments() Result {
	r := Result{N: 5, Name: "shipments: one per shipped order, none for an order refunded or closed before shipping"}
	for _, o := range s.allOrders() {
		r.Checked++
		n := len(s.ledgers[o.OrderID].Shipments)
		switch {
		case in(o.State, Shipped, Completed) && n != 1:
			r.Violations = append(r.Violations, fmt.Sprintf("order %s %s: %d provider shipments, want 1", o.OrderID, o.State, n))
		case in(o.State, Pending, Closed, Refunding, Refunded) && n != 0:
			r.Violations = append(r.Violations, fmt.Sprintf("order %s %s: %d provider shipments, want 0", o.OrderID, o.State, n))
		case o.State == Paid && n > 1:
			r.Violations = append(r.Violations, fmt.Sprintf("order %s PAID: %d provider shipments", o.OrderID, n))
		}
	}
	return r
}

// expectedKinds returns, per notification kind, whether it must (1), may
// (-1) or must not (0) have happened for an order in state.
func expectedKinds(state string) map[string]int {
	k := map[string]int{"ORDER_PAID": 0, "ORDER_SHIPPED": 0, "ORDER_CLOSED": 0, "ORDER_REFUNDED": 0}
	if in(state, Paid, Shipped, Completed, Refunding, Refunded) {
		k["ORDER_PAID"] = 1
	}
	switch state {
	case Shipped, Completed:
		k["ORDER_SHIPPED"] = 1
	case Paid:
		k["ORDER_SHIPPED"] = -1 // the shipment may be accepted while the order catches up
	case Closed:
		k["ORDER_CLOSED"] = 1
	case Refunded:
		k["ORDER_REFUNDED"] = 1
	}
	return k
}

func (s *snapshot) notifications() Result {
	r := Result{N: 6, Name: "notifications: one per (order, kind) that happened, and one SMS at the provider for each"}
	for _, u := range sortedKeys(s.users) {
		v := s.users[u]
		notes := map[string]map[string]int{}
		for _, n := range v.notes {
			if notes[n.OrderID] == nil {
				notes[n.OrderID] = map[string]int{}
			}
			notes[n.OrderID][n.Kind]++
		}
		for _, o := range v.orders {
			r.Checked++
			sms := map[string]int{}
			for _, m := range s.ledgers[o.OrderID].SMS {
				sms[m.Kind]++
			}
			for kind, want := range expectedKinds(o.State) {
				got, sent := notes[o.OrderID][kind], sms[kind]
				if want == -1 {
					if got > 1 || sent > 1 || got != sent {
						r.Violations = append(r.Violations, fmt.Sprintf("order %s %s: %s %d notifications, %d SMS", o.OrderID, o.State, kind, got, sent))
					}
					continue
				}
				if got != want || sent != want {
					r.Violations = append(r.Violations, fmt.Sprintf("order %s %s: %s %d notifications, %d SMS, want %d", o.OrderID, o.State, kind, got, sent, want))
				}
			}
		}
	}
	return r
}
