package inventory

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"qianlang.io/services/dbtx"
	"qianlang.io/services/events"
	"qianlang.io/services/idempotent"
)

// The schema. Every counter is guarded twice: the updates are conditional
// (never below zero), and CHECK constraints refuse a row whose counters are
// negative or do not add up to the units ever stocked (invariant 1).
const (
	skusTable = `CREATE TABLE IF NOT EXISTS skus (
  sku_id VARCHAR(64) NOT NULL PRIMARY KEY,
  name VARCHAR(255) NOT NULL,
  price_cents BIGINT NOT NULL,
  cost_cents BIGINT NOT NULL,
  available BIGINT NOT NULL DEFAULT 0,
  locked BIGINT NOT NULL DEFAULT 0,
  sold BIGINT NOT NULL DEFAULT 0,
  stocked BIGINT NOT NULL DEFAULT 0,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  CONSTRAINT skus_price CHECK (price_cents >= 0 AND cost_cents >= 0),
  CONSTRAINT skus_nonnegative CHECK (available >= 0 AND locked >= 0 AND sold >= 0),
  CONSTRAINT skus_conserved CHECK (available + locked + sold = stocked)
) ENGINE=InnoDB`

	// stock_orders holds one row per order inventory heard of: its state,
	// and the answer its lock request got (RELEASED for a tombstone), so a
	// repeated request gets the same answer.
	stockOrdersTable = `CREATE TABLE IF NOT EXISTS stock_orders (
  order_id VARCHAR(128) NOT NULL PRIMARY KEY,
  state VARCHAR(16) NOT NULL,
  result VARCHAR(16) NOT NULL,
  failed_sku VARCHAR(64) NOT NULL DEFAULT '',
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB`

	// stock_order_lines are a locked order's lines with the price and cost
	// at the time of the lock.
	stockOrderLinesTable = `CREATE TABLE IF NOT EXISTS stock_order_lines (
  order_id VARCHAR(128) NOT NULL,
  line_no INT NOT NULL,
  sku_id VARCHAR(64) NOT NULL,
  qty INT NOT NULL,
  price_cents BIGINT NOT NULL,
  cost_cents BIGINT NOT NULL,
  PRIMARY KEY (order_id, line_no),
  CONSTRAINT stock_order_lines_qty CHECK (qty > 0)
) ENGINE=InnoDB`
)

// ErrNotFound is returned for a SKU that does not exist.
var ErrNotFound = errors.New("not found")

// ErrNotLocked is returned when an order's payment arrives and inventory
// never locked its stock: there is nothing to sell.
var ErrNotLocked = errors.New("no stock locked for the order")

var (
	errOrderExists = errors.New("order already has a lock row")
	errRace        = errors.New("concurrent change, try again")
)

// SKU is one SKU's row.
type SKU struct {
	SKUID      string `gorm:"column:sku_id"`
	Name       string `gorm:"column:name"`
	PriceCents int64  `gorm:"column:price_cents"`
	CostCents  int64  `gorm:"column:cost_cents"`
	Available  int64  `gorm:"column:available"`
	Locked     int64  `gorm:"column:locked"`
	Sold       int64  `gorm:"column:sold"`
	Stocked    int64  `gorm:"column:stocked"`
}

// Store keeps SKUs and the orders' locks in the service's database.
type Store struct{ db *gorm.DB }

// NewStore returns a Store on db.
func NewStore(db *gorm.DB) *Store { return &Store{db: db} }

// PutSKU creates the SKU or sets its name, price and cost, and adds
// c.Stock units to it.
func (s *Store) PutSKU(ctx context.Context, id string, c SKUChange) (SKU, error) {
	var sku SKU
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		err := tx.Exec(`INSERT INTO skus (sku_id, name, price_cents, cost_cents, available, stocked)
VALUES (?, ?, ?, ?, ?, ?)
ON DUPLICATE KEY UPDATE name = VALUES(name), price_cents = VALUES(price_cents), cost_cents = VALUES(cost_cents),
  available = available + VALUES(available), stocked = stocked + VALUES(stocked)`,
			id, c.Name, c.PriceCents, c.CostCents, c.Stock, c.Stock).Error
		if err != nil {
			return err
		}
		return tx.Table("skus").Where("sku_id = ?", id).Take(&sku).Error
	})
	if err != nil {
		return sku, fmt.Errorf("put sku %s: %w", id, err)
	}
	return sku, nil
}

// SKU returns a SKU, or ErrNotFound.
func (s *Store) SKU(ctx context.Context, id string) (SKU, error) {
	var sku SKU
	err := s.db.WithContext(ctx).Table("skus").Where("sku_id = ?", id).Take(&sku).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return sku, ErrNotFound
	}
	if err != nil {
		return sku, fmt.Errorf("sku %s: %w", id, err)
	}
	return sku, nil
}

