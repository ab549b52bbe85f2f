package marketing

import (
	"fmt"
	"regexp"

	"qianlang.io/services/auth"
	"qianlang.io/services/events"
)

// The reward coupon every paid order earns: 500 cents off a next order of
// 5,000 or more.
const (
	RewardAmountCents   = 500
	RewardMinSpendCents = 5000
	MaxCents            = 1_000_000_000_000
)

// RewardCouponID is the id of the reward coupon an order earns.
func RewardCouponID(orderID string) string { return "reward-" + orderID }

var couponIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,160}$`)

// ValidCouponID reports whether id may name a coupon: 1 to 160 letters,
// digits, '-' or '_'.
func ValidCouponID(id string) bool { return couponIDPattern.MatchString(id) }

// CouponState is a coupon's state.
type CouponState string

// Coupon states.
const (
	CouponAvailable CouponState = "AVAILABLE"
	CouponLocked    CouponState = "LOCKED" // reserved by a pending order
	CouponUsed      CouponState = "USED"   // spent by a paid order
	CouponRevoked   CouponState = "REVOKED"
)

// Coupon is one coupon; OrderID is the order holding it (LOCKED or USED).
type Coupon struct {
	CouponID      string      `gorm:"column:coupon_id"`
	UserID        string      `gorm:"column:user_id"`
	AmountCents   int64       `gorm:"column:amount_cents"`
	MinSpendCents int64       `gorm:"column:min_spend_cents"`
	State         CouponState `gorm:"column:state"`
	OrderID       *string     `gorm:"column:order_id"`
}

// HeldBy reports whether the coupon is reserved or spent by orderID.
func (c Coupon) HeldBy(orderID string) bool {
	return c.OrderID != nil && *c.OrderID == orderID && (c.State == CouponLocked || c.State == CouponUsed)
}

// CouponInput is what the admin sends to issue a coupon; missing fields
// are nil.
type CouponInput struct {
	UserID        *string `json:"user_id"`
	AmountCents   *int64  `json:"amount_cents"`
	MinSpendCents *int64  `json:"min_spend_cents"`
}

// CouponSpec is a validated CouponInput.
type CouponSpec struct {
	UserID        string
	AmountCents   int64
	MinSpendCents int64
}

// Validate checks in; min_spend_cents defaults to 0.
func (in CouponInput) Validate() (CouponSpec, error) {
	var s CouponSpec
	switch {
	case in.UserID == nil || !auth.ValidUserID(*in.UserID):
		return s, fmt.Errorf("user_id: want 1-64 of [A-Za-z0-9_-]")
	case in.AmountCents == nil:
		return s, fmt.Errorf("amount_cents is required")
	case *in.AmountCents <= 0 || *in.AmountCents > MaxCents:
		return s, fmt.Errorf("amount_cents must be between 1 and %d", int64(MaxCents))
	case in.MinSpendCents != nil && (*in.MinSpendCents < 0 || *in.MinSpendCents > MaxCents):
		return s, fmt.Errorf("min_spend_cents must be between 0 and %d", int64(MaxCents))
	}
	s = CouponSpec{UserID: *in.UserID, AmountCents: *in.AmountCents}
	if in.MinSpendCents != nil {
		s.MinSpendCents = *in.MinSpendCents
	}
	return s, nil
}

// Same reports whether c is the coupon spec describes (a re-issue).
func (s CouponSpec) Same(c Coupon) bool {
	return c.UserID == s.UserID && c.AmountCents == s.AmountCents && c.MinSpendCents == s.MinSpendCents
}

// OrderState is what marketing knows of an order: the per-order marker
// that makes late or repeated events do nothing.
type OrderState string

// Order states in marketing.
const (
	OrderOpen     OrderState = "OPEN" // heard of (a reservation), not yet paid or closed
	OrderPaid     OrderState = "PAID"
	OrderClosed   OrderState = "CLOSED"
	OrderRefunded OrderState = "REFUNDED"
)

// Finished reports whether the order can no longer reserve a coupon.
func (s OrderState) Finished() bool { return s == OrderPaid || s == OrderClosed || s == OrderRefunded }

// Decision is the answer to a reservation request.
type Decision int

// Decisions.
const (
	Refuse Decision = iota
	Reserve
	AlreadyHeld // the same order asked again: answer RESERVED again
)

// DecideReserve decides a reservation of coupon c (nil when unknown) for
// req, when the order is in state order; reason says why it is refused.
// Another user's coupon is refused as if unknown.
func DecideReserve(c *Coupon, order OrderState, req events.CouponReserveRequest) (Decision, string) {
	switch {
	case c == nil || c.UserID != req.UserID:
		return Refuse, "unknown coupon"
	case c.HeldBy(req.OrderID):
		return AlreadyHeld, ""
	case order.Finished():
		return Refuse, "order is " + string(order)
	case c.State != CouponAvailable:
		return Refuse, "coupon is " + string(c.State)
	case req.TotalCents < c.MinSpendCents:
		return Refuse, fmt.Sprintf("order total %d is below the minimum spend %d", req.TotalCents, c.MinSpendCents)
	}
	return Reserve, ""
}

// Event is what the order service reports about an order.
type Event string

// Events marketing consumes.
const (
	EventPaid   Event = "PAID"   // TopicOrderPaySuccess
	EventClosed Event = "CLOSED" // TopicOrderClosed
	EventRefund Event = "REFUND" // TopicOrderRefund
)

// Effects are what an event does to the order's coupons.
type Effects struct {
	UseLocked     bool // the coupon the order holds: LOCKED → USED
	ReleaseLocked bool // LOCKED by the order → AVAILABLE
	ReleaseUsed   bool // USED by the order → AVAILABLE
	IssueReward   bool // reward-<order_id> to the user
	RevokeReward  bool // reward-<order_id>: AVAILABLE → REVOKED
}

// Transition returns the order's next state on ev and its effects; ok is
// false when ev changes nothing (a redelivery, or an event overtaken by a
// later one: a payment seen after the refund does nothing).
func Transition(from OrderState, ev Event) (to OrderState, eff Effects, ok bool) {
	switch from {
	case "", OrderOpen:
		switch ev {
		case EventPaid:
			return OrderPaid, Effects{UseLocked: true, IssueReward: true}, true
		case EventClosed:
			return OrderClosed, Effects{ReleaseLocked: true}, true
		case EventRefund:
			// Refunded before the payment was seen: no coupon is spent by
			// a refunded order, and none is earned.
			return OrderRefunded, Effects{ReleaseLocked: true}, true
		}
	case OrderPaid:
		if ev == EventRefund {
			return OrderRefunded, Effects{ReleaseUsed: true, RevokeReward: true}, true
		}
	}
	return from, Effects{}, false
}
