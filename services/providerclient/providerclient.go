// Package providerclient calls the third-party provider's HTTP API: open a
// payment, refund one, send an SMS, create a shipment.
//
// Every call carries an Idempotency-Key: the provider answers the same key
// with the same result and never applies it twice, so a call whose outcome
// is unknown (a timeout, a dropped connection, a 5xx) is retried with the
// same key, in the client (Options.Retries) or through the queue's
// redelivery. Errors say which case it was: errors.Is(err, ErrUnavailable)
// means "failed or unknown, retry with the same key"; errors.Is(err,
// ErrRefused) means the provider answered a definite no (a 4xx such as 404
// or 409) that retrying will not change.
package providerclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"qianlang.io/services/events"
)

// Provider endpoints.
const (
	PathPayments  = "/provider/payments"
	PathRefunds   = "/provider/refunds"
	PathSMS       = "/provider/sms"
	PathShipments = "/provider/shipments"
)

// IdempotencyHeader carries a call's idempotency key.
const IdempotencyHeader = "Idempotency-Key"

// Call names, the "call" label of the metrics.
const (
	CallOpenPayment    = "open_payment"
	CallRefund         = "refund"
	CallSendSMS        = "send_sms"
	CallCreateShipment = "create_shipment"
)

// PaymentRequest opens a payment (POST /provider/payments).
type PaymentRequest struct {
	OrderID   string `json:"order_id"`
	UserID    string `json:"user_id"`
	Cents     int64  `json:"cents"`
	NotifyURL string `json:"notify_url"`
}

// Payment is an opened payment.
type Payment struct {
	PaymentID string `json:"payment_id"`
}

// RefundRequest returns (part of) a payment (POST /provider/refunds).
type RefundRequest struct {
	PaymentID string `json:"payment_id"`
	Cents     int64  `json:"cents"`
}

// Refund is a refund the provider made.
type Refund struct {
	RefundID string `json:"refund_id"`
	State    string `json:"state"` // "REFUNDED"
}

// Refund error codes the provider sends with a refusal.
const CodeRefundExceedsPayment = "REFUND_EXCEEDS_PAYMENT" // 409

// SMSRequest sends a text to a user (POST /provider/sms).
type SMSRequest struct {
	UserID  string `json:"user_id"`
	OrderID string `json:"order_id"`
	Kind    string `json:"kind"`
	Text    string `json:"text"`
}

// SMS is a sent text.
type SMS struct {
	SMSID string `json:"sms_id"`
}

// ShipmentRequest hands an order to the carrier (POST /provider/shipments).
type ShipmentRequest struct {
	OrderID     string         `json:"order_id"`
	Address     events.Address `json:"address"`
	CallbackURL string         `json:"callback_url"`
}

// Shipment is a shipment the carrier accepted.
type Shipment struct {
	TrackingNo string `json:"tracking_no"`
	Carrier    string `json:"carrier"`
}

// PaymentNotification is the body of the provider's signed payment
// callback to notify_url.
type PaymentNotification struct {
	PaymentID string    `json:"payment_id"`
	OrderID   string    `json:"order_id"`
	Cents     int64     `json:"cents"`
	PaidAt    time.Time `json:"paid_at"`
}

// DeliveryNotification is the body of the provider's signed delivery
// callback to a shipment's callback_url.
type DeliveryNotification struct {
	OrderID     string    `json:"order_id"`
	TrackingNo  string    `json:"tracking_no"`
	Carrier     string    `json:"carrier"`
	DeliveredAt time.Time `json:"delivered_at"`
}

// Options configure a Client.
type Options struct {
	// BaseURL is the provider's address, e.g. http://127.0.0.1:9000.
	BaseURL string
	// Timeout bounds one attempt (default 5 s).
	Timeout time.Duration
	// Retries is how many more attempts a call makes, with the same key,
	// after a failure whose outcome is unknown (default 0: callers that
	// retry through the queue's redelivery may want none).
	Retries int
	// Backoff is the wait before the first retry, doubled for each next
	// one up to 2 s (default 100 ms).
	Backoff time.Duration
	// HTTP is the client to use (default: one with its own pooled
	// transport).
	HTTP *http.Client
	// Metrics counts calls by outcome; nil counts nothing.
	Metrics *Metrics
}

// Client calls the provider. It is safe for concurrent use.
type Client struct {
	o    Options
	base *url.URL
}

