// Package order is the order service: it places orders (locking stock and
// reserving a coupon through request-reply), takes the provider's payment
// notifications, closes unpaid orders when their timer fires, cancels and
// refunds, and answers the warehouse's "may I ship?".
//
// The order row is a state machine (contract §2):
//
//	PENDING_PAYMENT → PAID → SHIPPED → COMPLETED
//	PENDING_PAYMENT → CLOSED
//	PAID → REFUNDING → REFUNDED
//
// Every transition is a conditional UPDATE … WHERE state = ?, so a message
// delivered twice or two requests racing change an order at most once; the
// transitions other services must hear of commit together with their
// message (txmsg).
//
// Files: domain.go (states, decisions, validation), store.go (MariaDB),
// place.go, pay.go and callback.go (placement and payment), timeout.go,
// cancel.go and refund.go (closing and returning money), shipping.go (the
// warehouse's requests and events), http.go and view.go (the API),
// provider.go (the provider's HTTP API), service.go (wiring).
package order

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"qianlang.io/services/events"
)

// State is an order's state.
type State string

// Order states (contract §2).
const (
	StatePending   State = "PENDING_PAYMENT"
	StatePaid      State = "PAID"
	StateShipped   State = "SHIPPED"
	StateCompleted State = "COMPLETED"
	StateClosed    State = "CLOSED"
	StateRefunding State = "REFUNDING"
	StateRefunded  State = "REFUNDED"
)

// Shipment and refund states shown with an order.
const (
	ShipmentShipped   = "SHIPPED"
	ShipmentDelivered = "DELIVERED"
	RefundPending     = "REFUNDING"
	RefundDone        = "REFUNDED"
)

// Limits of a placement (contract §2).
const (
	MaxLines       = 50
	MaxQty         = 99
	MaxIdemKeyLen  = 128
	MaxSKUIDLen    = 64
	MaxCouponIDLen = 128
	MaxAddressLen  = 255
)

// Errors the API turns into answers.
var (
	ErrNotFound          = errors.New("order not found")
	ErrOutOfStock        = errors.New("out of stock")
	ErrUnknownSKU        = errors.New("unknown sku")
	ErrCouponUnavailable = errors.New("coupon unavailable")
	ErrUnavailable       = errors.New("a dependency did not answer")
	ErrNotPayable        = errors.New("order is not awaiting payment")
	ErrAlreadyShipped    = errors.New("order has shipped")
)

// errStateChanged: a conditional update found the order in another state
// than it was read in; the caller reads it again and decides anew.
var errStateChanged = errors.New("order state changed")

// InvalidError is a malformed request (400).
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &InvalidError{Msg: fmt.Sprintf(format, args...)}
}

// Address is where an order ships.
type Address = events.Address

// Order is one order.
type Order struct {
	ID            string
	UserID        string
	IdemKey       string
	State         State
	Lines         []events.Line
	TotalCents    int64
	DiscountCents int64
	PayCents      int64
	CouponID      string
	Address       Address
	CreatedAt     time.Time
	ExpiresAt     time.Time
	// OpenedPaymentID is the payment opened at the provider for the order
	// (POST …/pay); PaymentID is the payment that paid it.
	OpenedPaymentID  string
	PaymentID        string
	PaidAt           *time.Time
	CloseReason      string
	ShippingStarted  bool
	ShipmentState    string
	Carrier          string
	TrackingNo       string
	RefundID         string
	RefundState      string
	ProviderRefundID string
}

// Key is the message key of the order's messages.
func (o *Order) Key() string { return events.Key(o.ID) }

// itemLines are the order's lines as requests carry them (SKU and
// quantity only).
func itemLines(items []ItemInput) []events.Line {
	out := make([]events.Line, len(items))
	for i, it := range items {
		out[i] = events.Line{SKUID: it.SKUID, Qty: it.Qty}
	}
	return out
}

// ItemInput is one requested line.
type ItemInput struct {
	SKUID string `json:"sku_id"`
	Qty   int    `json:"qty"`
}

// PlaceInput is a placement request.
type PlaceInput struct {
	UserID   string
	IdemKey  string
	Items    []ItemInput
	CouponID string
	Address  *Address
}

