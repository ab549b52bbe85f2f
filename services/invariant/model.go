package invariant

// Order is an order as GET /api/orders shows it.
type Order struct {
	OrderID       string `json:"order_id"`
	UserID        string `json:"user_id"`
	State         string `json:"state"`
	Items         []Item `json:"items"`
	TotalCents    int64  `json:"total_cents"`
	DiscountCents int64  `json:"discount_cents"`
	PayCents      int64  `json:"pay_cents"`
	CouponID      string `json:"coupon_id,omitempty"`
	Shipment      *struct {
		State      string `json:"state"`
		Carrier    string `json:"carrier"`
		TrackingNo string `json:"tracking_no"`
	} `json:"shipment"`
	Refund *struct {
		State            string `json:"state"`
		ProviderRefundID string `json:"provider_refund_id"`
	} `json:"refund"`
}

// Item is one order line.
type Item struct {
	SKUID string `json:"sku_id"`
	Qty   int64  `json:"qty"`
}

// SKU is GET /api/skus/{sku_id}.
type SKU struct {
	SKUID     string `json:"sku_id"`
	Available int64  `json:"available"`
	Locked    int64  `json:"locked"`
	Sold      int64  `json:"sold"`
}

// Points is GET /api/points.
type Points struct {
	Balance int64         `json:"balance"`
	Entries []PointsEntry `json:"entries"`
}

// PointsEntry is one entry of GET /api/points.
type PointsEntry struct {
	OrderID string `json:"order_id"`
	Delta   int64  `json:"delta"`
	Reason  string `json:"reason"`
}

// Coupon is one entry of GET /api/coupons.
type Coupon struct {
	CouponID string `json:"coupon_id"`
	State    string `json:"state"`
}

// Notification is one entry of GET /api/notifications.
type Notification struct {
	OrderID string `json:"order_id"`
	Kind    string `json:"kind"`
}

// Ledger is the provider's GET /provider/ledger.
type Ledger struct {
	Payments  []Money    `json:"payments"`
	Refunds   []Money    `json:"refunds"`
	SMS       []SMS      `json:"sms"`
	Shipments []Shipment `json:"shipments"`
}

// Money is a payment or a refund in the ledger.
type Money struct {
	PaymentID string `json:"payment_id,omitempty"`
	RefundID  string `json:"refund_id,omitempty"`
	Cents     int64  `json:"cents"`
}

// SMS is one text the provider sent.
type SMS struct {
	UserID  string `json:"user_id"`
	OrderID string `json:"order_id"`
	Kind    string `json:"kind"`
}

// Shipment is one shipment the carrier accepted.
type Shipment struct {
	OrderID    string `json:"order_id"`
	TrackingNo string `json:"tracking_no"`
}

// Order states.
const (
	Pending   = "PENDING_PAYMENT"
	Paid      = "PAID"
	Shipped   = "SHIPPED"
	Completed = "COMPLETED"
	Closed    = "CLOSED"
	Refunding = "REFUNDING"
	Refunded  = "REFUNDED"
)

func in(state string, states ...string) bool {
	for _, s := range states {
		if s == state {
			return true
		}
	}
	return false
}
