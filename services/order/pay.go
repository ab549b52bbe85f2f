package order

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"qianlang.io/services/events"
	"qianlang.io/services/providerclient"
	"qianlang.io/services/txmsg"
)

// freePaymentPrefix names the payment of an order with nothing to pay (a
// coupon covered it all): it is settled here, never at the provider.
const freePaymentPrefix = "free-"

// Pay opens the payment of the user's order at the provider, or returns
// the one opened before; it answers the payment id and the amount.
func (a *App) Pay(ctx context.Context, userID, orderID string) (string, int64, error) {
	o, err := a.store.GetForUser(ctx, userID, orderID)
	if err != nil {
		return "", 0, err
	}
	if o.State != StatePending {
		return "", 0, fmt.Errorf("%w: order %s is %s", ErrNotPayable, o.ID, o.State)
	}
	if o.OpenedPaymentID != "" {
		return o.OpenedPaymentID, o.PayCents, nil
	}
	if o.PayCents == 0 {
		return a.payNothing(ctx, o)
	}
	p, err := a.provider.OpenPayment(ctx, "pay:"+o.ID, providerclient.PaymentRequest{
		OrderID: o.ID, UserID: o.UserID, Cents: o.PayCents, NotifyURL: a.cfg.NotifyURL(),
	})
	if err != nil {
		return "", 0, fmt.Errorf("%w: open payment: %v", ErrUnavailable, err)
	}
	if err := a.store.SetOpenedPayment(ctx, o.ID, p.PaymentID); err != nil {
		return "", 0, err
	}
	return p.PaymentID, o.PayCents, nil
}

// payNothing settles an order that costs nothing as if its payment had
// been notified.
func (a *App) payNothing(ctx context.Context, o *Order) (string, int64, error) {
	id := freePaymentPrefix + o.ID
	if err := a.SettlePayment(ctx, providerclient.PaymentNotification{PaymentID: id, OrderID: o.ID}); err != nil {
		return "", 0, err
	}
	if err := a.store.SetOpenedPayment(ctx, o.ID, id); err != nil {
		return "", 0, err
	}
	return id, 0, nil
}

// SettlePayment applies the provider's notification of a payment: the
// first payment of a PENDING_PAYMENT order for its amount pays it
// (TopicOrderPaySuccess in the same transaction); any other new payment is
// recorded and returned (TopicPaymentRefund); a payment seen before
// changes nothing. ErrNotFound for an unknown order.
func (a *App) SettlePayment(ctx context.Context, n providerclient.PaymentNotification) error {
	defer a.locks.lock(n.OrderID)()
	for attempt := 0; ; attempt++ {
		err := a.settleOnce(ctx, n)
		if !errors.Is(err, errStateChanged) || attempt >= 3 {
			return err
		}
	}
}

func (a *App) settleOnce(ctx context.Context, n providerclient.PaymentNotification) error {
	if p, err := a.store.GetPayment(ctx, n.PaymentID); err != nil || p != nil {
		return err
	}
	o, err := a.store.Get(ctx, n.OrderID)
	if err != nil {
		return err
	}
	now := a.now()
	if decidePayment(o, n.Cents) == paymentAccept {
		return a.acceptPayment(ctx, o, n, now)
	}
	return a.returnPayment(ctx, o, n, now)
}

func (a *App) acceptPayment(ctx context.Context, o *Order, n providerclient.PaymentNotification, now time.Time) error {
	ev := events.OrderPaid{OrderID: o.ID, UserID: o.UserID, PaymentID: n.PaymentID, PayCents: o.PayCents,
		CouponID: o.CouponID, Items: o.Lines, Address: o.Address, PaidAt: now}
	err := a.pub.Publish(ctx, events.TopicOrderPaySuccess, o.Key(), "paid:"+o.ID, ev, func(tx *gorm.DB) error {
		p := &Payment{PaymentID: n.PaymentID, OrderID: o.ID, Cents: n.Cents, Disposition: paymentAccepted, ReceivedAt: now}
		if err := insertPayment(tx, p); err != nil {
			return noEventIfDuplicate(err)
		}
		return markPaid(tx, o.ID, n.PaymentID, now)
	})
	if errors.Is(err, txmsg.ErrDuplicate) {
		return errStateChanged
	}
	if err == nil {
		a.log.Info("order paid", "order", o.ID, "payment", n.PaymentID)
	}
	return err
}

// returnPayment records a payment the order cannot take and has the
// refund executor return it.
func (a *App) returnPayment(ctx context.Context, o *Order, n providerclient.PaymentNotification, now time.Time) error {
	refundID := "pr-" + n.PaymentID
	ev := events.PaymentRefund{OrderID: o.ID, RefundID: refundID, PaymentID: n.PaymentID, Cents: n.Cents, At: now}
	err := a.pub.Publish(ctx, events.TopicPaymentRefund, o.Key(), "payrefund:"+n.PaymentID, ev, func(tx *gorm.DB) error {
		p := &Payment{PaymentID: n.PaymentID, OrderID: o.ID, Cents: n.Cents, Disposition: paymentReturned,
			RefundID: refundID, RefundState: RefundPending, ReceivedAt: now}
		return noEventIfDuplicate(insertPayment(tx, p))
	})
	if errors.Is(err, txmsg.ErrDuplicate) {
		return nil
	}
	if err == nil {
		a.log.Warn("payment returned: the order cannot take it", "order", o.ID, "state", o.State, "payment", n.PaymentID, "cents", n.Cents)
	}
	return err
}

func noEventIfDuplicate(err error) error {
	if errors.Is(err, errDuplicatePayment) {
		return txmsg.ErrNoEvent
	}
	return err
}
