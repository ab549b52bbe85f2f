package order

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"qianlang.io/services/bus"
	"qianlang.io/services/events"
	"qianlang.io/services/providerclient"
	"qianlang.io/services/txmsg"
)

// The refund executor (refund_consumer_group) returns money through the
// provider. The provider call's idempotency key is the refund id, the same
// on every delivery, so however often a message is redelivered the money
// goes back once. A failed or unknown outcome returns an error: the queue
// redelivers with its growing delay, and after 16 tries the message waits
// in the group's dead-letter queue for an operator.

// HandleOrderRefund returns a REFUNDING order's payment, then makes the
// order REFUNDED with TopicOrderRefunded in the same transaction.
func (a *App) HandleOrderRefund(ctx context.Context, m *bus.Message) error {
	var ev events.OrderRefund
	if err := m.Decode(&ev); err != nil {
		a.log.Error("undecodable order refund dropped", "event", m.EventID, "err", err)
		return nil
	}
	o, err := a.store.Get(ctx, ev.OrderID)
	if err != nil {
		return fmt.Errorf("order refund %s: %w", ev.OrderID, err)
	}
	if o.State == StateRefunded {
		return nil
	}
	if o.State != StateRefunding || o.RefundID != ev.RefundID {
		a.log.Error("order refund for an order not refunding under it; skipped", "order", o.ID, "state", o.State,
			"refund", ev.RefundID, "order_refund", o.RefundID)
		return nil
	}
	providerRefundID, err := a.refund(ctx, o.RefundID, o.PaymentID, o.PayCents)
	if err != nil {
		return err
	}
	return a.finishRefund(ctx, o, providerRefundID)
}

func (a *App) finishRefund(ctx context.Context, o *Order, providerRefundID string) error {
	defer a.locks.lock(o.ID)()
	now := a.now()
	ev := events.OrderRefunded{OrderID: o.ID, UserID: o.UserID, RefundID: o.RefundID,
		ProviderRefundID: providerRefundID, Items: o.Lines, At: now}
	err := a.pub.Publish(ctx, events.TopicOrderRefunded, o.Key(), "refunded:"+o.ID, ev, func(tx *gorm.DB) error {
		if err := markRefunded(tx, o.ID, providerRefundID, now); err != nil {
			if errors.Is(err, errStateChanged) {
				return txmsg.ErrNoEvent // refunded already
			}
			return err
		}
		return nil
	})
	if errors.Is(err, txmsg.ErrDuplicate) {
		return nil
	}
	if err == nil {
		a.log.Info("order refunded", "order", o.ID, "refund", o.RefundID, "provider_refund", providerRefundID)
	}
	return err
}

// HandlePaymentRefund returns a payment its order could not take and
// records the refund.
func (a *App) HandlePaymentRefund(ctx context.Context, m *bus.Message) error {
	var ev events.PaymentRefund
	if err := m.Decode(&ev); err != nil {
		a.log.Error("undecodable payment refund dropped", "event", m.EventID, "err", err)
		return nil
	}
	p, err := a.store.GetPayment(ctx, ev.PaymentID)
	if err != nil {
		return err
	}
	if p == nil || p.Disposition != paymentReturned {
		// The message commits with the payment's row, so this is not a
		// payment to return.
		a.log.Error("payment refund for a payment not to be returned; skipped", "payment", ev.PaymentID)
		return nil
	}
	if p.RefundState == RefundDone {
		return nil
	}
	providerRefundID, err := a.refund(ctx, p.RefundID, p.PaymentID, p.Cents)
	if err != nil {
		return err
	}
	if _, err := a.store.MarkPaymentReturned(ctx, p.PaymentID, providerRefundID, a.now()); err != nil {
		return err
	}
	a.log.Info("payment returned", "order", p.OrderID, "payment", p.PaymentID, "refund", p.RefundID, "provider_refund", providerRefundID)
	return nil
}

// refund returns cents of a payment under key and answers the provider's
// refund id; nothing is returned for nothing paid.
func (a *App) refund(ctx context.Context, key, paymentID string, cents int64) (string, error) {
	if cents == 0 {
		return "", nil
	}
	r, err := a.provider.Refund(ctx, key, providerclient.RefundRequest{PaymentID: paymentID, Cents: cents})
	if err != nil {
		if providerclient.IsRefused(err) {
			a.log.Error("the provider refused a refund; retried until the dead-letter queue", "refund", key, "payment", paymentID, "err", err)
		}
		return "", fmt.Errorf("refund %s: %w", key, err)
	}
	if r.State != RefundDone {
		return "", fmt.Errorf("refund %s: provider answered state %q", key, r.State)
	}
	return r.RefundID, nil
}
