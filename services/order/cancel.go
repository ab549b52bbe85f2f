package order

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"qianlang.io/services/events"
	"qianlang.io/services/txmsg"
)

// Cancel cancels the user's order: an unpaid one is CLOSED at once
// (TopicOrderClosed, CANCELLED); a paid one that has not started shipping
// goes to REFUNDING (TopicOrderRefund) and the refund executor returns the
// money; a shipping one is ErrAlreadyShipped; a closed or refunding one is
// left as it is. It returns the order as it is afterwards.
func (a *App) Cancel(ctx context.Context, userID, orderID string) (*Order, error) {
	defer a.locks.lock(orderID)()
	for attempt := 0; attempt < 5; attempt++ {
		o, err := a.store.GetForUser(ctx, userID, orderID)
		if err != nil {
			return nil, err
		}
		switch decideCancel(o) {
		case cancelNothing:
			return o, nil
		case cancelRefuse:
			return nil, fmt.Errorf("%w: order %s is %s", ErrAlreadyShipped, o.ID, o.State)
		case cancelClose:
			err = a.closeOrder(ctx, o, events.CloseCancelled)
		case cancelRefund:
			err = a.startRefund(ctx, o)
		}
		if errors.Is(err, errStateChanged) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return a.store.GetForUser(ctx, userID, orderID)
	}
	return nil, fmt.Errorf("cancel order %s: it kept changing", orderID)
}

// startRefund moves a PAID order that has not started shipping to
// REFUNDING under a new refund id, with TopicOrderRefund in the same
// transaction; errStateChanged when it no longer qualifies.
func (a *App) startRefund(ctx context.Context, o *Order) error {
	now := a.now()
	refundID := newID("R", now)
	ev := events.OrderRefund{OrderID: o.ID, UserID: o.UserID, RefundID: refundID, PaymentID: o.PaymentID,
		PayCents: o.PayCents, CouponID: o.CouponID, Items: o.Lines, At: now}
	err := a.pub.Publish(ctx, events.TopicOrderRefund, o.Key(), "refund:"+o.ID, ev, func(tx *gorm.DB) error {
		return markRefunding(tx, o.ID, refundID, now)
	})
	if errors.Is(err, txmsg.ErrDuplicate) {
		return errStateChanged
	}
	if err == nil {
		a.log.Info("order refunding", "order", o.ID, "refund", refundID)
	}
	return err
}
