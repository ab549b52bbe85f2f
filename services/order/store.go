package order

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"qianlang.io/services/events"
	"qianlang.io/services/idempotent"
)

// Store keeps orders and payments in the service's MariaDB database.
type Store struct{ db *gorm.DB }

// NewStore returns the store over db.
func NewStore(db *gorm.DB) *Store { return &Store{db: db} }

var (
	// errDuplicatePlacement: the user already has an order for the key.
	errDuplicatePlacement = errors.New("order exists for this idempotency key")
	// errAbandonedID: the order id's timer fired first and released its
	// reservations.
	errAbandonedID = errors.New("order id was abandoned")
	// errDuplicatePayment: the payment was recorded before.
	errDuplicatePayment = errors.New("payment recorded already")
)

// Claim outcomes (order_claims.outcome).
const (
	claimPlaced    = "PLACED"
	claimAbandoned = "ABANDONED"
)

// Payment dispositions (payments.disposition).
const (
	paymentAccepted = "ACCEPTED"
	paymentReturned = "RETURNED"
)

type orderRow struct {
	OrderID          string     `gorm:"column:order_id"`
	UserID           string     `gorm:"column:user_id"`
	IdemKey          string     `gorm:"column:idem_key"`
	State            string     `gorm:"column:state"`
	TotalCents       int64      `gorm:"column:total_cents"`
	DiscountCents    int64      `gorm:"column:discount_cents"`
	PayCents         int64      `gorm:"column:pay_cents"`
	CouponID         string     `gorm:"column:coupon_id"`
	AddrName         string     `gorm:"column:addr_name"`
	AddrPhone        string     `gorm:"column:addr_phone"`
	AddrLine         string     `gorm:"column:addr_line"`
	CreatedAt        time.Time  `gorm:"column:created_at"`
	ExpiresAt        time.Time  `gorm:"column:expires_at"`
	OpenedPaymentID  string     `gorm:"column:opened_payment_id"`
	PaymentID        string     `gorm:"column:payment_id"`
	PaidAt           *time.Time `gorm:"column:paid_at"`
	CloseReason      string     `gorm:"column:close_reason"`
	ShippingStarted  bool       `gorm:"column:shipping_started"`
	ShipmentState    string     `gorm:"column:shipment_state"`
	Carrier          string     `gorm:"column:carrier"`
	TrackingNo       string     `gorm:"column:tracking_no"`
	RefundID         string     `gorm:"column:refund_id"`
	RefundState      string     `gorm:"column:refund_state"`
	ProviderRefundID string     `gorm:"column:provider_refund_id"`
}

const orderColumns = `order_id, user_id, idem_key, state, total_cents, discount_cents, pay_cents, coupon_id,
  addr_name, addr_phone, addr_line, created_at, expires_at, opened_payment_id, payment_id, paid_at, close_reason,
  shipping_started, shipment_state, carrier, tracking_no, refund_id, refund_state, provider_refund_id`

