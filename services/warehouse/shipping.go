// Package warehouse ships paid orders through the provider's logistics.
//
// For each paid order it asks the order service whether it may ship (a
// request-reply on the queue: GO, or CANCELLED for an order being
// refunded), creates the shipment at the provider with the order id as the
// idempotency key, and records the shipment and publishes
// TopicOrderShipped in one local transaction (a transactional message).
// The provider's signed delivery callback records the delivery and
// publishes TopicOrderDelivered the same way. Every step is safe to repeat:
// a redelivered message or callback changes nothing twice.
package warehouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"qianlang.io/services/events"
	"qianlang.io/services/providerclient"
)

// Shipment states.
const (
	StateShipped   = "SHIPPED"   // the carrier accepted it
	StateDelivered = "DELIVERED" // the carrier delivered it
	StateCancelled = "CANCELLED" // order said not to ship: it is being refunded
)

// Shipment is the warehouse's record of one order.
type Shipment struct {
	OrderID     string
	UserID      string
	State       string
	Carrier     string
	TrackingNo  string
	ShippedAt   *time.Time
	DeliveredAt *time.Time
}

// ErrUnknownOrder is returned for a delivery of an order that was never
// shipped.
var ErrUnknownOrder = errors.New("no shipment for the order")

// Gate asks the order service whether an order may ship.
type Gate interface {
	MayShip(ctx context.Context, orderID string) (bool, error)
}

// Carrier creates shipments, once per key.
type Carrier interface {
	CreateShipment(ctx context.Context, key string, req providerclient.ShipmentRequest) (providerclient.Shipment, error)
}

// Store keeps shipments and publishes their events with them.
type Store interface {
	// Get returns orderID's shipment; ok is false when there is none.
	Get(ctx context.Context, orderID string) (s Shipment, ok bool, err error)
	// RecordCancelled records that orderID is not to ship.
	RecordCancelled(ctx context.Context, orderID, userID string) error
	// RecordShipped records s and publishes TopicOrderShipped with it;
	// doing it twice records and publishes nothing more.
	RecordShipped(ctx context.Context, s Shipment) error
	// RecordDelivered marks s delivered at and publishes
	// TopicOrderDelivered with it; doing it twice changes nothing more.
	RecordDelivered(ctx context.Context, s Shipment, at time.Time) error
}

// Warehouse ships orders.
type Warehouse struct {
	gate        Gate
	carrier     Carrier
	store       Store
	callbackURL string
	log         *slog.Logger
	metrics     *Metrics
	now         func() time.Time
}

// New returns a warehouse; callbackURL is where the provider reports
// deliveries. metrics may be nil.
func New(gate Gate, carrier Carrier, store Store, callbackURL string, log *slog.Logger, metrics *Metrics) *Warehouse {
	return &Warehouse{gate: gate, carrier: carrier, store: store, callbackURL: callbackURL, log: log, metrics: metrics,
		now: func() time.Time { return time.Now().UTC() }}
}

// Ship ships a paid order once: an error leaves it to be tried again (the
// message's redelivery); an order already shipped or cancelled is done.
func (w *Warehouse) Ship(ctx context.Context, paid events.OrderPaid) error {
	_, done, err := w.store.Get(ctx, paid.OrderID)
	if err != nil {
		return fmt.Errorf("ship %s: %w", paid.OrderID, err)
	}
	if done {
		return nil
	}
	ok, err := w.gate.MayShip(ctx, paid.OrderID)
	if err != nil {
		return fmt.Errorf("ship %s: %w", paid.OrderID, err)
	}
	if !ok {
		if err := w.store.RecordCancelled(ctx, paid.OrderID, paid.UserID); err != nil {
			return fmt.Errorf("ship %s: record cancelled: %w", paid.OrderID, err)
		}
		w.metrics.count(StateCancelled)
		w.log.Info("not shipping: the order is being refunded", "order", paid.OrderID)
		return nil
	}
	got, err := w.carrier.CreateShipment(ctx, paid.OrderID, providerclient.ShipmentRequest{
		OrderID: paid.OrderID, Address: paid.Address, CallbackURL: w.callbackURL,
	})
	if err != nil {
		if providerclient.IsRefused(err) {
			w.log.Error("provider refused a shipment; it will be retried until the dead-letter queue", "order", paid.OrderID, "err", err)
		}
		return fmt.Errorf("ship %s: %w", paid.OrderID, err)
	}
	now := w.now()
	s := Shipment{OrderID: paid.OrderID, UserID: paid.UserID, State: StateShipped, Carrier: got.Carrier, TrackingNo: got.TrackingNo, ShippedAt: &now}
	if err := w.store.RecordShipped(ctx, s); err != nil {
		return fmt.Errorf("ship %s: tracking %s: %w", paid.OrderID, got.TrackingNo, err)
	}
	w.metrics.count(StateShipped)
	return nil
}

// Delivered records the provider's report that an order was delivered:
// ErrUnknownOrder when it was never shipped; a repeated report changes
// nothing.
func (w *Warehouse) Delivered(ctx context.Context, n providerclient.DeliveryNotification) error {
	s, ok, err := w.store.Get(ctx, n.OrderID)
	if err != nil {
		return fmt.Errorf("delivered %s: %w", n.OrderID, err)
	}
	if !ok || s.State == StateCancelled {
		return fmt.Errorf("delivered %s: %w", n.OrderID, ErrUnknownOrder)
	}
	if s.State == StateDelivered {
		return nil
	}
	if n.TrackingNo != "" && n.TrackingNo != s.TrackingNo {
		w.log.Warn("delivery reports another tracking number", "order", n.OrderID, "ours", s.TrackingNo, "reported", n.TrackingNo)
	}
	at := n.DeliveredAt.UTC()
	if n.DeliveredAt.IsZero() {
		at = w.now()
	}
	if err := w.store.RecordDelivered(ctx, s, at); err != nil {
		return fmt.Errorf("delivered %s: %w", n.OrderID, err)
	}
	w.metrics.count(StateDelivered)
	return nil
}
