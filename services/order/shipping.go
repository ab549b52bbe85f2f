package order

import (
	"context"
	"errors"
	"fmt"

	"qianlang.io/services/bus"
	"qianlang.io/services/events"
)

// RespondShipmentStart answers the warehouse's "may I ship?"
// (shipment_start_group): a PAID order is marked as shipping, after which
// it can no longer be cancelled, and answered GO; an order shipping or
// shipped already is GO; one refunding, refunded or closed is CANCELLED.
func (a *App) RespondShipmentStart(ctx context.Context, m *bus.Message) (any, error) {
	var req events.ShipmentStartRequest
	if err := m.Decode(&req); err != nil {
		a.log.Error("undecodable shipment request dropped", "event", m.EventID, "err", err)
		return events.ShipmentStartReply{Result: events.ShipmentCancelled}, nil
	}
	for attempt := 0; attempt < 3; attempt++ {
		o, err := a.store.Get(ctx, req.OrderID)
		if errors.Is(err, ErrNotFound) {
			a.log.Warn("shipment asked for an unknown order", "order", req.OrderID)
			return events.ShipmentStartReply{Result: events.ShipmentCancelled}, nil
		}
		if err != nil {
			return nil, err
		}
		switch decideShipment(o) {
		case shipGo:
			return events.ShipmentStartReply{Result: events.ShipmentGo}, nil
		case shipCancel:
			return events.ShipmentStartReply{Result: events.ShipmentCancelled}, nil
		case shipWait:
			return nil, fmt.Errorf("shipment asked for order %s, which is %s", o.ID, o.State)
		}
		err = a.store.MarkShippingStarted(ctx, o.ID)
		if errors.Is(err, errStateChanged) {
			continue // cancelled or started meanwhile: decide again
		}
		if err != nil {
			return nil, err
		}
		a.log.Info("order shipping", "order", o.ID)
		return events.ShipmentStartReply{Result: events.ShipmentGo}, nil
	}
	return nil, fmt.Errorf("shipment for order %s: it kept changing", req.OrderID)
}

// HandleShipped (order_shipping_group): a PAID order becomes SHIPPED with
// its carrier and tracking number.
func (a *App) HandleShipped(ctx context.Context, m *bus.Message) error {
	var ev events.OrderShipped
	if err := m.Decode(&ev); err != nil {
		a.log.Error("undecodable shipped event dropped", "event", m.EventID, "err", err)
		return nil
	}
	ok, err := a.store.MarkShipped(ctx, ev.OrderID, ev.Carrier, ev.TrackingNo, a.now())
	if err == nil && ok {
		a.log.Info("order shipped", "order", ev.OrderID, "tracking_no", ev.TrackingNo)
	}
	return err
}

// HandleDelivered (order_shipping_group): a SHIPPED order, or a PAID one
// whose shipped event is still on its way, becomes COMPLETED.
func (a *App) HandleDelivered(ctx context.Context, m *bus.Message) error {
	var ev events.OrderDelivered
	if err := m.Decode(&ev); err != nil {
		a.log.Error("undecodable delivered event dropped", "event", m.EventID, "err", err)
		return nil
	}
	ok, err := a.store.MarkDelivered(ctx, ev.OrderID, ev.Carrier, ev.TrackingNo, a.now())
	if err == nil && ok {
		a.log.Info("order completed", "order", ev.OrderID)
	}
	return err
}
