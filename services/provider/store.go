package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"qianlang.io/services/idempotent"
)

// store is the provider's MariaDB storage.
type store struct {
	db *gorm.DB
}

type paymentRow struct {
	PaymentID     string `gorm:"primaryKey"`
	OrderID       string
	UserID        string
	Cents         int64
	RefundedCents int64
	NotifyURL     string
	State         string
	CreatedAt     time.Time
	PaidAt        *time.Time
}

func (paymentRow) TableName() string { return "payments" }

type refundRow struct {
	RefundID  string `gorm:"primaryKey"`
	PaymentID string
	OrderID   string
	Cents     int64
	CreatedAt time.Time
}

func (refundRow) TableName() string { return "refunds" }

type smsRow struct {
	SMSID     string `gorm:"column:sms_id;primaryKey"`
	UserID    string
	OrderID   string
	Kind      string
	Text      string
	CreatedAt time.Time
}

func (smsRow) TableName() string { return "sms" }

type shipmentRow struct {
	TrackingNo  string `gorm:"primaryKey"`
	OrderID     string
	Carrier     string
	Address     string
	CallbackURL string
	CreatedAt   time.Time
	DeliveredAt time.Time
}

func (shipmentRow) TableName() string { return "shipments" }

type idemRow struct {
	Endpoint  string `gorm:"primaryKey"`
	IdemKey   string `gorm:"primaryKey"`
	Answer    string
	CreatedAt time.Time
}

func (idemRow) TableName() string { return "idempotency_records" }

type faultsRow struct {
	ID        int `gorm:"primaryKey"`
	Config    string
	UpdatedAt time.Time
}

func (faultsRow) TableName() string { return "faults" }

// callbackRow is one callback to deliver: a payment notification or a
// delivery callback, POSTed to URL until it answers 2xx.
type callbackRow struct {
	ID            int64 `gorm:"primaryKey;autoIncrement"`
	Kind          string
	Ref           string
	URL           string
	Body          string
	Attempts      int
	NextAttemptAt time.Time
	Done          bool
	CreatedAt     time.Time
	DeliveredAt   *time.Time
	LastError     string
}

func (callbackRow) TableName() string { return "callbacks" }

// Callback kinds.
const (
	kindPayment  = "payment"
	kindDelivery = "delivery"
)

// errReplay aborts a transaction whose idempotency key was already used.
var errReplay = errors.New("idempotency key already used")

// transact runs fn in a transaction, again if MariaDB picked it as a
// deadlock victim or its lock wait timed out.
func (s *store) transact(ctx context.Context, fn func(tx *gorm.DB) error) error {
	var err error
	for range 5 {
		err = s.db.WithContext(ctx).Transaction(fn)
		if !retryable(err) {
			return err
		}
	}
	return err
}

func retryable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}

// once runs effect at most once per (endpoint, key). The key's record is
// inserted first in effect's transaction and given effect's answer before
// the commit, so the effect and its answer commit together. A later call
// with the key, or one racing it (it waits on the record's unique key),
// gets the stored answer instead, with replayed true. An effect that fails
// leaves no record, so the call may be made again. An empty key runs effect
// every time.
func once[T any](ctx context.Context, s *store, endpoint, key string, effect func(tx *gorm.DB) (T, error)) (ans T, replayed bool, err error) {
	err = s.transact(ctx, func(tx *gorm.DB) error {
		if key != "" {
			rec := idemRow{Endpoint: endpoint, IdemKey: key, CreatedAt: now()}
			if err := tx.Create(&rec).Error; err != nil {
				if idempotent.IsDuplicateKey(err) {
					return errReplay
				}
				return fmt.Errorf("record idempotency key: %w", err)
			}
		}
		var err error
		if ans, err = effect(tx); err != nil || key == "" {
			return err
		}
		b, err := json.Marshal(ans)
		if err != nil {
			return fmt.Errorf("encode answer: %w", err)
		}
		return tx.Model(&idemRow{}).Where("endpoint = ? AND idem_key = ?", endpoint, key).Update("answer", string(b)).Error
	})
	if errors.Is(err, errReplay) {
		ans, err = replay[T](ctx, s, endpoint, key)
		return ans, true, err
	}
	return ans, false, err
}

