package order

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"qianlang.io/services/bus"
	"qianlang.io/services/events"
	"qianlang.io/services/txmsg"
)

// maxHold is the longest a timer delivered early is held in the consumer
// before it is set again for its deadline instead.
const maxHold = 2 * time.Second

// HandleTimeout consumes an order's timer (order_timeout_group): an order
// still PENDING_PAYMENT at its deadline is CLOSED (TIMEOUT) with
// TopicOrderClosed in the same transaction; an order id with no order (its
// placement failed or died) has its reservations released (ABANDONED);
// any other order is left alone. A timer never closes an order before its
// expires_at.
func (a *App) HandleTimeout(ctx context.Context, m *bus.Message) error {
	var t events.OrderTimeout
	if err := m.Decode(&t); err != nil {
		a.log.Error("undecodable order timer dropped", "event", m.EventID, "err", err)
		return nil
	}
	o, err := a.store.Get(ctx, t.OrderID)
	if errors.Is(err, ErrNotFound) {
		return a.timeoutUnplaced(ctx, t)
	}
	if err != nil {
		return err
	}
	return a.timeoutOrder(ctx, o)
}

func (a *App) timeoutOrder(ctx context.Context, o *Order) error {
	if o.State != StatePending {
		return nil
	}
	due, err := a.awaitDeadline(ctx, events.OrderTimeout{OrderID: o.ID, UserID: o.UserID, Deadline: o.ExpiresAt})
	if err != nil || !due {
		return err
	}
	defer a.locks.lock(o.ID)()
	err = a.closeOrder(ctx, o, events.CloseTimeout)
	if errors.Is(err, errStateChanged) {
		return nil // paid or cancelled meanwhile
	}
	return err
}

// timeoutUnplaced releases what an order id that never became an order
// reserved, unless its placement commits first.
func (a *App) timeoutUnplaced(ctx context.Context, t events.OrderTimeout) error {
	due, err := a.awaitDeadline(ctx, t)
	if err != nil || !due {
		return err
	}
	abandoned, err := a.store.ClaimAbandoned(ctx, t.OrderID)
	if err != nil {
		return err
	}
	if !abandoned {
		o, err := a.store.Get(ctx, t.OrderID)
		if err != nil {
			return err
		}
		return a.timeoutOrder(ctx, o)
	}
	ev := events.OrderClosed{OrderID: t.OrderID, UserID: t.UserID, Reason: events.CloseAbandoned, ClosedAt: a.now()}
	if err := a.bus.Send(ctx, events.TopicOrderClosed, events.Key(t.OrderID), "closed:"+t.OrderID, ev); err != nil {
		return fmt.Errorf("release abandoned order %s: %w", t.OrderID, err)
	}
	return nil
}

// awaitDeadline reports whether t's deadline has come. A timer delivered
// early (the broker's clock ahead of ours) is held when the deadline is
// near, and otherwise set again for the deadline (due false).
func (a *App) awaitDeadline(ctx context.Context, t events.OrderTimeout) (bool, error) {
	wait := time.Until(t.Deadline)
	if wait <= 0 {
		return true, nil
	}
	if wait <= maxHold {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(wait):
			return true, nil
		}
	}
	a.log.Warn("order timer delivered early; set again", "order", t.OrderID, "early_by", wait.String())
	if err := a.bus.SendAt(ctx, events.TopicOrderTimeout, events.Key(t.OrderID), "timeout:"+t.OrderID, t, t.Deadline); err != nil {
		return false, fmt.Errorf("set order timer again: %w", err)
	}
	return false, nil
}

// closeOrder closes a PENDING_PAYMENT order with TopicOrderClosed in the
// same transaction; errStateChanged when it was no longer pending.
func (a *App) closeOrder(ctx context.Context, o *Order, reason string) error {
	now := a.now()
	ev := events.OrderClosed{OrderID: o.ID, UserID: o.UserID, Reason: reason, CouponID: o.CouponID, Items: o.Lines, ClosedAt: now}
	err := a.pub.Publish(ctx, events.TopicOrderClosed, o.Key(), "closed:"+o.ID, ev, func(tx *gorm.DB) error {
		return markClosed(tx, o.ID, reason, now)
	})
	if errors.Is(err, txmsg.ErrDuplicate) {
		return errStateChanged
	}
	if err == nil {
		a.log.Info("order closed", "order", o.ID, "reason", reason)
	}
	return err
}
