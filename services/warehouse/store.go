package warehouse

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"qianlang.io/services/events"
	"qianlang.io/services/idempotent"
	"qianlang.io/services/migrate"
	"qianlang.io/services/txmsg"
)

// Migrations is the warehouse database's schema.
var Migrations = []migrate.Migration{{Version: 1, Name: "shipments", Statements: []string{
	txmsg.Schema,
	`CREATE TABLE IF NOT EXISTS shipments (
  order_id VARCHAR(128) NOT NULL PRIMARY KEY,
  user_id VARCHAR(64) NOT NULL,
  state VARCHAR(16) NOT NULL,
  carrier VARCHAR(64) NOT NULL DEFAULT '',
  tracking_no VARCHAR(128) NOT NULL DEFAULT '',
  shipped_at DATETIME(6) NULL,
  delivered_at DATETIME(6) NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB`,
}}}

// Publisher publishes an event with a local transaction (txmsg).
type Publisher interface {
	Publish(ctx context.Context, topic, key, eventID string, ev any, local func(tx *gorm.DB) error) error
}

// DBStore is the Store in the service's MariaDB, publishing through pub.
type DBStore struct {
	db  *gorm.DB
	pub Publisher
}

// NewDBStore returns the store over db.
func NewDBStore(db *gorm.DB, pub Publisher) *DBStore { return &DBStore{db: db, pub: pub} }

// Get returns orderID's shipment.
func (s *DBStore) Get(ctx context.Context, orderID string) (Shipment, bool, error) {
	var rows []Shipment
	err := s.db.WithContext(ctx).Raw(`SELECT order_id, user_id, state, carrier, tracking_no, shipped_at, delivered_at
FROM shipments WHERE order_id = ?`, orderID).Scan(&rows).Error
	if err != nil || len(rows) == 0 {
		return Shipment{}, false, err
	}
	return rows[0], true, nil
}

// RecordCancelled inserts a CANCELLED row unless orderID has one.
func (s *DBStore) RecordCancelled(ctx context.Context, orderID, userID string) error {
	err := s.db.WithContext(ctx).Exec("INSERT INTO shipments (order_id, user_id, state) VALUES (?, ?, ?)",
		orderID, userID, StateCancelled).Error
	if idempotent.IsDuplicateKey(err) {
		return nil
	}
	return err
}

// RecordShipped inserts the shipment and publishes TopicOrderShipped
// (event "shipped:<order_id>") in the same transaction.
func (s *DBStore) RecordShipped(ctx context.Context, sh Shipment) error {
	ev := events.OrderShipped{OrderID: sh.OrderID, UserID: sh.UserID, Carrier: sh.Carrier, TrackingNo: sh.TrackingNo, At: *sh.ShippedAt}
	err := s.pub.Publish(ctx, events.TopicOrderShipped, events.Key(sh.OrderID), "shipped:"+sh.OrderID, ev, func(tx *gorm.DB) error {
		err := tx.Exec("INSERT INTO shipments (order_id, user_id, state, carrier, tracking_no, shipped_at) VALUES (?, ?, ?, ?, ?, ?)",
			sh.OrderID, sh.UserID, StateShipped, sh.Carrier, sh.TrackingNo, *sh.ShippedAt).Error
		if idempotent.IsDuplicateKey(err) {
			return txmsg.ErrNoEvent // recorded and published before
		}
		return err
	})
	if errors.Is(err, txmsg.ErrDuplicate) {
		return nil
	}
	return err
}

// RecordDelivered moves the shipment SHIPPED → DELIVERED and publishes
// TopicOrderDelivered (event "delivered:<order_id>") in the same
// transaction.
func (s *DBStore) RecordDelivered(ctx context.Context, sh Shipment, at time.Time) error {
	ev := events.OrderDelivered{OrderID: sh.OrderID, UserID: sh.UserID, Carrier: sh.Carrier, TrackingNo: sh.TrackingNo, At: at}
	err := s.pub.Publish(ctx, events.TopicOrderDelivered, events.Key(sh.OrderID), "delivered:"+sh.OrderID, ev, func(tx *gorm.DB) error {
		res := tx.Exec("UPDATE shipments SET state = ?, delivered_at = ? WHERE order_id = ? AND state = ?",
			StateDelivered, at, sh.OrderID, StateShipped)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return txmsg.ErrNoEvent // delivered before
		}
		return nil
	})
	if errors.Is(err, txmsg.ErrDuplicate) {
		return nil
	}
	return err
}
