package order

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// OrderView is an order as the API shows it (contract §2).
type OrderView struct {
	OrderID       string        `json:"order_id"`
	UserID        string        `json:"user_id"`
	State         State         `json:"state"`
	Items         []ItemView    `json:"items"`
	TotalCents    int64         `json:"total_cents"`
	DiscountCents int64         `json:"discount_cents"`
	PayCents      int64         `json:"pay_cents"`
	CouponID      string        `json:"coupon_id,omitempty"`
	CreatedAt     time.Time     `json:"created_at"`
	PaidAt        *time.Time    `json:"paid_at"`
	Shipment      *ShipmentView `json:"shipment"`
	Refund        *RefundView   `json:"refund"`
}

// ItemView is one order line.
type ItemView struct {
	SKUID      string `json:"sku_id"`
	Qty        int    `json:"qty"`
	PriceCents int64  `json:"price_cents"`
}

// ShipmentView is an order's shipment, once the carrier accepted it.
type ShipmentView struct {
	State      string `json:"state"`
	Carrier    string `json:"carrier"`
	TrackingNo string `json:"tracking_no"`
}

// RefundView is an order's refund, once one was asked for.
type RefundView struct {
	State            string  `json:"state"`
	ProviderRefundID *string `json:"provider_refund_id"`
}

// View returns o as the API shows it.
func View(o *Order) OrderView {
	v := OrderView{
		OrderID: o.ID, UserID: o.UserID, State: o.State, Items: make([]ItemView, len(o.Lines)),
		TotalCents: o.TotalCents, DiscountCents: o.DiscountCents, PayCents: o.PayCents, CouponID: o.CouponID,
		CreatedAt: o.CreatedAt.UTC(), PaidAt: utcPtr(o.PaidAt),
	}
	for i, l := range o.Lines {
		v.Items[i] = ItemView{SKUID: l.SKUID, Qty: l.Qty, PriceCents: l.PriceCents}
	}
	if o.ShipmentState != "" {
		v.Shipment = &ShipmentView{State: o.ShipmentState, Carrier: o.Carrier, TrackingNo: o.TrackingNo}
	}
	if o.RefundID != "" {
		v.Refund = &RefundView{State: o.RefundState}
		if o.ProviderRefundID != "" || o.RefundState == RefundDone {
			id := o.ProviderRefundID
			v.Refund.ProviderRefundID = &id
		}
	}
	return v
}

// PlacedView answers a placement.
type PlacedView struct {
	OrderID       string    `json:"order_id"`
	State         State     `json:"state"`
	TotalCents    int64     `json:"total_cents"`
	DiscountCents int64     `json:"discount_cents"`
	PayCents      int64     `json:"pay_cents"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// Placed returns o as a placement answers it.
func Placed(o *Order) PlacedView {
	return PlacedView{OrderID: o.ID, State: o.State, TotalCents: o.TotalCents, DiscountCents: o.DiscountCents,
		PayCents: o.PayCents, ExpiresAt: o.ExpiresAt.UTC()}
}

// ListView is a page of the user's orders.
type ListView struct {
	Orders     []OrderView `json:"orders"`
	NextCursor *string     `json:"next_cursor"`
}

// EncodeCursor makes the opaque cursor of a list position.
func EncodeCursor(c Cursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + "|" + c.OrderID))
}

// DecodeCursor reads a cursor made by EncodeCursor.
func DecodeCursor(s string) (*Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, invalid("cursor is malformed")
	}
	ts, id, ok := strings.Cut(string(b), "|")
	us, err := strconv.ParseInt(ts, 10, 64)
	if !ok || err != nil || id == "" {
		return nil, invalid("cursor is malformed")
	}
	return &Cursor{CreatedAt: time.UnixMicro(us).UTC(), OrderID: id}, nil
}

// parseLimit reads the list's limit: 20 when absent, else 1 to 100.
func parseLimit(s string) (int, error) {
	if s == "" {
		return 20, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 100 {
		return 0, invalid("limit must be an integer from 1 to 100")
	}
	return n, nil
}
