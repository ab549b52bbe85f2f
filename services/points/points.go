// Package points is the points service: a paid order earns
// floor(pay_cents / 100) points, and its refund takes them back; each order
// has at most one + and one − entry, however often or in whatever order
// the events arrive.
//
// Layers: domain.go is the pure logic (the points of a payment, the
// per-order state machine), store.go the database, http.go and queue.go
// the adapters.
package points

import (
	"context"

	"qianlang.io/services/bus"
	"qianlang.io/services/daemon"
	"qianlang.io/services/events"
	"qianlang.io/services/idempotent"
	"qianlang.io/services/migrate"
)

// Migrations are points' schema versions.
var Migrations = []migrate.Migration{
	{Version: 1, Name: "points entries and order markers", Statements: []string{idempotent.Schema, entriesTable, ordersTable}},
}

// Setup registers points' route and queue handlers.
func Setup(_ context.Context, s *daemon.Service) error {
	store := NewStore(s.DB)
	s.Handle("GET /api/points", NewAPI(store, s.Tokens).Account)
	q := NewQueue(store, s.Log)
	return s.Subscribe(events.GroupCredit, map[string]bus.Handler{
		events.TopicOrderPaySuccess: q.Paid,
		events.TopicOrderRefund:     q.Refund,
	})
}
