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

// Subscribe has c hand paid orders to w.
func Subscribe(c *bus.Consumer, w *Warehouse, log *slog.Logger) error {
	return c.Handle(events.TopicOrderPaySuccess, func(ctx context.Context, m *bus.Message) error {
		var paid events.OrderPaid
		if err := m.Decode(&paid); err != nil || paid.OrderID == "" {
			// It will never decode: drop it rather than retry it 16 times.
			log.Error("dropping an undecodable paid event", "event", m.EventID, "err", err)
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
