package push

import (
	"context"
	"log/slog"

	"qianlang.io/services/bus"
	"qianlang.io/services/events"
)

// Subscribe has c hand the order events to n.
func Subscribe(c *bus.Consumer, n *Notifier, log *slog.Logger) error {
	handlers := map[string]func(*bus.Message) (Notice, bool, error){
		events.TopicOrderPaySuccess: func(m *bus.Message) (Notice, bool, error) {
			var ev events.OrderPaid
			err := m.Decode(&ev)
			return PaidNotice(ev), true, err
		},
		events.TopicOrderShipped: func(m *bus.Message) (Notice, bool, error) {
			var ev events.OrderShipped
			err := m.Decode(&ev)
			return ShippedNotice(ev), true, err
		},
		events.TopicOrderClosed: func(m *bus.Message) (Notice, bool, error) {
			var ev events.OrderClosed
			if err := m.Decode(&ev); err != nil {
				return Notice{}, false, err
			}
			n, ok := ClosedNotice(ev)
			return n, ok, nil
		},
		events.TopicOrderRefunded: func(m *bus.Message) (Notice, bool, error) {
			var ev events.OrderRefunded
			err := m.Decode(&ev)
			return RefundedNotice(ev), true, err
		},
	}
	for topic, notice := range handlers {
		if err := c.Handle(topic, handler(n, notice, log)); err != nil {
			return err
		}
	}
	return nil
}

// handler turns a message into its notice and sends it. A message that
// cannot become a notice will never do so: it is logged and dropped.
func handler(n *Notifier, notice func(*bus.Message) (Notice, bool, error), log *slog.Logger) bus.Handler {
	return func(ctx context.Context, m *bus.Message) error {
		no, ok, err := notice(m)
		if err == nil && ok && (no.OrderID == "" || no.UserID == "") {
			ok = false
			log.Error("dropping an event without order_id or user_id", "topic", m.Topic, "event", m.EventID)
		}
		if err != nil {
			log.Error("dropping an undecodable event", "topic", m.Topic, "event", m.EventID, "err", err)
			return nil
		}
		if !ok {
			return nil
		}
		return n.Notify(ctx, no)
	}
}
