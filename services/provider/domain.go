package provider

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"
)

// Payment states.
const (
	PaymentOpen = "OPEN" // opened by the platform, not yet paid by the user
	PaymentPaid = "PAID" // the user paid: the money left the user
)

// RefundRefunded is the only state a recorded refund has: a refund that
// failed leaves no record.
const RefundRefunded = "REFUNDED"

// Domain errors; the HTTP layer maps them to the contract's answers.
var (
	ErrNotFound      = errors.New("not found")
	ErrRefundExceeds = errors.New("refunds would exceed the payment")
	ErrNotPaid       = errors.New("payment is not paid")
)

// InvalidError is a request refused as malformed (a 400).
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string { return e.Err.Error() }

// Unwrap returns the reason.
func (e *InvalidError) Unwrap() error { return e.Err }

// Field limits, matching the columns.
const (
	maxID      = 128
	maxKind    = 64
	maxURL     = 2048
	maxText    = 4096
	maxIdemKey = 191
)

// PaymentRequest opens a payment: POST /provider/payments.
type PaymentRequest struct {
	OrderID   string `json:"order_id"`
	UserID    string `json:"user_id"`
	Cents     int64  `json:"cents"`
	NotifyURL string `json:"notify_url"`
}

// Validate checks every field.
func (r PaymentRequest) Validate() error {
	return firstErr(
		requireString("order_id", r.OrderID, maxID),
		requireString("user_id", r.UserID, maxID),
		requirePositive("cents", r.Cents),
		requireURL("notify_url", r.NotifyURL),
	)
}

// PaymentAnswer answers an opened payment.
type PaymentAnswer struct {
	PaymentID string `json:"payment_id"`
}

// ConfirmAnswer answers a confirmed payment.
type ConfirmAnswer struct {
	PaymentID string `json:"payment_id"`
	State     string `json:"state"`
}

// Payment is a payment as GET /provider/payments/{payment_id} shows it.
type Payment struct {
	PaymentID     string     `json:"payment_id"`
	OrderID       string     `json:"order_id"`
	UserID        string     `json:"user_id"`
	Cents         int64      `json:"cents"`
	RefundedCents int64      `json:"refunded_cents"`
	State         string     `json:"state"`
	CreatedAt     time.Time  `json:"created_at"`
	PaidAt        *time.Time `json:"paid_at"`
}

// PaymentNotification is the body POSTed to a payment's notify_url once it
// is paid.
type PaymentNotification struct {
	PaymentID string `json:"payment_id"`
	OrderID   string `json:"order_id"`
	Cents     int64  `json:"cents"`
	PaidAt    string `json:"paid_at"`
}

// RefundRequest returns money of a payment: POST /provider/refunds.
type RefundRequest struct {
	PaymentID string `json:"payment_id"`
	Cents     int64  `json:"cents"`
}

// Validate checks every field.
func (r RefundRequest) Validate() error {
	return firstErr(requireString("payment_id", r.PaymentID, maxID), requirePositive("cents", r.Cents))
}

// RefundAnswer answers a refund that was made.
type RefundAnswer struct {
	RefundID  string `json:"refund_id"`
	State     string `json:"state"`
	PaymentID string `json:"payment_id"`
	Cents     int64  `json:"cents"`
}

// SMSRequest sends a text message: POST /provider/sms.
type SMSRequest struct {
	UserID  string `json:"user_id"`
	OrderID string `json:"order_id"`
	Kind    string `json:"kind"`
	Text    string `json:"text"`
}

// Validate checks every field; the text may be empty.
func (r SMSRequest) Validate() error {
	return firstErr(
		requireString("user_id", r.UserID, maxID),
		requireString("order_id", r.OrderID, maxID),
		requireString("kind", r.Kind, maxKind),
		maxLen("text", r.Text, maxText),
	)
}

// SMSAnswer answers a sent message.
type SMSAnswer struct {
	SMSID string `json:"sms_id"`
}

// ShipmentRequest hands an order's parcel to the carrier: POST
// /provider/shipments.
type ShipmentRequest struct {
	OrderID     string          `json:"order_id"`
	Address     json.RawMessage `json:"address"`
	CallbackURL string          `json:"callback_url"`
}

