package marketing

import (
	"context"
	"log/slog"

	"qianlang.io/services/bus"
	"qianlang.io/services/events"
)

// Queue is marketing's queue interface: it answers reservation requests
// and applies the orders' events to their coupons.
type Queue struct {
	store *Store
	log   *slog.Logger
}

// NewQueue returns the queue handlers over store.
func NewQueue(store *Store, log *slog.Logger) *Queue { return &Queue{store: store, log: log} }

func validOrderID(id string) bool { return id != "" && len(id) <= 128 }

// Reserve answers a CouponReserveRequest (TopicCouponReserve). A request
// that cannot be read is answered UNAVAILABLE rather than redelivered.
func (q *Queue) Reserve(ctx context.Context, m *bus.Message) (any, error) {
	var req events.CouponReserveRequest
	if err := m.Decode(&req); err != nil || !validOrderID(req.OrderID) || !ValidCouponID(req.CouponID) {
		q.log.Warn("malformed coupon reservation", "event", m.EventID, "order", req.OrderID, "err", err)
		return events.CouponReserveReply{Result: events.CouponUnavailable, Reason: "malformed request"}, nil
	}
	reply, err := q.store.Reserve(ctx, req)
	if err != nil {
		return nil, err
	}
	q.log.Debug("coupon reservation", "order", req.OrderID, "coupon", req.CouponID, "result", reply.Result, "reason", reply.Reason)
	return reply, nil
}

// Paid applies TopicOrderPaySuccess.
func (q *Queue) Paid(ctx context.Context, m *bus.Message) error {
	var ev events.OrderPaid
	if err := m.Decode(&ev); err != nil {
		return q.drop(m, err)
	}
	return q.apply(ctx, m, ev.OrderID, ev.UserID, EventPaid)
}

// Closed applies TopicOrderClosed.
func (q *Queue) Closed(ctx context.Context, m *bus.Message) error {
	var ev events.OrderClosed
	if err := m.Decode(&ev); err != nil {
		return q.drop(m, err)
	}
	return q.apply(ctx, m, ev.OrderID, ev.UserID, EventClosed)
}

// Refund applies TopicOrderRefund.
func (q *Queue) Refund(ctx context.Context, m *bus.Message) error {
	var ev events.OrderRefund
	if err := m.Decode(&ev); err != nil {
		return q.drop(m, err)
	}
	return q.apply(ctx, m, ev.OrderID, ev.UserID, EventRefund)
}

func (q *Queue) apply(ctx context.Context, m *bus.Message, orderID, userID string, ev Event) error {
	if !validOrderID(orderID) {
		q.log.Error("dropping message without a valid order id", "topic", m.Topic, "event", m.EventID)
		return nil
	}
	applied, err := q.store.Apply(ctx, orderID, userID, ev)
	if err != nil {
		return err
	}
	q.log.Debug("coupon event", "order", orderID, "event", ev, "applied", applied, "msg", m.EventID)
	return nil
}

// drop acknowledges a message that can never be applied, after logging it.
func (q *Queue) drop(m *bus.Message, err error) error {
	q.log.Error("dropping malformed message", "topic", m.Topic, "event", m.EventID, "err", err)
	return nil
}
