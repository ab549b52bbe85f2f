package marketing

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"qianlang.io/services/auth"
	"qianlang.io/services/dbtx"
	"qianlang.io/services/events"
	"qianlang.io/services/idempotent"
)

const (
	couponsTable = `CREATE TABLE IF NOT EXISTS coupons (
  coupon_id VARCHAR(160) NOT NULL PRIMARY KEY,
  user_id VARCHAR(64) NOT NULL,
  amount_cents BIGINT NOT NULL,
  min_spend_cents BIGINT NOT NULL,
  state VARCHAR(16) NOT NULL,
  order_id VARCHAR(128) NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  KEY coupons_user (user_id, created_at),
  KEY coupons_order (order_id),
  CONSTRAINT coupons_amounts CHECK (amount_cents > 0 AND min_spend_cents >= 0),
  CONSTRAINT coupons_holder CHECK ((state IN ('LOCKED', 'USED')) = (order_id IS NOT NULL))
) ENGINE=InnoDB`

	// coupon_orders is the per-order marker: every order marketing heard
	// of and how far it got, so that a late reservation or a late payment
	// does nothing.
	couponOrdersTable = `CREATE TABLE IF NOT EXISTS coupon_orders (
  order_id VARCHAR(128) NOT NULL PRIMARY KEY,
  state VARCHAR(16) NOT NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB`
)

// ErrConflict is returned when a coupon id is issued again with other
// fields.
var ErrConflict = errors.New("coupon id already issued with other fields")

// Store keeps coupons and the orders' markers.
type Store struct{ db *gorm.DB }

// NewStore returns a Store on db.
func NewStore(db *gorm.DB) *Store { return &Store{db: db} }

// PutCoupon issues coupon id as spec; issuing the same coupon again
// returns it as it is now, and other fields for an existing id are
// ErrConflict.
func (s *Store) PutCoupon(ctx context.Context, id string, spec CouponSpec) (Coupon, error) {
	db := s.db.WithContext(ctx)
	err := db.Exec("INSERT INTO coupons (coupon_id, user_id, amount_cents, min_spend_cents, state) VALUES (?, ?, ?, ?, ?)",
		id, spec.UserID, spec.AmountCents, spec.MinSpendCents, CouponAvailable).Error
	if err != nil && !idempotent.IsDuplicateKey(err) {
		return Coupon{}, fmt.Errorf("issue coupon %s: %w", id, err)
	}
	var c Coupon
	if err := db.Table("coupons").Where("coupon_id = ?", id).Take(&c).Error; err != nil {
		return Coupon{}, fmt.Errorf("issue coupon %s: %w", id, err)
	}
	if !spec.Same(c) {
		return c, ErrConflict
	}
	return c, nil
}

// Coupons returns a user's coupons, oldest first.
func (s *Store) Coupons(ctx context.Context, userID string) ([]Coupon, error) {
	out := []Coupon{}
	err := s.db.WithContext(ctx).Table("coupons").Where("user_id = ?", userID).Order("created_at, coupon_id").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("coupons of %s: %w", userID, err)
	}
	return out, nil
}

// Coupon returns one coupon, or nil.
func (s *Store) Coupon(ctx context.Context, id string) (*Coupon, error) {
	return findCoupon(s.db.WithContext(ctx), id, false)
}

func findCoupon(tx *gorm.DB, id string, forUpdate bool) (*Coupon, error) {
	q := "SELECT coupon_id, user_id, amount_cents, min_spend_cents, state, order_id FROM coupons WHERE coupon_id = ?"
	if forUpdate {
		q += " FOR UPDATE"
	}
	var cs []Coupon
	if err := tx.Raw(q, id).Scan(&cs).Error; err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, nil
	}
	return &cs[0], nil
}

// lockOrder takes the order's marker row (creating it OPEN) and returns
// its state: every change for one order goes through this row, one at a
// time.
func lockOrder(tx *gorm.DB, orderID string) (OrderState, error) {
	err := tx.Exec("INSERT INTO coupon_orders (order_id, state) VALUES (?, ?) ON DUPLICATE KEY UPDATE order_id = order_id",
		orderID, OrderOpen).Error
	if err != nil {
		return "", err
	}
	var states []string
	if err := tx.Raw("SELECT state FROM coupon_orders WHERE order_id = ? FOR UPDATE", orderID).Scan(&states).Error; err != nil {
		return "", err
	}
	if len(states) == 0 {
		return "", fmt.Errorf("order %s: marker vanished", orderID)
	}
	return OrderState(states[0]), nil
}

