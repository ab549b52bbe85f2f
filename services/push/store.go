package push

import (
	"context"
	"time"

	"gorm.io/gorm"

	"qianlang.io/services/idempotent"
	"qianlang.io/services/migrate"
)

// Migrations is the push database's schema.
var Migrations = []migrate.Migration{{Version: 1, Name: "notifications", Statements: []string{
	`CREATE TABLE IF NOT EXISTS notifications (
  order_id VARCHAR(128) NOT NULL,
  kind VARCHAR(32) NOT NULL,
  user_id VARCHAR(64) NOT NULL,
  sms_id VARCHAR(128) NOT NULL,
  at DATETIME(6) NOT NULL,
  PRIMARY KEY (order_id, kind),
  KEY by_user (user_id, at)
) ENGINE=InnoDB`,
}}}

// DBStore is the Store in the service's MariaDB.
type DBStore struct{ db *gorm.DB }

// NewDBStore returns the store over db.
func NewDBStore(db *gorm.DB) *DBStore { return &DBStore{db: db} }

// Sent reports whether (orderID, kind) was recorded.
func (s *DBStore) Sent(ctx context.Context, orderID, kind string) (bool, error) {
	var n int64
	err := s.db.WithContext(ctx).Raw("SELECT COUNT(*) FROM notifications WHERE order_id = ? AND kind = ?", orderID, kind).Scan(&n).Error
	return n > 0, err
}

// Record inserts the row; the unique (order_id, kind) makes a second
// insert a no-op.
func (s *DBStore) Record(ctx context.Context, n Notice, smsID string, at time.Time) error {
	err := s.db.WithContext(ctx).Exec("INSERT INTO notifications (order_id, kind, user_id, sms_id, at) VALUES (?, ?, ?, ?, ?)",
		n.OrderID, n.Kind, n.UserID, smsID, at.UTC()).Error
	if idempotent.IsDuplicateKey(err) {
		return nil
	}
	return err
}

// List returns userID's notifications, oldest first.
func (s *DBStore) List(ctx context.Context, userID string) ([]Notification, error) {
	out := []Notification{}
	err := s.db.WithContext(ctx).Raw("SELECT order_id, kind, at FROM notifications WHERE user_id = ? ORDER BY at, order_id, kind", userID).Scan(&out).Error
	for i := range out {
		out[i].At = out[i].At.UTC()
	}
	return out, err
}
