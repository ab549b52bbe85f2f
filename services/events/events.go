// Package events names the platform's topics and consumer groups and
// defines the JSON payload of each message, the only way the services
// speak to each other (docs/architecture/07-order-platform.md).
//
// Every message carries an event id (property EventIDProperty), stable for
// one business event however often it is sent or delivered; consumers
// record it to apply each event once. Keys are "order-<order_id>", so
// mqadmin queryMsgByKey finds an order's whole history.
package events

import "time"

// Topics of business events.
const (
	// TopicOrderPaySuccess: an order became PAID (transactional, from order).
	TopicOrderPaySuccess = "TopicOrderPaySuccess"
	// TopicOrderClosed: an unpaid order was closed, or an order that was
	// never created gives back what it had reserved (transactional or
	// plain, from order).
	TopicOrderClosed = "TopicOrderClosed"
	// TopicOrderRefund: a paid order became REFUNDING (transactional, from order).
	TopicOrderRefund = "TopicOrderRefund"
	// TopicOrderRefunded: the provider confirmed an order's refund; the
	// order is REFUNDED (transactional, from order).
	TopicOrderRefunded = "TopicOrderRefunded"
	// TopicPaymentRefund: a payment that arrived for an order that can no
	// longer take it must be returned (transactional, from order to itself).
	TopicPaymentRefund = "TopicPaymentRefund"
	// TopicOrderTimeout: an order's payment deadline (a timer message from
	// order to itself, delivered at the deadline).
	TopicOrderTimeout = "TopicOrderTimeout"
	// TopicOrderShipped: the carrier accepted an order's shipment
	// (transactional, from warehouse).
	TopicOrderShipped = "TopicOrderShipped"
	// TopicOrderDelivered: the carrier delivered an order (transactional,
	// from warehouse).
	TopicOrderDelivered = "TopicOrderDelivered"
	// TopicShipmentDue: a paid order's handling time in the warehouse is
	// over and it may go to the carrier (a timer message from warehouse to
	// itself; the payload is the OrderPaid event).
	TopicShipmentDue = "TopicShipmentDue"
)

// Topics of request-reply calls, where an answer is needed at once.
const (
	// TopicStockLock: order asks inventory to lock an order's stock.
	TopicStockLock = "TopicStockLock"
	// TopicCouponReserve: order asks marketing to reserve a coupon.
	TopicCouponReserve = "TopicCouponReserve"
	// TopicShipmentStart: warehouse asks order whether it may ship.
	TopicShipmentStart = "TopicShipmentStart"
)

// Topics lists every topic the platform uses; qlstack creates them.
var Topics = []string{
	TopicOrderPaySuccess, TopicOrderClosed, TopicOrderRefund, TopicOrderRefunded,
	TopicPaymentRefund, TopicOrderTimeout, TopicOrderShipped, TopicOrderDelivered, TopicShipmentDue,
	TopicStockLock, TopicCouponReserve, TopicShipmentStart,
}

// Consumer groups: one per system and purpose; each group gets every
// message of its topics.
const (
	GroupStock         = "stock_consumer_group"     // inventory: paid, closed, refunded
	GroupCredit        = "credit_consumer_group"    // points: paid, refund
	GroupMarketing     = "marketing_consumer_group" // marketing: paid, closed, refund
	GroupPush          = "push_consumer_group"      // push: paid, shipped, closed, refunded
	GroupWMS           = "wms_consumer_group"       // warehouse: paid, shipment due
	GroupOrderTimeout  = "order_timeout_group"      // order: timeout
	GroupOrderShipping = "order_shipping_group"     // order: shipped, delivered
	GroupRefund        = "refund_consumer_group"    // order: refund, payment refund (the money)
	GroupStockLock     = "stock_lock_group"         // inventory: lock requests
	GroupCouponReserve = "coupon_reserve_group"     // marketing: reserve requests
	GroupShipmentStart = "shipment_start_group"     // order: may-I-ship requests
)

// Groups lists every consumer group of the platform.
var Groups = []string{
	GroupStock, GroupCredit, GroupMarketing, GroupPush, GroupWMS, GroupOrderTimeout,
	GroupOrderShipping, GroupRefund, GroupStockLock, GroupCouponReserve, GroupShipmentStart,
}

// EventIDProperty is the user property carrying a message's event id.
const EventIDProperty = "QL_EVENT_ID"

// Key returns the message key of an order's messages.
func Key(orderID string) string { return "order-" + orderID }

// Line is one order line as the events carry it.
type Line struct {
	SKUID      string `json:"sku_id"`
	Qty        int    `json:"qty"`
	PriceCents int64  `json:"price_cents"`
	CostCents  int64  `json:"cost_cents"`
}

// OrderPaid is the payload of TopicOrderPaySuccess.
type OrderPaid struct {
	OrderID   string    `json:"order_id"`
	UserID    string    `json:"user_id"`
	PaymentID string    `json:"payment_id"`
	PayCents  int64     `json:"pay_cents"`
	CouponID  string    `json:"coupon_id,omitempty"`
	Items     []Line    `json:"items"`
	Address   Address   `json:"address"`
	PaidAt    time.Time `json:"paid_at"`
}