// New checks o and returns a client.
func New(o Options) (*Client, error) {
	base, err := ParseBaseURL(o.BaseURL)
	if err != nil {
		return nil, err
	}
	if o.Timeout < 0 || o.Retries < 0 || o.Backoff < 0 {
		return nil, errors.New("providerclient: negative timeout, retries or backoff")
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Backoff == 0 {
		o.Backoff = 100 * time.Millisecond
	}
	if o.HTTP == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 256
		t.MaxIdleConnsPerHost = 64
		o.HTTP = &http.Client{Transport: t}
	}
	return &Client{o: o, base: base}, nil
}

// ParseBaseURL checks that s is an absolute http(s) URL without a query and
// returns it without a trailing slash.
func ParseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(s, "/"))
	if err != nil {
		return nil, fmt.Errorf("provider URL %q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("provider URL %q: want http(s)://host:port", s)
	}
	return u, nil
}

// OpenPayment opens a payment for an order; key identifies the payment
// attempt (the same key opens nothing new).
func (c *Client) OpenPayment(ctx context.Context, key string, req PaymentRequest) (Payment, error) {
	var out Payment
	err := c.do(ctx, CallOpenPayment, PathPayments, key, req, &out, func() bool { return out.PaymentID != "" })
	return out, err
}

// Refund returns req.Cents of a payment; key identifies the refund (use
// the platform's refund id): the same key never refunds twice. A 409 with
// Code CodeRefundExceedsPayment or a 404 for an unknown payment are
// refusals (ErrRefused).
func (c *Client) Refund(ctx context.Context, key string, req RefundRequest) (Refund, error) {
	var out Refund
	err := c.do(ctx, CallRefund, PathRefunds, key, req, &out, func() bool { return out.RefundID != "" })
	return out, err
}

// SendSMS sends a text; key identifies the message (push uses
// "<order_id>:<kind>"): the same key never sends a second text.
func (c *Client) SendSMS(ctx context.Context, key string, req SMSRequest) (SMS, error) {
	var out SMS
	err := c.do(ctx, CallSendSMS, PathSMS, key, req, &out, func() bool { return out.SMSID != "" })
	return out, err
}

// CreateShipment hands an order to the carrier; key identifies the
// shipment (warehouse uses the order id): the same key never ships twice.
func (c *Client) CreateShipment(ctx context.Context, key string, req ShipmentRequest) (Shipment, error) {
	var out Shipment
	err := c.do(ctx, CallCreateShipment, PathShipments, key, req, &out, func() bool { return out.TrackingNo != "" })
	return out, err
}

// do makes the call, retrying unknown outcomes up to Options.Retries
// times with the same key.
func (c *Client) do(ctx context.Context, call, path, key string, req, out any, complete func() bool) error {
	if key == "" {
		return fmt.Errorf("providerclient: %s: empty idempotency key", call)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("providerclient: %s: encode: %w", call, err)
	}
	wait := c.o.Backoff
	for attempt := 0; ; attempt++ {
		start := time.Now()
		err = c.once(ctx, call, path, key, body, out, complete)
		c.o.Metrics.observe(call, start, err)
		if err == nil || errors.Is(err, ErrRefused) || attempt >= c.o.Retries {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// once makes one attempt.
func (c *Client) once(ctx context.Context, call, path, key string, body []byte, out any, complete func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.String()+path, bytes.NewReader(body))
	if err != nil {
		return &Error{Call: call, Key: key, Err: err, refused: true}
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(IdempotencyHeader, key)
	resp, err := c.o.HTTP.Do(r)
	if err != nil {
		return &Error{Call: call, Key: key, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &Error{Call: call, Key: key, Status: resp.StatusCode, Err: fmt.Errorf("read answer: %w", err)}
	}
	if resp.StatusCode != http.StatusOK {
		return answerError(call, key, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil || !complete() {
		return &Error{Call: call, Key: key, Status: resp.StatusCode, Err: fmt.Errorf("malformed answer %.200q", b)}
	}
	return nil
}

// answerError turns a non-200 answer into an *Error: 4xx other than 408
// and 429 is a refusal, anything else an unknown outcome.
func answerError(call, key string, status int, body []byte) *Error {
	e := &Error{Call: call, Key: key, Status: status}
	var eb struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &eb) == nil {
		e.Code, e.Message = eb.Error.Code, eb.Error.Message
	}
	e.refused = status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
	return e
}
