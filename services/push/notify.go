// Package push tells users by SMS what happened to their orders: paid,
// shipped, closed, refunded. Each (order, kind) gets exactly one
// notification row and exactly one text at the provider: the text is sent
// with the idempotency key "<order_id>:<kind>" before the row is written,
// so a crash between the two, or a redelivered message, sends nothing new.
package push

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"qianlang.io/services/providerclient"
)

// Kinds of notification.
const (
	KindPaid     = "ORDER_PAID"
	KindShipped  = "ORDER_SHIPPED"
	KindClosed   = "ORDER_CLOSED"
	KindRefunded = "ORDER_REFUNDED"
)

// Notice is a notification to send, once per (OrderID, Kind).
type Notice struct {
	OrderID string
	UserID  string
	Kind    string
	Text    string
}

// Key is the notice's idempotency key at the provider.
func (n Notice) Key() string { return n.OrderID + ":" + n.Kind }

// Notification is a sent notice as its user sees it.
type Notification struct {
	OrderID string    `json:"order_id"`
	Kind    string    `json:"kind"`
	At      time.Time `json:"at"`
}

// SMSSender sends a text at the provider, once per key.
type SMSSender interface {
	SendSMS(ctx context.Context, key string, req providerclient.SMSRequest) (providerclient.SMS, error)
}

// Store keeps the sent notifications.
type Store interface {
	// Sent reports whether (orderID, kind) was recorded.
	Sent(ctx context.Context, orderID, kind string) (bool, error)
	// Record records a sent notice; recording it twice is no error.
	Record(ctx context.Context, n Notice, smsID string, at time.Time) error
	// List returns userID's notifications, oldest first.
	List(ctx context.Context, userID string) ([]Notification, error)
}

// Notifier sends notices.
type Notifier struct {
	sms     SMSSender
	store   Store
	log     *slog.Logger
	now     func() time.Time
	metrics *Metrics
}

// NewNotifier returns a notifier sending through sms and recording in
// store; metrics may be nil.
func NewNotifier(sms SMSSender, store Store, log *slog.Logger, metrics *Metrics) *Notifier {
	return &Notifier{sms: sms, store: store, log: log, metrics: metrics, now: func() time.Time { return time.Now().UTC() }}
}

// Notify sends n unless it was sent: the text first (idempotent at the
// provider under n.Key()), then the row. An error leaves nothing recorded
// and is to be retried (by the message's redelivery).
func (s *Notifier) Notify(ctx context.Context, n Notice) error {
	done, err := s.store.Sent(ctx, n.OrderID, n.Kind)
	if err != nil {
		return fmt.Errorf("notify %s: %w", n.Key(), err)
	}
	if done {
		return nil
	}
	sms, err := s.sms.SendSMS(ctx, n.Key(), providerclient.SMSRequest{UserID: n.UserID, OrderID: n.OrderID, Kind: n.Kind, Text: n.Text})
	if err != nil {
		if providerclient.IsRefused(err) {
			s.log.Error("provider refused a text; it will be retried until the dead-letter queue", "key", n.Key(), "err", err)
		}
		return fmt.Errorf("notify %s: %w", n.Key(), err)
	}
	if err := s.store.Record(ctx, n, sms.SMSID, s.now()); err != nil {
		return fmt.Errorf("notify %s: sms %s sent: %w", n.Key(), sms.SMSID, err)
	}
	s.metrics.sent(n.Kind)
	s.log.Debug("notified", "key", n.Key(), "sms_id", sms.SMSID)
	return nil
}

// List returns userID's notifications, oldest first; never nil.
func (s *Notifier) List(ctx context.Context, userID string) ([]Notification, error) {
	out, err := s.store.List(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list notifications of %s: %w", userID, err)
	}
	if out == nil {
		out = []Notification{}
	}
	return out, nil
}