// replay reads the answer stored for (endpoint, key).
func replay[T any](ctx context.Context, s *store, endpoint, key string) (T, error) {
	var ans T
	var rec idemRow
	if err := s.db.WithContext(ctx).Where("endpoint = ? AND idem_key = ?", endpoint, key).Take(&rec).Error; err != nil {
		return ans, fmt.Errorf("read answer of %s %q: %w", endpoint, key, err)
	}
	if err := json.Unmarshal([]byte(rec.Answer), &ans); err != nil {
		return ans, fmt.Errorf("decode answer of %s %q: %w", endpoint, key, err)
	}
	return ans, nil
}

// createPayment inserts an open payment.
func createPayment(tx *gorm.DB, p paymentRow) error {
	if err := tx.Create(&p).Error; err != nil {
		return fmt.Errorf("insert payment: %w", err)
	}
	return nil
}

// payment reads one payment; ErrNotFound when there is none.
func payment(tx *gorm.DB, id string) (paymentRow, error) {
	var p paymentRow
	err := tx.Where("payment_id = ?", id).Take(&p).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return p, fmt.Errorf("payment %q: %w", id, ErrNotFound)
	}
	return p, err
}

// markPaid moves an open payment to PAID at paidAt. It reports false for a
// payment already paid, ErrNotFound for none.
func markPaid(tx *gorm.DB, id string, paidAt time.Time) (paymentRow, bool, error) {
	res := tx.Exec("UPDATE payments SET state = ?, paid_at = ? WHERE payment_id = ? AND state = ?", PaymentPaid, paidAt, id, PaymentOpen)
	if res.Error != nil {
		return paymentRow{}, false, fmt.Errorf("mark paid: %w", res.Error)
	}
	p, err := payment(tx, id)
	return p, res.RowsAffected == 1, err
}

// takeRefund adds cents to a paid payment's refunded amount if that stays
// within the payment, with a conditional update (two refunds racing
// serialise on the row). ErrNotFound, ErrNotPaid or ErrRefundExceeds when
// it does not.
func takeRefund(tx *gorm.DB, paymentID string, cents int64) (paymentRow, error) {
	res := tx.Exec(`UPDATE payments SET refunded_cents = refunded_cents + ?
WHERE payment_id = ? AND state = ? AND refunded_cents + ? <= cents`, cents, paymentID, PaymentPaid, cents)
	if res.Error != nil {
		return paymentRow{}, fmt.Errorf("take refund: %w", res.Error)
	}
	p, err := payment(tx, paymentID)
	switch {
	case err != nil:
		return p, err
	case res.RowsAffected == 1:
		return p, nil
	case p.State != PaymentPaid:
		return p, fmt.Errorf("payment %q is %s: %w", paymentID, p.State, ErrNotPaid)
	default:
		return p, fmt.Errorf("payment %q of %d cents, %d refunded, refund of %d: %w", paymentID, p.Cents, p.RefundedCents, cents, ErrRefundExceeds)
	}
}

func insert[T any](tx *gorm.DB, what string, row *T) error {
	if err := tx.Create(row).Error; err != nil {
		return fmt.Errorf("insert %s: %w", what, err)
	}
	return nil
}

// enqueue adds copies identical callbacks due at due (a duplicate a few
// milliseconds later, so it may overtake or race the first).
func enqueue(tx *gorm.DB, kind, ref, url string, body []byte, due time.Time, copies int) error {
	for i := range copies {
		at := due
		if i > 0 {
			at = due.Add(time.Duration(i) * 20 * time.Millisecond)
		}
		row := callbackRow{Kind: kind, Ref: ref, URL: url, Body: string(body), NextAttemptAt: at, CreatedAt: now()}
		if err := insert(tx, "callback", &row); err != nil {
			return err
		}
	}
	return nil
}

// dueCallbacks lists up to limit undelivered callbacks due at t, oldest
// first, leaving out those in exclude (being delivered).
func (s *store) dueCallbacks(ctx context.Context, t time.Time, exclude []int64, limit int) ([]callbackRow, error) {
	q := s.db.WithContext(ctx).Where("done = 0 AND next_attempt_at <= ?", t)
	if len(exclude) > 0 {
		q = q.Where("id NOT IN ?", exclude)
	}
	var rows []callbackRow
	err := q.Order("next_attempt_at, id").Limit(limit).Find(&rows).Error
	return rows, err
}