// Lock locks an order's stock, all lines or none, and answers as the
// first request for the order was answered when there was one.
func (s *Store) Lock(ctx context.Context, orderID string, plan LockPlan) (events.StockLockReply, error) {
	var reply events.StockLockReply
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		err := tx.Exec("INSERT INTO stock_orders (order_id, state, result) VALUES (?, ?, ?)",
			orderID, StateLocked, events.StockLocked).Error
		if idempotent.IsDuplicateKey(err) {
			return errOrderExists
		}
		if err != nil {
			return err
		}
		reply, err = lockUnits(tx, orderID, plan)
		return err
	})
	if errors.Is(err, errOrderExists) {
		return s.LockAnswer(ctx, orderID)
	}
	if err != nil {
		return reply, fmt.Errorf("lock %s: %w", orderID, err)
	}
	return reply, nil
}

// lockUnits takes the plan's units from available to locked, each with a
// conditional update, and records the lines; when a SKU is unknown or
// short, nothing is locked and the order's row records the failure.
func lockUnits(tx *gorm.DB, orderID string, plan LockPlan) (events.StockLockReply, error) {
	ids := make([]string, len(plan.PerSKU))
	for i, q := range plan.PerSKU {
		ids[i] = q.SKUID
	}
	var known []string
	if err := tx.Raw("SELECT sku_id FROM skus WHERE sku_id IN ?", ids).Scan(&known).Error; err != nil {
		return events.StockLockReply{}, err
	}
	for _, id := range ids {
		if !contains(known, id) {
			return failLock(tx, orderID, events.StockUnknownSKU, id)
		}
	}
	if err := tx.SavePoint("units").Error; err != nil {
		return events.StockLockReply{}, err
	}
	for _, q := range plan.PerSKU {
		res := tx.Exec("UPDATE skus SET available = available - ?, locked = locked + ? WHERE sku_id = ? AND available >= ?",
			q.Qty, q.Qty, q.SKUID, q.Qty)
		if res.Error != nil {
			return events.StockLockReply{}, res.Error
		}
		if res.RowsAffected == 0 {
			if err := tx.RollbackTo("units").Error; err != nil {
				return events.StockLockReply{}, err
			}
			return failLock(tx, orderID, events.StockOutOfStock, q.SKUID)
		}
	}
	// Read after the updates: the rows are locked, so this is the price
	// the units were locked at.
	var skus []SKU
	if err := tx.Table("skus").Where("sku_id IN ?", ids).Find(&skus).Error; err != nil {
		return events.StockLockReply{}, err
	}
	items := priceLines(plan.Lines, skus)
	if err := insertLines(tx, orderID, items); err != nil {
		return events.StockLockReply{}, err
	}
	return events.StockLockReply{Result: events.StockLocked, Items: items}, nil
}

func contains(ids []string, id string) bool {
	for _, k := range ids {
		if k == id {
			return true
		}
	}
	return false
}

func priceLines(lines []events.Line, skus []SKU) []events.Line {
	by := make(map[string]SKU, len(skus))
	for _, s := range skus {
		by[s.SKUID] = s
	}
	out := make([]events.Line, len(lines))
	for i, l := range lines {
		s := by[l.SKUID]
		out[i] = events.Line{SKUID: l.SKUID, Qty: l.Qty, PriceCents: s.PriceCents, CostCents: s.CostCents}
	}
	return out
}

func insertLines(tx *gorm.DB, orderID string, items []events.Line) error {
	var sb strings.Builder
	sb.WriteString("INSERT INTO stock_order_lines (order_id, line_no, sku_id, qty, price_cents, cost_cents) VALUES ")
	args := make([]any, 0, 6*len(items))
	for i, it := range items {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(?, ?, ?, ?, ?, ?)")
		args = append(args, orderID, i, it.SKUID, it.Qty, it.PriceCents, it.CostCents)
	}
	return tx.Exec(sb.String(), args...).Error
}

func failLock(tx *gorm.DB, orderID, result, skuID string) (events.StockLockReply, error) {
	err := tx.Exec("UPDATE stock_orders SET state = ?, result = ?, failed_sku = ? WHERE order_id = ?",
		StateFailed, result, skuID, orderID).Error
	return events.StockLockReply{Result: result, SKUID: skuID}, err
}

type orderRow struct {
	State     string `gorm:"column:state"`
	Result    string `gorm:"column:result"`
	FailedSKU string `gorm:"column:failed_sku"`
}