// Validate checks a placement request (everything but the SKUs' existence,
// which inventory answers).
func (in *PlaceInput) Validate() error {
	if err := ValidIdemKey(in.IdemKey); err != nil {
		return err
	}
	switch n := len(in.Items); {
	case n == 0:
		return invalid("items: at least one line is required")
	case n > MaxLines:
		return invalid("items: %d lines, at most %d", n, MaxLines)
	}
	for i, it := range in.Items {
		switch {
		case strings.TrimSpace(it.SKUID) == "":
			return invalid("items[%d].sku_id is required", i)
		case len(it.SKUID) > MaxSKUIDLen:
			return invalid("items[%d].sku_id is longer than %d", i, MaxSKUIDLen)
		case it.Qty <= 0 || it.Qty > MaxQty:
			return invalid("items[%d].qty must be between 1 and %d", i, MaxQty)
		}
	}
	if len(in.CouponID) > MaxCouponIDLen {
		return invalid("coupon_id is longer than %d", MaxCouponIDLen)
	}
	a := in.Address
	if a == nil {
		return invalid("address is required")
	}
	for _, f := range []struct{ name, v string }{{"name", a.Name}, {"phone", a.Phone}, {"line", a.Line}} {
		switch {
		case strings.TrimSpace(f.v) == "":
			return invalid("address.%s is required", f.name)
		case utf8.RuneCountInString(f.v) > MaxAddressLen:
			return invalid("address.%s is longer than %d", f.name, MaxAddressLen)
		}
	}
	return nil
}

// ValidIdemKey checks an Idempotency-Key header.
func ValidIdemKey(k string) error {
	switch n := utf8.RuneCountInString(k); {
	case n == 0:
		return invalid("Idempotency-Key header is required")
	case n > MaxIdemKeyLen || !utf8.ValidString(k):
		return invalid("Idempotency-Key must be at most %d characters", MaxIdemKeyLen)
	}
	return nil
}

// priceLines checks inventory's locked lines against the request and
// returns them with the order's total.
func priceLines(req []events.Line, got []events.Line) ([]events.Line, int64, error) {
	if len(got) != len(req) {
		return nil, 0, fmt.Errorf("stock lock reply has %d lines for %d requested", len(got), len(req))
	}
	var total int64
	out := make([]events.Line, len(req))
	for i, r := range req {
		g := got[i]
		if g.SKUID != r.SKUID || g.Qty != r.Qty || g.PriceCents < 0 || g.CostCents < 0 {
			return nil, 0, fmt.Errorf("stock lock reply line %d is %+v for %+v", i, g, r)
		}
		out[i] = g
		total += g.PriceCents * int64(g.Qty)
	}
	return out, total, nil
}

// discount is what a coupon of amount takes off total.
func discount(amount, total int64) int64 { return max(0, min(amount, total)) }

// paymentAction is what a payment notification does to its order.
type paymentAction int

const (
	paymentAccept paymentAction = iota // the order becomes PAID
	paymentReturn                      // the money goes back
)

// decidePayment: a payment pays a PENDING_PAYMENT order of exactly its
// amount; any other payment (the order closed, refunding or paid by
// another payment, or a wrong amount) is returned.
func decidePayment(o *Order, cents int64) paymentAction {
	if o.State == StatePending && cents == o.PayCents {
		return paymentAccept
	}
	return paymentReturn
}

// cancelAction is what a cancel request does.
type cancelAction int

const (
	cancelClose   cancelAction = iota // unpaid: CLOSED now
	cancelRefund                      // paid, not shipping: REFUNDING
	cancelNothing                     // closed or refunding already
	cancelRefuse                      // shipping: 409 ALREADY_SHIPPED
)

func decideCancel(o *Order) cancelAction {
	switch o.State {
	case StatePending:
		return cancelClose
	case StatePaid:
		if o.ShippingStarted {
			return cancelRefuse
		}
		return cancelRefund
	case StateClosed, StateRefunding, StateRefunded:
		return cancelNothing
	default: // SHIPPED, COMPLETED
		return cancelRefuse
	}
}

// shipAction is the answer to the warehouse's "may I ship?".
type shipAction int

const (
	shipGo     shipAction = iota // already shipping or shipped
	shipStart                    // PAID: mark shipping started, then GO
	shipCancel                   // being refunded or closed
	shipWait                     // not paid yet: ask again later
)

func decideShipment(o *Order) shipAction {
	switch o.State {
	case StatePaid:
		if o.ShippingStarted {
			return shipGo
		}
		return shipStart
	case StateShipped, StateCompleted:
		return shipGo
	case StateRefunding, StateRefunded, StateClosed:
		return shipCancel
	default:
		return shipWait
	}
}

// newID returns prefix + a time-ordered random id.
func newID(prefix string, now time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + strconv.FormatInt(now.UnixMilli(), 36) + hex.EncodeToString(b[:])
}
