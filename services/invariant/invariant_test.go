package invariant

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// consistent is a small world in which every invariant holds: u1 has a
// paid order with a coupon, a closed one and a refunded one.
func consistent() (*snapshot, World) {
	w := World{Users: []string{"u1"}, Stocked: map[string]int64{"s1": 10}}
	paid := Order{OrderID: "o1", UserID: "u1", State: Completed, Items: []Item{{"s1", 2}}, TotalCents: 2000, DiscountCents: 500, PayCents: 1500, CouponID: "c1"}
	closed := Order{OrderID: "o2", UserID: "u1", State: Closed, Items: []Item{{"s1", 1}}, PayCents: 1000}
	refunded := Order{OrderID: "o3", UserID: "u1", State: Refunded, Items: []Item{{"s1", 1}}, PayCents: 1000}
	pending := Order{OrderID: "o4", UserID: "u1", State: Pending, Items: []Item{{"s1", 3}}, PayCents: 3000}
	s := &snapshot{users: map[string]*userView{}, skus: map[string]SKU{}, ledgers: map[string]Ledger{}}
	v := &userView{orders: []Order{paid, closed, refunded, pending}}
	v.points.Balance = 15
	v.points.Entries = append(v.points.Entries,
		PointsEntry{"o1", 15, "ORDER_PAID"},
		PointsEntry{"o3", 10, "ORDER_PAID"},
		PointsEntry{"o3", -10, "ORDER_REFUNDED"})
	v.coupons = []Coupon{{"c1", "USED"}, {"reward-o1", "AVAILABLE"}, {"reward-o3", "REVOKED"}}
	v.notes = []Notification{{"o1", "ORDER_PAID"}, {"o1", "ORDER_SHIPPED"}, {"o2", "ORDER_CLOSED"}, {"o3", "ORDER_PAID"}, {"o3", "ORDER_REFUNDED"}}
	s.users["u1"] = v
	s.skus["s1"] = SKU{SKUID: "s1", Available: 5, Locked: 3, Sold: 2}
	var l1, l2, l3 Ledger
	l1.Payments = append(l1.Payments, Money{PaymentID: "p1", Cents: 1500})
	l1.Shipments = append(l1.Shipments, Shipment{"o1", "T1"})
	for _, k := range []string{"ORDER_PAID", "ORDER_SHIPPED"} {
		l1.SMS = append(l1.SMS, SMS{"u1", "o1", k})
	}
	l2.SMS = append(l2.SMS, SMS{"u1", "o2", "ORDER_CLOSED"})
	l3.Payments = append(l3.Payments, Money{PaymentID: "p3", Cents: 1000})
	l3.Refunds = append(l3.Refunds, Money{RefundID: "r3", Cents: 1000})
	for _, k := range []string{"ORDER_PAID", "ORDER_REFUNDED"} {
		l3.SMS = append(l3.SMS, SMS{"u1", "o3", k})
	}
	s.ledgers["o1"], s.ledgers["o2"], s.ledgers["o3"] = l1, l2, l3
	return s, w
}

func results(s *snapshot, w World) Report {
	return Report{Results: []Result{s.stock(w), s.money(), s.points(), s.coupons(), s.shipments(), s.notifications()}}
}

func TestConsistentWorldHolds(t *testing.T) {
	s, w := consistent()
	r := results(s, w)
	require.True(t, r.OK(), r.String())
}

// Each break violates exactly the invariant it names.
func TestEachBreakIsCaught(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n       int
		breakIt func(s *snapshot, w *World)
	}{
		{"stock lost", 1, func(s *snapshot, w *World) { w.Stocked["s1"] = 11 }},
		{"oversold", 1, func(s *snapshot, _ *World) { s.skus["s1"] = SKU{Available: 4, Locked: 3, Sold: 3} }},
		{"refund without confirmation", 2, func(s *snapshot, _ *World) { l := s.ledgers["o3"]; l.Refunds = nil; s.ledgers["o3"] = l }},
		{"double refund", 2, func(s *snapshot, _ *World) {
			l := s.ledgers["o3"]
			l.Refunds = append(l.Refunds, l.Refunds[0])
			s.ledgers["o3"] = l
		}},
		{"points twice", 3, func(s *snapshot, _ *World) {
			v := s.users["u1"]
			v.points.Entries = append(v.points.Entries, v.points.Entries[0])
			v.points.Balance += 15
		}},
		{"coupon not used", 4, func(s *snapshot, _ *World) { s.users["u1"].coupons[0].State = "AVAILABLE" }},
		{"shipped twice", 5, func(s *snapshot, _ *World) {
			l := s.ledgers["o1"]
			l.Shipments = append(l.Shipments, l.Shipments[0])
			s.ledgers["o1"] = l
		}},
		{"sms twice", 6, func(s *snapshot, _ *World) {
			l := s.ledgers["o2"]
			l.SMS = append(l.SMS, l.SMS[0])
			s.ledgers["o2"] = l
		}},
		{"notification missing", 6, func(s *snapshot, _ *World) { s.users["u1"].notes = s.users["u1"].notes[1:] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, w := consistent()
			tc.breakIt(s, &w)
			for _, r := range results(s, w).Results {
				require.Equal(t, r.N != tc.n, r.OK(), "invariant %d: %v", r.N, r.Violations)
			}
		})
	}
}