// Reserve answers a reservation request (see DecideReserve); a coupon it
// reserves is LOCKED by the order.
func (s *Store) Reserve(ctx context.Context, req events.CouponReserveRequest) (events.CouponReserveReply, error) {
	var reply events.CouponReserveReply
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		order, err := lockOrder(tx, req.OrderID)
		if err != nil {
			return err
		}
		c, err := findCoupon(tx, req.CouponID, true)
		if err != nil {
			return err
		}
		decision, reason := DecideReserve(c, order, req)
		switch decision {
		case Refuse:
			reply = events.CouponReserveReply{Result: events.CouponUnavailable, Reason: reason}
			return nil
		case Reserve:
			res := tx.Exec("UPDATE coupons SET state = ?, order_id = ? WHERE coupon_id = ? AND state = ?",
				CouponLocked, req.OrderID, req.CouponID, CouponAvailable)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected != 1 {
				return fmt.Errorf("coupon %s changed under its lock", req.CouponID)
			}
		}
		reply = events.CouponReserveReply{Result: events.CouponReserved, AmountCents: c.AmountCents}
		return nil
	})
	if err != nil {
		return reply, fmt.Errorf("reserve %s for %s: %w", req.CouponID, req.OrderID, err)
	}
	return reply, nil
}

// OrderState returns marketing's state of an order ("" when unknown).
func (s *Store) OrderState(ctx context.Context, orderID string) (OrderState, error) {
	var states []string
	if err := s.db.WithContext(ctx).Raw("SELECT state FROM coupon_orders WHERE order_id = ?", orderID).Scan(&states).Error; err != nil {
		return "", fmt.Errorf("order state %s: %w", orderID, err)
	}
	if len(states) == 0 {
		return "", nil
	}
	return OrderState(states[0]), nil
}

// Apply applies ev for an order of userID (see Transition) and reports
// whether anything changed.
func (s *Store) Apply(ctx context.Context, orderID, userID string, ev Event) (bool, error) {
	var applied bool
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		applied = false
		from, err := lockOrder(tx, orderID)
		if err != nil {
			return err
		}
		to, eff, ok := Transition(from, ev)
		if !ok {
			return nil
		}
		if err := tx.Exec("UPDATE coupon_orders SET state = ? WHERE order_id = ?", to, orderID).Error; err != nil {
			return err
		}
		if err := applyEffects(tx, orderID, userID, eff); err != nil {
			return err
		}
		applied = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", ev, orderID, err)
	}
	return applied, nil
}

func applyEffects(tx *gorm.DB, orderID, userID string, eff Effects) error {
	reward := RewardCouponID(orderID)
	for _, st := range []struct {
		on   bool
		sql  string
		args []any
	}{
		{eff.UseLocked, "UPDATE coupons SET state = ? WHERE order_id = ? AND state = ?",
			[]any{CouponUsed, orderID, CouponLocked}},
		{eff.ReleaseLocked, "UPDATE coupons SET state = ?, order_id = NULL WHERE order_id = ? AND state = ?",
			[]any{CouponAvailable, orderID, CouponLocked}},
		{eff.ReleaseUsed, "UPDATE coupons SET state = ?, order_id = NULL WHERE order_id = ? AND state = ?",
			[]any{CouponAvailable, orderID, CouponUsed}},
		// A payment without a valid user (never sent) earns nothing
		// rather than a coupon nobody can see.
		{eff.IssueReward && auth.ValidUserID(userID), `INSERT INTO coupons (coupon_id, user_id, amount_cents, min_spend_cents, state)
VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE coupon_id = coupon_id`,
			[]any{reward, userID, RewardAmountCents, RewardMinSpendCents, CouponAvailable}},
		{eff.RevokeReward, "UPDATE coupons SET state = ? WHERE coupon_id = ? AND state = ?",
			[]any{CouponRevoked, reward, CouponAvailable}},
	} {
		if !st.on {
			continue
		}
		if err := tx.Exec(st.sql, st.args...).Error; err != nil {
			return err
		}
	}
	return nil
}

// inTx runs fn in a transaction (dbtx.Run), again when it lost a deadlock
// .
func (s *Store) inTx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return dbtx.Run(ctx, s.db, fn)
}
