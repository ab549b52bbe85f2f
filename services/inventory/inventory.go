// Package inventory is the inventory service: SKUs with their price, cost
// and stock counters (available, locked, sold, and the units ever stocked),
// the all-or-nothing stock lock the order service asks for when an order is
// placed, and the stock moves that follow the order's events: sold when
// paid, released when closed, restored when refunded.
//
// Layers: domain.go is the pure logic (validation, lock plans, the per-order
// state machine), store.go the database, http.go and queue.go the adapters.
package inventory

import (
	"context"

	"qianlang.io/services/bus"
	"qianlang.io/services/daemon"
	"qianlang.io/services/events"
	"qianlang.io/services/idempotent"
	"qianlang.io/services/migrate"
)

// Migrations are inventory's schema versions.
var Migrations = []migrate.Migration{
	{Version: 1, Name: "skus and stock locks", Statements: []string{
		idempotent.Schema, skusTable, stockOrdersTable, stockOrderLinesTable,
	}},
}

// ReplyGroup is the producer group inventory answers lock requests from.
const ReplyGroup = "inventory_reply_group"

// Setup registers inventory's routes and queue handlers.
func Setup(_ context.Context, s *daemon.Service) error {
	store := NewStore(s.DB)
	api := NewAPI(store, s.Tokens)
	s.Handle("PUT /api/admin/skus/{sku_id}", api.PutSKU)
	s.Handle("GET /api/skus/{sku_id}", api.GetSKU)

	q := NewQueue(store, s.Log)
	if err := s.Answer(events.GroupStockLock, ReplyGroup, events.TopicStockLock, q.Lock); err != nil {
		return err
	}
	return s.Subscribe(events.GroupStock, map[string]bus.Handler{
		events.TopicOrderPaySuccess: q.Paid,
		events.TopicOrderClosed:     q.Closed,
		events.TopicOrderRefunded:   q.Refunded,
	})
}
