// Package marketing is the marketing service: coupons issued by the admin
// or earned by paid orders, reserved for an order when it is placed, spent
// when it is paid, given back when it is closed or refunded.
//
// Layers: domain.go is the pure logic (validation, the reservation
// decision, the per-order state machine), store.go the database, http.go
// and queue.go the adapters.
package marketing

import (
	"context"

	"qianlang.io/services/bus"
	"qianlang.io/services/daemon"
	"qianlang.io/services/events"
	"qianlang.io/services/idempotent"
	"qianlang.io/services/migrate"
)

// Migrations are marketing's schema versions.
var Migrations = []migrate.Migration{
	{Version: 1, Name: "coupons and order markers", Statements: []string{idempotent.Schema, couponsTable, couponOrdersTable}},
}

// ReplyGroup is the producer group marketing answers reservations from.
const ReplyGroup = "marketing_reply_group"

// Setup registers marketing's routes and queue handlers.
func Setup(_ context.Context, s *daemon.Service) error {
	store := NewStore(s.DB)
	api := NewAPI(store, s.Tokens)
	s.Handle("PUT /api/admin/coupons/{coupon_id}", api.PutCoupon)
	s.Handle("GET /api/coupons", api.ListCoupons)

	q := NewQueue(store, s.Log)
	if err := s.Answer(events.GroupCouponReserve, ReplyGroup, events.TopicCouponReserve, q.Reserve); err != nil {
		return err
	}
	return s.Subscribe(events.GroupMarketing, map[string]bus.Handler{
		events.TopicOrderPaySuccess: q.Paid,
		events.TopicOrderClosed:     q.Closed,
		events.TopicOrderRefund:     q.Refund,
	})
}
