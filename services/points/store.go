package points

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"qianlang.io/services/dbtx"
	"qianlang.io/services/idempotent"
)

const (
	// points_entries: at most one + and one − per order (the unique key
	// on order_id, sign), so no redelivery can credit or debit twice.
	entriesTable = `CREATE TABLE IF NOT EXISTS points_entries (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id VARCHAR(64) NOT NULL,
  order_id VARCHAR(128) NOT NULL,
  sign CHAR(1) NOT NULL,
  delta BIGINT NOT NULL,
  reason VARCHAR(32) NOT NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY points_entries_order_sign (order_id, sign),
  KEY points_entries_user (user_id, id),
  CONSTRAINT points_entries_sign CHECK ((sign = '+' AND delta >= 0) OR (sign = '-' AND delta <= 0))
) ENGINE=InnoDB`

	// points_orders is the per-order marker.
	ordersTable = `CREATE TABLE IF NOT EXISTS points_orders (
  order_id VARCHAR(128) NOT NULL PRIMARY KEY,
  user_id VARCHAR(64) NOT NULL,
  state VARCHAR(16) NOT NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB`
)

// Entry is one change of a user's points.
type Entry struct {
	OrderID string `gorm:"column:order_id"`
	Delta   int64  `gorm:"column:delta"`
	Reason  string `gorm:"column:reason"`
}

// Store keeps the points entries and the orders' markers.
type Store struct{ db *gorm.DB }

// NewStore returns a Store on db.
func NewStore(db *gorm.DB) *Store { return &Store{db: db} }

// Account returns a user's balance and entries, newest first.
func (s *Store) Account(ctx context.Context, userID string) (int64, []Entry, error) {
	entries := []Entry{}
	db := s.db.WithContext(ctx)
	err := db.Raw("SELECT order_id, delta, reason FROM points_entries WHERE user_id = ? ORDER BY id DESC", userID).Scan(&entries).Error
	if err != nil {
		return 0, nil, fmt.Errorf("points of %s: %w", userID, err)
	}
	var balance int64
	for _, e := range entries {
		balance += e.Delta
	}
	return balance, entries, nil
}

// Apply applies ev for an order of userID paid payCents (see Transition)
// and reports whether anything changed.
func (s *Store) Apply(ctx context.Context, orderID, userID string, payCents int64, ev Event) (bool, error) {
	var applied bool
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		applied = false
		from, err := lockOrder(tx, orderID, userID)
		if err != nil {
			return err
		}
		to, eff, ok := Transition(from, ev)
		if !ok {
			return nil
		}
		if err := tx.Exec("UPDATE points_orders SET state = ? WHERE order_id = ?", to, orderID).Error; err != nil {
			return err
		}
		switch eff {
		case Credit:
			err = credit(tx, orderID, userID, For(payCents))
		case Debit:
			err = debit(tx, orderID)
		}
		applied = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", ev, orderID, err)
	}
	return applied, nil
}

// lockOrder takes the order's marker row and returns its state ("" for an
// order not heard of before): every change for one order goes through this
// row, one at a time.
func lockOrder(tx *gorm.DB, orderID, userID string) (OrderState, error) {
	var states []string
	if err := tx.Raw("SELECT state FROM points_orders WHERE order_id = ? FOR UPDATE", orderID).Scan(&states).Error; err != nil {
		return "", err
	}
	if len(states) > 0 {
		return OrderState(states[0]), nil
	}
	// Claim the order with a placeholder; a concurrent delivery that
	// claimed it first makes this insert wait, then fail, and the
	// transaction run again.
	if err := tx.Exec("INSERT INTO points_orders (order_id, user_id, state) VALUES (?, ?, '')", orderID, userID).Error; err != nil {
		if idempotent.IsDuplicateKey(err) {
			return "", errRace
		}
		return "", err
	}
	return "", nil
}

func credit(tx *gorm.DB, orderID, userID string, pts int64) error {
	if pts == 0 {
		return nil // nothing earned, nothing to take back
	}
	return tx.Exec("INSERT INTO points_entries (user_id, order_id, sign, delta, reason) VALUES (?, ?, '+', ?, ?)",
		userID, orderID, pts, ReasonPaid).Error
}

func debit(tx *gorm.DB, orderID string) error {
	// Only what was credited is taken back, from the user it went to.
	return tx.Exec(`INSERT INTO points_entries (user_id, order_id, sign, delta, reason)
SELECT user_id, order_id, '-', -delta, ? FROM points_entries WHERE order_id = ? AND sign = '+'`, ReasonRefunded, orderID).Error
}

var errRace = errors.New("concurrent change, try again")

// inTx runs fn in a transaction (dbtx.Run), again when it lost a deadlock
// or a race.
func (s *Store) inTx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return dbtx.Run(ctx, s.db, fn, errRace)
}