// Address is where an order ships.
type Address struct {
	Name  string `json:"name"`
	Phone string `json:"phone"`
	Line  string `json:"line"`
}

// Close reasons.
const (
	CloseCancelled = "CANCELLED" // the user cancelled before paying
	CloseTimeout   = "TIMEOUT"   // unpaid past the deadline
	CloseAbandoned = "ABANDONED" // never created: placing it failed after reserving
)

// OrderClosed is the payload of TopicOrderClosed. Items and CouponID may be
// empty for an abandoned order; consumers release whatever they hold for
// OrderID and remember that it is closed.
type OrderClosed struct {
	OrderID  string    `json:"order_id"`
	UserID   string    `json:"user_id"`
	Reason   string    `json:"reason"`
	CouponID string    `json:"coupon_id,omitempty"`
	Items    []Line    `json:"items,omitempty"`
	ClosedAt time.Time `json:"closed_at"`
}

// Notify reports whether the user is told of the close (an abandoned order
// was never theirs to see).
func (c OrderClosed) Notify() bool { return c.Reason != CloseAbandoned }

// OrderRefund is the payload of TopicOrderRefund.
type OrderRefund struct {
	OrderID   string    `json:"order_id"`
	UserID    string    `json:"user_id"`
	RefundID  string    `json:"refund_id"`
	PaymentID string    `json:"payment_id"`
	PayCents  int64     `json:"pay_cents"`
	CouponID  string    `json:"coupon_id,omitempty"`
	Items     []Line    `json:"items"`
	At        time.Time `json:"at"`
}

// OrderRefunded is the payload of TopicOrderRefunded.
type OrderRefunded struct {
	OrderID          string    `json:"order_id"`
	UserID           string    `json:"user_id"`
	RefundID         string    `json:"refund_id"`
	ProviderRefundID string    `json:"provider_refund_id"`
	Items            []Line    `json:"items"`
	At               time.Time `json:"at"`
}

// PaymentRefund is the payload of TopicPaymentRefund: return a payment
// that arrived for an order that could not take it.
type PaymentRefund struct {
	OrderID   string    `json:"order_id"`
	RefundID  string    `json:"refund_id"`
	PaymentID string    `json:"payment_id"`
	Cents     int64     `json:"cents"`
	At        time.Time `json:"at"`
}

// OrderTimeout is the payload of TopicOrderTimeout.
type OrderTimeout struct {
	OrderID  string    `json:"order_id"`
	UserID   string    `json:"user_id"`
	Deadline time.Time `json:"deadline"`
}

// OrderShipped is the payload of TopicOrderShipped.
type OrderShipped struct {
	OrderID    string    `json:"order_id"`
	UserID     string    `json:"user_id"`
	Carrier    string    `json:"carrier"`
	TrackingNo string    `json:"tracking_no"`
	At         time.Time `json:"at"`
}

// OrderDelivered is the payload of TopicOrderDelivered.
type OrderDelivered struct {
	OrderID    string    `json:"order_id"`
	UserID     string    `json:"user_id"`
	Carrier    string    `json:"carrier"`
	TrackingNo string    `json:"tracking_no"`
	At         time.Time `json:"at"`
}

// StockLockRequest asks inventory to lock an order's lines (TopicStockLock).
type StockLockRequest struct {
	OrderID string `json:"order_id"`
	Items   []Line `json:"items"` // SKUID and Qty only
}

// Stock lock outcomes.
const (
	StockLocked     = "LOCKED"
	StockOutOfStock = "OUT_OF_STOCK"
	StockUnknownSKU = "UNKNOWN_SKU"
	StockReleased   = "RELEASED" // the order was closed before its lock arrived
)

// StockLockReply answers a StockLockRequest. When Result is StockLocked,
// Items carry each line's price and cost at the time of the lock. A
// repeated request for the same order gets the same answer.
type StockLockReply struct {
	Result string `json:"result"`
	SKUID  string `json:"sku_id,omitempty"` // the line that failed
	Items  []Line `json:"items,omitempty"`
}

// CouponReserveRequest asks marketing to reserve a coupon for an order.
type CouponReserveRequest struct {
	OrderID    string `json:"order_id"`
	UserID     string `json:"user_id"`
	CouponID   string `json:"coupon_id"`
	TotalCents int64  `json:"total_cents"`
}

// Coupon reservation outcomes.
const (
	CouponReserved    = "RESERVED"
	CouponUnavailable = "UNAVAILABLE"
)

// CouponReserveReply answers a CouponReserveRequest.
type CouponReserveReply struct {
	Result      string `json:"result"`
	AmountCents int64  `json:"amount_cents,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// ShipmentStartRequest asks order whether an order may ship now.
type ShipmentStartRequest struct {
	OrderID string `json:"order_id"`
}

// Shipment start answers.
const (
	ShipmentGo        = "GO"        // ship it; the order can no longer be cancelled
	ShipmentCancelled = "CANCELLED" // the order is being refunded: do not ship
)

// ShipmentStartReply answers a ShipmentStartRequest.
type ShipmentStartReply struct {
	Result string `json:"result"`
}
