package points

// Entry reasons.
const (
	ReasonPaid     = "ORDER_PAID"
	ReasonRefunded = "ORDER_REFUNDED"
)

// For returns the points a paid order earns: one per full 100 cents paid.
func For(payCents int64) int64 {
	if payCents <= 0 {
		return 0
	}
	return payCents / 100
}

// OrderState is what points knows of an order: the per-order marker that
// makes late or repeated events do nothing.
type OrderState string

// Order states in points ("" is an order not heard of).
const (
	OrderPaid     OrderState = "PAID"
	OrderRefunded OrderState = "REFUNDED"
)

// Event is what the order service reports about an order.
type Event string

// Events points consumes.
const (
	EventPaid   Event = "PAID"   // TopicOrderPaySuccess
	EventRefund Event = "REFUND" // TopicOrderRefund
)

// Effect is what an event does to the order's points.
type Effect int

// Effects.
const (
	None   Effect = iota
	Credit        // the + entry: For(pay_cents), reason ORDER_PAID
	Debit         // the − entry: minus the + entry, reason ORDER_REFUNDED, if there is one
)

// Transition returns the order's next state on ev and its effect; ok is
// false when ev changes nothing. A refund seen before the payment leaves
// the order REFUNDED with no entry, so the late payment earns nothing.
func Transition(from OrderState, ev Event) (to OrderState, eff Effect, ok bool) {
	switch {
	case from == "" && ev == EventPaid:
		return OrderPaid, Credit, true
	case from == "" && ev == EventRefund:
		return OrderRefunded, None, true
	case from == OrderPaid && ev == EventRefund:
		return OrderRefunded, Debit, true
	}
	return from, None, false
}