// LockAnswer returns the answer an order's lock request got.
func (s *Store) LockAnswer(ctx context.Context, orderID string) (events.StockLockReply, error) {
	db := s.db.WithContext(ctx)
	var rows []orderRow
	if err := db.Raw("SELECT state, result, failed_sku FROM stock_orders WHERE order_id = ?", orderID).Scan(&rows).Error; err != nil {
		return events.StockLockReply{}, fmt.Errorf("lock answer %s: %w", orderID, err)
	}
	if len(rows) == 0 {
		return events.StockLockReply{}, fmt.Errorf("lock answer %s: %w", orderID, ErrNotFound)
	}
	if rows[0].Result != events.StockLocked {
		return events.StockLockReply{Result: rows[0].Result, SKUID: rows[0].FailedSKU}, nil
	}
	items, err := orderLines(db, orderID)
	if err != nil {
		return events.StockLockReply{}, fmt.Errorf("lock answer %s: %w", orderID, err)
	}
	return events.StockLockReply{Result: events.StockLocked, Items: items}, nil
}

func orderLines(db *gorm.DB, orderID string) ([]events.Line, error) {
	var lines []struct {
		SKUID      string `gorm:"column:sku_id"`
		Qty        int    `gorm:"column:qty"`
		PriceCents int64  `gorm:"column:price_cents"`
		CostCents  int64  `gorm:"column:cost_cents"`
	}
	err := db.Raw("SELECT sku_id, qty, price_cents, cost_cents FROM stock_order_lines WHERE order_id = ? ORDER BY line_no", orderID).
		Scan(&lines).Error
	out := make([]events.Line, len(lines))
	for i, l := range lines {
		out[i] = events.Line{SKUID: l.SKUID, Qty: l.Qty, PriceCents: l.PriceCents, CostCents: l.CostCents}
	}
	return out, err
}

// OrderState returns the stock state of an order ("" when inventory never
// heard of it).
func (s *Store) OrderState(ctx context.Context, orderID string) (State, error) {
	var states []string
	if err := s.db.WithContext(ctx).Raw("SELECT state FROM stock_orders WHERE order_id = ?", orderID).Scan(&states).Error; err != nil {
		return "", fmt.Errorf("order state %s: %w", orderID, err)
	}
	if len(states) == 0 {
		return "", nil
	}
	return State(states[0]), nil
}

// Apply moves an order's stock on ev (see Transition) in one transaction
// with the units of its lines. It reports whether anything changed: a
// redelivered or overtaken event changes nothing.
func (s *Store) Apply(ctx context.Context, orderID string, ev Event) (bool, error) {
	var applied bool
	err := s.inTx(ctx, func(tx *gorm.DB) error {
		applied = false
		var states []string
		if err := tx.Raw("SELECT state FROM stock_orders WHERE order_id = ? FOR UPDATE", orderID).Scan(&states).Error; err != nil {
			return err
		}
		if len(states) == 0 {
			return tombstone(tx, orderID, ev, &applied)
		}
		to, move, ok := Transition(State(states[0]), ev)
		if !ok {
			return nil
		}
		if err := tx.Exec("UPDATE stock_orders SET state = ? WHERE order_id = ?", to, orderID).Error; err != nil {
			return err
		}
		lines, err := orderLines(tx, orderID)
		if err != nil {
			return err
		}
		for _, q := range PerSKU(lines) {
			if err := moveUnits(tx, move, q); err != nil {
				return err
			}
		}
		applied = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", ev, orderID, err)
	}
	return applied, nil
}

func tombstone(tx *gorm.DB, orderID string, ev Event, applied *bool) error {
	st, ok := Tombstone(ev)
	if !ok {
		return ErrNotLocked
	}
	err := tx.Exec("INSERT INTO stock_orders (order_id, state, result) VALUES (?, ?, ?)", orderID, st, events.StockReleased).Error
	if idempotent.IsDuplicateKey(err) {
		return errRace
	}
	*applied = err == nil
	return err
}

func moveUnits(tx *gorm.DB, m Move, q SKUQty) error {
	var set, guard string
	switch m {
	case MoveSell:
		set, guard = "locked = locked - ?, sold = sold + ?", "locked >= ?"
	case MoveRelease:
		set, guard = "locked = locked - ?, available = available + ?", "locked >= ?"
	case MoveRestore:
		set, guard = "sold = sold - ?, available = available + ?", "sold >= ?"
	default:
		return nil
	}
	res := tx.Exec("UPDATE skus SET "+set+" WHERE sku_id = ? AND "+guard, q.Qty, q.Qty, q.SKUID, q.Qty)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("sku %s: moving %d units would make a counter negative", q.SKUID, q.Qty)
	}
	return nil
}

// inTx runs fn in a transaction (dbtx.Run), again when it lost a deadlock
// or a race.
func (s *Store) inTx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return dbtx.Run(ctx, s.db, fn, errRace)
}
