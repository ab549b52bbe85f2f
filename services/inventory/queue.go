package inventory

import (
	"context"
	"errors"
	"log/slog"

	"qianlang.io/services/bus"
	"qianlang.io/services/events"
)

// Queue is inventory's queue interface: it answers lock requests and
// applies the orders' events.
type Queue struct {
	store *Store
	log   *slog.Logger
}

// NewQueue returns the queue handlers over store.
func NewQueue(store *Store, log *slog.Logger) *Queue { return &Queue{store: store, log: log} }

func validOrderID(id string) bool { return id != "" && len(id) <= 128 }

// Lock answers a StockLockRequest (TopicStockLock). A request that cannot
// be read is answered UNKNOWN_SKU (the order service's 400) rather than
// redelivered: it would never read better.
func (q *Queue) Lock(ctx context.Context, m *bus.Message) (any, error) {
	var req events.StockLockRequest
	if err := m.Decode(&req); err != nil || !validOrderID(req.OrderID) {
		q.log.Warn("malformed stock lock request", "event", m.EventID, "order", req.OrderID, "err", err)
		return events.StockLockReply{Result: events.StockUnknownSKU}, nil
	}
	plan, refusal := PlanLock(req.Items)
	if refusal != nil {
		return *refusal, nil
	}
	reply, err := q.store.Lock(ctx, req.OrderID, plan)
	if err != nil {
		return nil, err
	}
	q.log.Debug("stock lock", "order", req.OrderID, "result", reply.Result, "sku", reply.SKUID)
	return reply, nil
}

// Paid applies TopicOrderPaySuccess.
func (q *Queue) Paid(ctx context.Context, m *bus.Message) error {
	var ev events.OrderPaid
	if err := m.Decode(&ev); err != nil {
		return q.drop(m, err)
	}
	return q.apply(ctx, m, ev.OrderID, EventPaid)
}

// Closed applies TopicOrderClosed.
func (q *Queue) Closed(ctx context.Context, m *bus.Message) error {
	var ev events.OrderClosed
	if err := m.Decode(&ev); err != nil {
		return q.drop(m, err)
	}
	return q.apply(ctx, m, ev.OrderID, EventClosed)
}

// Refunded applies TopicOrderRefunded.
func (q *Queue) Refunded(ctx context.Context, m *bus.Message) error {
	var ev events.OrderRefunded
	if err := m.Decode(&ev); err != nil {
		return q.drop(m, err)
	}
	return q.apply(ctx, m, ev.OrderID, EventRefunded)
}

func (q *Queue) apply(ctx context.Context, m *bus.Message, orderID string, ev Event) error {
	if !validOrderID(orderID) {
		return q.drop(m, errors.New("bad order id"))
	}
	applied, err := q.store.Apply(ctx, orderID, ev)
	if err != nil {
		return err
	}
	q.log.Debug("stock event", "order", orderID, "event", ev, "applied", applied, "msg", m.EventID)
	return nil
}

// drop acknowledges a message that can never be applied, after logging it.
func (q *Queue) drop(m *bus.Message, err error) error {
	q.log.Error("dropping malformed message", "topic", m.Topic, "event", m.EventID, "err", err)
	return nil
}
