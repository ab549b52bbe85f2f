package order

import (
	"context"
	"errors"
	"fmt"

	"qianlang.io/services/events"
)

// Place places an order, or returns the user's order placed before with
// the same key (created false). The sequence makes every failure clean up:
//
//  1. the timer message first, so an order whose placement dies half-way
//     is still released at its deadline (the timer finds no order);
//  2. lock the stock (inventory answers prices and costs);
//  3. reserve the coupon, if any, for the total;
//  4. insert the order PENDING_PAYMENT.
//
// A refusal or an error after step 2 began sends TopicOrderClosed
// (ABANDONED) so inventory and marketing release what they hold.
func (a *App) Place(ctx context.Context, in PlaceInput) (*Order, bool, error) {
	if err := in.Validate(); err != nil {
		return nil, false, err
	}
	if o, err := a.store.FindByIdemKey(ctx, in.UserID, in.IdemKey); !errors.Is(err, ErrNotFound) {
		return o, false, err
	}
	now := a.now()
	o := &Order{
		ID: newID("O", now), UserID: in.UserID, IdemKey: in.IdemKey, State: StatePending,
		CouponID: in.CouponID, Address: *in.Address, CreatedAt: now, ExpiresAt: now.Add(a.cfg.OrderTimeout),
	}
	timer := events.OrderTimeout{OrderID: o.ID, UserID: o.UserID, Deadline: o.ExpiresAt}
	if err := a.bus.SendAt(ctx, events.TopicOrderTimeout, o.Key(), "timeout:"+o.ID, timer, o.ExpiresAt); err != nil {
		return nil, false, fmt.Errorf("%w: order timer: %v", ErrUnavailable, err)
	}
	placed := false
	defer func() {
		if !placed {
			a.abandon(ctx, o)
		}
	}()
	if err := a.reserve(ctx, o, in.Items); err != nil {
		return nil, false, err
	}
	switch err := a.store.Insert(ctx, o); {
	case errors.Is(err, errDuplicatePlacement):
		// A concurrent request with the same key won: give back what this
		// one reserved and answer the winner's order.
		w, err := a.store.FindByIdemKey(ctx, in.UserID, in.IdemKey)
		return w, false, err
	case errors.Is(err, errAbandonedID):
		return nil, false, fmt.Errorf("%w: placing took longer than the order timeout", ErrUnavailable)
	case err != nil:
		// A commit whose answer was lost may have placed the order after
		// all: releasing its reservations then would be wrong.
		if _, gerr := a.store.Get(context.WithoutCancel(ctx), o.ID); gerr == nil {
			break
		}
		return nil, false, err
	}
	placed = true
	a.log.Info("order placed", "order", o.ID, "user", o.UserID, "pay_cents", o.PayCents)
	return o, true, nil
}

// reserve locks the stock and reserves the coupon, filling in the order's
// lines and amounts.
func (a *App) reserve(ctx context.Context, o *Order, items []ItemInput) error {
	req := events.StockLockRequest{OrderID: o.ID, Items: itemLines(items)}
	var lock events.StockLockReply
	if err := a.request(ctx, events.TopicStockLock, o, req, &lock); err != nil {
		return err
	}
	switch lock.Result {
	case events.StockLocked:
	case events.StockOutOfStock:
		return fmt.Errorf("%w: %s", ErrOutOfStock, lock.SKUID)
	case events.StockUnknownSKU:
		return fmt.Errorf("%w: %s", ErrUnknownSKU, lock.SKUID)
	default:
		return fmt.Errorf("%w: stock lock answered %q", ErrUnavailable, lock.Result)
	}
	lines, total, err := priceLines(req.Items, lock.Items)
	if err != nil {
		return err
	}
	o.Lines, o.TotalCents = lines, total
	if o.CouponID != "" {
		creq := events.CouponReserveRequest{OrderID: o.ID, UserID: o.UserID, CouponID: o.CouponID, TotalCents: total}
		var c events.CouponReserveReply
		if err := a.request(ctx, events.TopicCouponReserve, o, creq, &c); err != nil {
			return err
		}
		if c.Result != events.CouponReserved {
			return fmt.Errorf("%w: %s %s", ErrCouponUnavailable, c.Result, c.Reason)
		}
		o.DiscountCents = discount(c.AmountCents, total)
	}
	o.PayCents = o.TotalCents - o.DiscountCents
	return nil
}

// request asks a neighbour; no answer in time (or none at all, the
// caller having gone) is ErrUnavailable.
func (a *App) request(ctx context.Context, topic string, o *Order, req, resp any) error {
	if err := a.bus.Request(ctx, topic, o.Key(), req, resp, a.cfg.RequestTimeout); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, topic, err)
	}
	return nil
}

// abandon tells inventory and marketing to release what they hold for an
// order that will not exist. A failed send is only logged: the order's
// timer sends the same release at the deadline.
func (a *App) abandon(ctx context.Context, o *Order) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseDeadline)
	defer cancel()
	ev := events.OrderClosed{OrderID: o.ID, UserID: o.UserID, Reason: events.CloseAbandoned,
		CouponID: o.CouponID, Items: o.Lines, ClosedAt: a.now()}
	if len(ev.Items) == 0 {
		ev.Items = nil
	}
	if err := a.bus.Send(ctx, events.TopicOrderClosed, o.Key(), "closed:"+o.ID, ev); err != nil {
		a.log.Warn("release of an abandoned order not sent; its timer will send it", "order", o.ID, "err", err)
		return
	}
	a.log.Info("order abandoned", "order", o.ID, "user", o.UserID)
}