func (r *orderRow) order() *Order {
	return &Order{
		ID: r.OrderID, UserID: r.UserID, IdemKey: r.IdemKey, State: State(r.State),
		TotalCents: r.TotalCents, DiscountCents: r.DiscountCents, PayCents: r.PayCents, CouponID: r.CouponID,
		Address:   Address{Name: r.AddrName, Phone: r.AddrPhone, Line: r.AddrLine},
		CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(),
		OpenedPaymentID: r.OpenedPaymentID, PaymentID: r.PaymentID, PaidAt: utcPtr(r.PaidAt),
		CloseReason: r.CloseReason, ShippingStarted: r.ShippingStarted, ShipmentState: r.ShipmentState,
		Carrier: r.Carrier, TrackingNo: r.TrackingNo,
		RefundID: r.RefundID, RefundState: r.RefundState, ProviderRefundID: r.ProviderRefundID,
	}
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

type lineRow struct {
	OrderID    string `gorm:"column:order_id"`
	LineNo     int    `gorm:"column:line_no"`
	SKUID      string `gorm:"column:sku_id"`
	Qty        int    `gorm:"column:qty"`
	PriceCents int64  `gorm:"column:price_cents"`
	CostCents  int64  `gorm:"column:cost_cents"`
}

// Get returns an order with its lines, or ErrNotFound.
func (s *Store) Get(ctx context.Context, orderID string) (*Order, error) {
	return s.getWhere(ctx, "order_id = ?", orderID)
}

// GetForUser returns the user's order, or ErrNotFound for an unknown order
// or another user's.
func (s *Store) GetForUser(ctx context.Context, userID, orderID string) (*Order, error) {
	return s.getWhere(ctx, "order_id = ? AND user_id = ?", orderID, userID)
}

// FindByIdemKey returns the user's order placed with key, or ErrNotFound.
func (s *Store) FindByIdemKey(ctx context.Context, userID, key string) (*Order, error) {
	return s.getWhere(ctx, "user_id = ? AND idem_key = ?", userID, key)
}

func (s *Store) getWhere(ctx context.Context, where string, args ...any) (*Order, error) {
	var rows []orderRow
	if err := s.db.WithContext(ctx).Raw("SELECT "+orderColumns+" FROM orders WHERE "+where, args...).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("read order: %w", err)
	}
	if len(rows) == 0 {
		return nil, ErrNotFound
	}
	o := rows[0].order()
	if err := s.loadLines(ctx, []*Order{o}); err != nil {
		return nil, err
	}
	return o, nil
}

// Cursor is a position in a user's order list, newest first.
type Cursor struct {
	CreatedAt time.Time
	OrderID   string
}

