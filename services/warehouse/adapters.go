package warehouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"qianlang.io/services/auth"
	"qianlang.io/services/bus"
	"qianlang.io/services/events"
	"qianlang.io/services/httpapi"
	"qianlang.io/services/providerclient"
)

// Requester sends a request-reply request (bus.Producer).
type Requester interface {
	Request(ctx context.Context, topic, key string, req, resp any, timeout time.Duration) error
}

// QueueGate asks the order service over the queue (TopicShipmentStart).
type QueueGate struct {
	Requests Requester
	Timeout  time.Duration
}

// MayShip asks whether orderID may ship: true for GO, false for
// CANCELLED; no answer in time is an error (bus.ErrRequestTimeout).
func (g QueueGate) MayShip(ctx context.Context, orderID string) (bool, error) {
	var reply events.ShipmentStartReply
	err := g.Requests.Request(ctx, events.TopicShipmentStart, events.Key(orderID), events.ShipmentStartRequest{OrderID: orderID}, &reply, g.Timeout)
	if err != nil {
		return false, fmt.Errorf("may ship: %w", err)
	}
	switch reply.Result {
	case events.ShipmentGo:
		return true, nil
	case events.ShipmentCancelled:
		return false, nil
	}
	return false, fmt.Errorf("may ship: unexpected answer %q", reply.Result)
}

// TimerSender sends a message to be delivered at a time (bus.Producer).
type TimerSender interface {
	SendAt(ctx context.Context, topic, key, eventID string, ev any, at time.Time) error
}

// Handling is the warehouse's handling time: a paid order goes to the
// carrier After its payment. The wait is a timer message
// (TopicShipmentDue), so it survives restarts and costs nothing while it
// runs; until it fires, the order can still be cancelled and refunded.
type Handling struct {
	Timers TimerSender
	After  time.Duration
}

// Subscribe has c hand paid orders to w once their handling time is over.
func Subscribe(c *bus.Consumer, w *Warehouse, h Handling, log *slog.Logger) error {
	decode := func(m *bus.Message) (events.OrderPaid, bool) {
		var paid events.OrderPaid
		if err := m.Decode(&paid); err != nil || paid.OrderID == "" {
			// It will never decode: drop it rather than retry it 16 times.
			log.Error("dropping an undecodable paid event", "topic", m.Topic, "event", m.EventID, "err", err)
			return paid, false
		}
		return paid, true
	}
	if err := c.Handle(events.TopicOrderPaySuccess, func(ctx context.Context, m *bus.Message) error {
		paid, ok := decode(m)
		if !ok {
			return nil
		}
		due := paid.PaidAt.Add(h.After)
		if h.After <= 0 || !time.Now().Before(due) {
			return w.Ship(ctx, paid)
		}
		// A second timer for the same order (a redelivery) only makes
		// Ship run twice, which it tolerates.
		return h.Timers.SendAt(ctx, events.TopicShipmentDue, events.Key(paid.OrderID), "shipdue:"+paid.OrderID, paid, due)
	}); err != nil {
		return err
	}
	return c.Handle(events.TopicShipmentDue, func(ctx context.Context, m *bus.Message) error {
		paid, ok := decode(m)
		if !ok {
			return nil
		}
		return w.Ship(ctx, paid)
	})
}

// CallbackPath is where the provider reports deliveries.
const CallbackPath = "/callbacks/delivery"

// deliveryHandler answers the provider's delivery callback: 401 for a bad
// signature, 400 for a malformed body, 404 for an order never shipped,
// 200 once the delivery is recorded and its event published (also for a
// repeated callback).
func deliveryHandler(secret string, w *Warehouse) httpapi.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) error {
		body, err := io.ReadAll(io.LimitReader(r.Body, httpapi.MaxBody))
		if err != nil {
			return httpapi.BadRequest("read body: %v", err)
		}
		if !auth.VerifyBody(secret, body, r.Header.Get(auth.SignatureHeader)) {
			return httpapi.Unauthorized("bad signature")
		}
		var n providerclient.DeliveryNotification
		if err := json.Unmarshal(body, &n); err != nil {
			return httpapi.BadRequest("malformed JSON: %v", err)
		}
		if n.OrderID == "" {
			return httpapi.BadRequest("order_id required")
		}
		err = w.Delivered(r.Context(), n)
		if errors.Is(err, ErrUnknownOrder) {
			return httpapi.NotFound("no shipment for order %s", n.OrderID)
		}
		if err != nil {
			return err
		}
		httpapi.WriteJSON(rw, http.StatusOK, map[string]string{"order_id": n.OrderID, "state": StateDelivered})
		return nil
	}
}
