package points

import (
	"context"
	"log/slog"

	"qianlang.io/services/auth"
	"qianlang.io/services/bus"
	"qianlang.io/services/events"
)

// Queue is points' queue interface: it credits paid orders and takes the
// points of refunded ones back.
type Queue struct {
	store *Store
	log   *slog.Logger
}

// NewQueue returns the queue handlers over store.
func NewQueue(store *Store, log *slog.Logger) *Queue { return &Queue{store: store, log: log} }

// Paid applies TopicOrderPaySuccess.
func (q *Queue) Paid(ctx context.Context, m *bus.Message) error {
	var ev events.OrderPaid
	if err := m.Decode(&ev); err != nil {
		return q.drop(m, err.Error())
	}
	return q.apply(ctx, m, ev.OrderID, ev.UserID, ev.PayCents, EventPaid)
}

// Refund applies TopicOrderRefund.
func (q *Queue) Refund(ctx context.Context, m *bus.Message) error {
	var ev events.OrderRefund
	if err := m.Decode(&ev); err != nil {
		return q.drop(m, err.Error())
	}
	return q.apply(ctx, m, ev.OrderID, ev.UserID, ev.PayCents, EventRefund)
}

func (q *Queue) apply(ctx context.Context, m *bus.Message, orderID, userID string, payCents int64, ev Event) error {
	if orderID == "" || len(orderID) > 128 {
		return q.drop(m, "bad order id")
	}
	if !auth.ValidUserID(userID) {
		return q.drop(m, "bad user id")
	}
	applied, err := q.store.Apply(ctx, orderID, userID, payCents, ev)
	if err != nil {
		return err
	}
	q.log.Debug("points event", "order", orderID, "event", ev, "applied", applied, "msg", m.EventID)
	return nil
}

// drop acknowledges a message that can never be applied, after logging it.
func (q *Queue) drop(m *bus.Message, why string) error {
	q.log.Error("dropping malformed message", "topic", m.Topic, "event", m.EventID, "why", why)
	return nil
}