// List returns up to limit of the user's orders after cursor (nil: from
// the newest), newest first.
func (s *Store) List(ctx context.Context, userID string, after *Cursor, limit int) ([]*Order, error) {
	q := "SELECT " + orderColumns + " FROM orders WHERE user_id = ?"
	args := []any{userID}
	if after != nil {
		q += " AND (created_at < ? OR (created_at = ? AND order_id < ?))"
		args = append(args, after.CreatedAt, after.CreatedAt, after.OrderID)
	}
	q += " ORDER BY created_at DESC, order_id DESC LIMIT ?"
	args = append(args, limit)
	var rows []orderRow
	if err := s.db.WithContext(ctx).Raw(q, args...).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	out := make([]*Order, len(rows))
	for i := range rows {
		out[i] = rows[i].order()
	}
	if err := s.loadLines(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) loadLines(ctx context.Context, orders []*Order) error {
	if len(orders) == 0 {
		return nil
	}
	byID := make(map[string]*Order, len(orders))
	ids := make([]string, len(orders))
	for i, o := range orders {
		byID[o.ID], ids[i] = o, o.ID
	}
	var rows []lineRow
	err := s.db.WithContext(ctx).Raw(`SELECT order_id, line_no, sku_id, qty, price_cents, cost_cents
  FROM order_lines WHERE order_id IN ? ORDER BY order_id, line_no`, ids).Scan(&rows).Error
	if err != nil {
		return fmt.Errorf("read order lines: %w", err)
	}
	for _, r := range rows {
		o := byID[r.OrderID]
		o.Lines = append(o.Lines, events.Line{SKUID: r.SKUID, Qty: r.Qty, PriceCents: r.PriceCents, CostCents: r.CostCents})
	}
	return nil
}

// Insert creates a placed order with its lines: errDuplicatePlacement when
// the user has an order for the key, errAbandonedID when the order id's
// timer released it first.
func (s *Store) Insert(ctx context.Context, o *Order) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Exec("INSERT INTO order_claims (order_id, outcome) VALUES (?, ?)", o.ID, claimPlaced).Error
		if idempotent.IsDuplicateKey(err) {
			return errAbandonedID
		}
		if err != nil {
			return fmt.Errorf("claim order id: %w", err)
		}
		err = tx.Exec(`INSERT INTO orders (order_id, user_id, idem_key, state, total_cents, discount_cents, pay_cents,
  coupon_id, addr_name, addr_phone, addr_line, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			o.ID, o.UserID, o.IdemKey, string(o.State), o.TotalCents, o.DiscountCents, o.PayCents,
			o.CouponID, o.Address.Name, o.Address.Phone, o.Address.Line, o.CreatedAt, o.ExpiresAt).Error
		if idempotent.IsDuplicateKey(err) {
			return errDuplicatePlacement
		}
		if err != nil {
			return fmt.Errorf("insert order: %w", err)
		}
		rows := make([]lineRow, len(o.Lines))
		for i, l := range o.Lines {
			rows[i] = lineRow{OrderID: o.ID, LineNo: i, SKUID: l.SKUID, Qty: l.Qty, PriceCents: l.PriceCents, CostCents: l.CostCents}
		}
		if err := tx.Table("order_lines").Create(&rows).Error; err != nil {
			return fmt.Errorf("insert order lines: %w", err)
		}
		return nil
	})
}

// ClaimAbandoned records that an order id's timer found no order: it
// reports false when the order was placed after all (its insert won).
func (s *Store) ClaimAbandoned(ctx context.Context, orderID string) (bool, error) {
	err := s.db.WithContext(ctx).Exec("INSERT INTO order_claims (order_id, outcome) VALUES (?, ?)", orderID, claimAbandoned).Error
	if err == nil {
		return true, nil
	}
	if !idempotent.IsDuplicateKey(err) {
		return false, fmt.Errorf("claim abandoned order id: %w", err)
	}
	var outcome string
	if err := s.db.WithContext(ctx).Raw("SELECT outcome FROM order_claims WHERE order_id = ?", orderID).Scan(&outcome).Error; err != nil {
		return false, fmt.Errorf("read order claim: %w", err)
	}
	return outcome == claimAbandoned, nil
}

// SetOpenedPayment remembers the payment opened for an order, unless one
// is remembered already.
func (s *Store) SetOpenedPayment(ctx context.Context, orderID, paymentID string) error {
	err := s.db.WithContext(ctx).Exec("UPDATE orders SET opened_payment_id = ? WHERE order_id = ? AND opened_payment_id = ''",
		paymentID, orderID).Error
	if err != nil {
		return fmt.Errorf("record opened payment: %w", err)
	}
	return nil
}

// Payment is one payment the provider notified.
type Payment struct {
	PaymentID        string     `gorm:"column:payment_id"`
	OrderID          string     `gorm:"column:order_id"`
	Cents            int64      `gorm:"column:cents"`
	Disposition      string     `gorm:"column:disposition"`
	RefundID         string     `gorm:"column:refund_id"`
	RefundState      string     `gorm:"column:refund_state"`
	ProviderRefundID string     `gorm:"column:provider_refund_id"`
	ReceivedAt       time.Time  `gorm:"column:received_at"`
	RefundedAt       *time.Time `gorm:"column:refunded_at"`
}

// GetPayment returns a recorded payment, or nil.
func (s *Store) GetPayment(ctx context.Context, paymentID string) (*Payment, error) {
	var ps []Payment
	if err := s.db.WithContext(ctx).Raw("SELECT * FROM payments WHERE payment_id = ?", paymentID).Scan(&ps).Error; err != nil {
		return nil, fmt.Errorf("read payment: %w", err)
	}
	if len(ps) == 0 {
		return nil, nil
	}
	return &ps[0], nil
}

// insertPayment records a payment in tx, or errDuplicatePayment.
func insertPayment(tx *gorm.DB, p *Payment) error {
	err := tx.Exec(`INSERT INTO payments (payment_id, order_id, cents, disposition, refund_id, refund_state, received_at)
  VALUES (?, ?, ?, ?, ?, ?, ?)`, p.PaymentID, p.OrderID, p.Cents, p.Disposition, p.RefundID, p.RefundState, p.ReceivedAt).Error
	if idempotent.IsDuplicateKey(err) {
		return errDuplicatePayment
	}
	if err != nil {
		return fmt.Errorf("record payment: %w", err)
	}
	return nil
}

// transition runs a conditional UPDATE of one order: errStateChanged when
// it changed nothing.
func transition(tx *gorm.DB, what, set string, args ...any) error {
	res := tx.Exec("UPDATE orders SET "+set, args...)
	if res.Error != nil {
		return fmt.Errorf("%s: %w", what, res.Error)
	}
	if res.RowsAffected == 0 {
		return errStateChanged
	}
	return nil
}

func markPaid(tx *gorm.DB, orderID, paymentID string, at time.Time) error {
	return transition(tx, "mark paid", "state = ?, payment_id = ?, paid_at = ? WHERE order_id = ? AND state = ?",
		StatePaid, paymentID, at, orderID, StatePending)
}

func markClosed(tx *gorm.DB, orderID, reason string, at time.Time) error {
	return transition(tx, "close order", "state = ?, close_reason = ?, closed_at = ? WHERE order_id = ? AND state = ?",
		StateClosed, reason, at, orderID, StatePending)
}

func markRefunding(tx *gorm.DB, orderID, refundID string, at time.Time) error {
	return transition(tx, "start refund",
		"state = ?, refund_id = ?, refund_state = ?, refund_requested_at = ? WHERE order_id = ? AND state = ? AND shipping_started = 0",
		StateRefunding, refundID, RefundPending, at, orderID, StatePaid)
}

func markRefunded(tx *gorm.DB, orderID, providerRefundID string, at time.Time) error {
	return transition(tx, "finish refund",
		"state = ?, refund_state = ?, provider_refund_id = ?, refunded_at = ? WHERE order_id = ? AND state = ?",
		StateRefunded, RefundDone, providerRefundID, at, orderID, StateRefunding)
}

// MarkShippingStarted marks a PAID order as shipping (it can no longer be
// cancelled); errStateChanged when it was not PAID and not started.
func (s *Store) MarkShippingStarted(ctx context.Context, orderID string) error {
	return transition(s.db.WithContext(ctx), "start shipping",
		"shipping_started = 1 WHERE order_id = ? AND state = ? AND shipping_started = 0", orderID, StatePaid)
}

// MarkShipped moves a PAID order to SHIPPED; it reports whether it did.
func (s *Store) MarkShipped(ctx context.Context, orderID, carrier, trackingNo string, at time.Time) (bool, error) {
	err := transition(s.db.WithContext(ctx), "mark shipped",
		"state = ?, shipping_started = 1, shipment_state = ?, carrier = ?, tracking_no = ?, shipped_at = ? WHERE order_id = ? AND state = ?",
		StateShipped, ShipmentShipped, carrier, trackingNo, at, orderID, StatePaid)
	return changed(err)
}

// MarkDelivered moves a SHIPPED (or, when the delivery overtook the
// shipment, PAID) order to COMPLETED; it reports whether it did.
func (s *Store) MarkDelivered(ctx context.Context, orderID, carrier, trackingNo string, at time.Time) (bool, error) {
	err := transition(s.db.WithContext(ctx), "mark delivered",
		`state = ?, shipping_started = 1, shipment_state = ?, carrier = IF(carrier = '', ?, carrier),
  tracking_no = IF(tracking_no = '', ?, tracking_no), shipped_at = COALESCE(shipped_at, ?), delivered_at = ?
  WHERE order_id = ? AND state IN (?, ?)`,
		StateCompleted, ShipmentDelivered, carrier, trackingNo, at, at, orderID, StateShipped, StatePaid)
	return changed(err)
}

// MarkPaymentReturned records a returned payment's confirmed refund; it
// reports whether it changed anything.
func (s *Store) MarkPaymentReturned(ctx context.Context, paymentID, providerRefundID string, at time.Time) (bool, error) {
	res := s.db.WithContext(ctx).Exec(`UPDATE payments SET refund_state = ?, provider_refund_id = ?, refunded_at = ?
  WHERE payment_id = ? AND refund_state = ?`, RefundDone, providerRefundID, at, paymentID, RefundPending)
	if res.Error != nil {
		return false, fmt.Errorf("record payment refund: %w", res.Error)
	}
	return res.RowsAffected > 0, nil
}

func changed(err error) (bool, error) {
	if errors.Is(err, errStateChanged) {
		return false, nil
	}
	return err == nil, err
}