// delivered marks a callback done.
func (s *store) delivered(ctx context.Context, id int64, at time.Time) error {
	return s.db.WithContext(ctx).Exec("UPDATE callbacks SET done = 1, attempts = attempts + 1, delivered_at = ?, last_error = '' WHERE id = ?", at, id).Error
}

// failed records a failed attempt and when to try again.
func (s *store) failed(ctx context.Context, id int64, next time.Time, reason string) error {
	if len(reason) > 255 {
		reason = reason[:255]
	}
	return s.db.WithContext(ctx).Exec("UPDATE callbacks SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?", next, reason, id).Error
}

// loadFaults reads the persisted faults; the defaults when none were set.
// Keys missing from the stored config keep their defaults.
func (s *store) loadFaults(ctx context.Context) (Faults, error) {
	f := DefaultFaults()
	var row faultsRow
	err := s.db.WithContext(ctx).Where("id = 1").Take(&row).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return f, nil
	case err != nil:
		return f, fmt.Errorf("load faults: %w", err)
	}
	if err := json.Unmarshal([]byte(row.Config), &f); err != nil {
		return f, fmt.Errorf("decode faults: %w", err)
	}
	return f, nil
}

// saveFaults persists f.
func (s *store) saveFaults(ctx context.Context, f Faults) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	row := faultsRow{ID: 1, Config: string(b), UpdatedAt: now()}
	err = s.db.WithContext(ctx).Clauses(clause.OnConflict{UpdateAll: true}).Create(&row).Error
	if err != nil {
		return fmt.Errorf("save faults: %w", err)
	}
	return nil
}

// ledger reads what left for orderID, or for every order when orderID is
// empty, each list in time order.
func (s *store) ledger(ctx context.Context, orderID string) (Ledger, error) {
	db := s.db.WithContext(ctx)
	scope := func(q *gorm.DB) *gorm.DB {
		if orderID != "" {
			return q.Where("order_id = ?", orderID)
		}
		return q
	}
	var (
		payments  []paymentRow
		refunds   []refundRow
		sms       []smsRow
		shipments []shipmentRow
	)
	if err := firstErr(
		scope(db.Where("state = ?", PaymentPaid)).Order("paid_at, payment_id").Find(&payments).Error,
		scope(db.Model(&refundRow{})).Order("created_at, refund_id").Find(&refunds).Error,
		scope(db.Model(&smsRow{})).Order("created_at, sms_id").Find(&sms).Error,
		scope(db.Model(&shipmentRow{})).Order("created_at, tracking_no").Find(&shipments).Error,
	); err != nil {
		return Ledger{}, fmt.Errorf("read ledger: %w", err)
	}
	return toLedger(payments, refunds, sms, shipments), nil
}

func toLedger(payments []paymentRow, refunds []refundRow, sms []smsRow, shipments []shipmentRow) Ledger {
	l := Ledger{
		Payments:  make([]LedgerPayment, 0, len(payments)),
		Refunds:   make([]LedgerRefund, 0, len(refunds)),
		SMS:       make([]LedgerSMS, 0, len(sms)),
		Shipments: make([]LedgerShipment, 0, len(shipments)),
	}
	for _, p := range payments {
		l.Payments = append(l.Payments, LedgerPayment{PaymentID: p.PaymentID, OrderID: p.OrderID, Cents: p.Cents, At: p.PaidAt.UTC()})
	}
	for _, r := range refunds {
		l.Refunds = append(l.Refunds, LedgerRefund{RefundID: r.RefundID, PaymentID: r.PaymentID, OrderID: r.OrderID, Cents: r.Cents, At: r.CreatedAt.UTC()})
	}
	for _, m := range sms {
		l.SMS = append(l.SMS, LedgerSMS{SMSID: m.SMSID, UserID: m.UserID, OrderID: m.OrderID, Kind: m.Kind, Text: m.Text, At: m.CreatedAt.UTC()})
	}
	for _, sh := range shipments {
		l.Shipments = append(l.Shipments, LedgerShipment{OrderID: sh.OrderID, TrackingNo: sh.TrackingNo, Carrier: sh.Carrier, At: sh.CreatedAt.UTC(), DeliveredAt: sh.DeliveredAt.UTC()})
	}
	return l
}