// Validate checks every field; the address must be a JSON object.
func (r ShipmentRequest) Validate() error {
	return firstErr(
		requireString("order_id", r.OrderID, maxID),
		requireObject("address", r.Address),
		requireURL("callback_url", r.CallbackURL),
	)
}

// ShipmentAnswer answers an accepted shipment.
type ShipmentAnswer struct {
	TrackingNo string `json:"tracking_no"`
	Carrier    string `json:"carrier"`
}

// DeliveryCallback is the body POSTed to a shipment's callback_url once it
// is delivered.
type DeliveryCallback struct {
	OrderID     string `json:"order_id"`
	TrackingNo  string `json:"tracking_no"`
	Carrier     string `json:"carrier"`
	DeliveredAt string `json:"delivered_at"`
}

// Ledger is what really left the platform: GET /provider/ledger. Every
// list is present, empty rather than null.
type Ledger struct {
	Payments  []LedgerPayment  `json:"payments"`
	Refunds   []LedgerRefund   `json:"refunds"`
	SMS       []LedgerSMS      `json:"sms"`
	Shipments []LedgerShipment `json:"shipments"`
}

// LedgerPayment is a paid payment; At is when it was paid.
type LedgerPayment struct {
	PaymentID string    `json:"payment_id"`
	OrderID   string    `json:"order_id"`
	Cents     int64     `json:"cents"`
	At        time.Time `json:"at"`
}

// LedgerRefund is a refund that was made.
type LedgerRefund struct {
	RefundID  string    `json:"refund_id"`
	PaymentID string    `json:"payment_id"`
	OrderID   string    `json:"order_id"`
	Cents     int64     `json:"cents"`
	At        time.Time `json:"at"`
}

// LedgerSMS is a message that was sent.
type LedgerSMS struct {
	SMSID   string    `json:"sms_id"`
	UserID  string    `json:"user_id"`
	OrderID string    `json:"order_id"`
	Kind    string    `json:"kind"`
	Text    string    `json:"text"`
	At      time.Time `json:"at"`
}

// LedgerShipment is a shipment the carrier accepted; At is when.
type LedgerShipment struct {
	OrderID     string    `json:"order_id"`
	TrackingNo  string    `json:"tracking_no"`
	Carrier     string    `json:"carrier"`
	At          time.Time `json:"at"`
	DeliveredAt time.Time `json:"delivered_at"`
}

// carriers the simulator hands parcels to, with their tracking prefixes.
var carriers = []struct{ name, prefix string }{
	{"SF Express", "SF"},
	{"ZTO Express", "ZTO"},
	{"YTO Express", "YT"},
}

// newID returns prefix followed by 20 random hex digits.
func newID(prefix string) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// newTracking picks a carrier and a tracking number of 16 random digits.
func newTracking() (carrier, trackingNo string) {
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(carriers))))
	c := carriers[n.Int64()]
	digits, _ := rand.Int(rand.Reader, big.NewInt(1e16))
	return c.name, fmt.Sprintf("%s%016d", c.prefix, digits)
}

// now is the provider's clock: UTC, to the microsecond the database keeps,
// so a time read back equals the time written.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// stamp formats t as the callbacks carry it: RFC 3339 in UTC.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func requireString(field, v string, limit int) error {
	if v == "" {
		return fmt.Errorf("%s: required", field)
	}
	return maxLen(field, v, limit)
}

func maxLen(field, v string, limit int) error {
	if len(v) > limit {
		return fmt.Errorf("%s: longer than %d bytes", field, limit)
	}
	return nil
}

func requirePositive(field string, v int64) error {
	if v <= 0 {
		return fmt.Errorf("%s: must be a positive number of cents, got %d", field, v)
	}
	return nil
}

func requireURL(field, v string) error {
	if err := requireString(field, v, maxURL); err != nil {
		return err
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: %q is not an absolute http(s) URL", field, v)
	}
	return nil
}

func requireObject(field string, v json.RawMessage) error {
	var m map[string]json.RawMessage
	if len(v) == 0 || json.Unmarshal(v, &m) != nil || m == nil {
		return fmt.Errorf("%s: required, a JSON object", field)
	}
	return nil
}
