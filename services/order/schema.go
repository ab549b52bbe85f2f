package order

import (
	"qianlang.io/services/idempotent"
	"qianlang.io/services/migrate"
	"qianlang.io/services/txmsg"
)

// Migrations are the order database's schema versions.
var Migrations = []migrate.Migration{
	{Version: 1, Name: "foundation", Statements: []string{idempotent.Schema, txmsg.Schema}},
	{Version: 2, Name: "orders", Statements: []string{
		// One row per order; the state machine of domain.go. The unique
		// (user_id, idem_key) makes a placement idempotent per user.
		`CREATE TABLE IF NOT EXISTS orders (
  order_id VARCHAR(64) NOT NULL PRIMARY KEY,
  user_id VARCHAR(64) NOT NULL,
  idem_key VARCHAR(128) NOT NULL,
  state VARCHAR(24) NOT NULL,
  total_cents BIGINT NOT NULL,
  discount_cents BIGINT NOT NULL,
  pay_cents BIGINT NOT NULL,
  coupon_id VARCHAR(128) NOT NULL DEFAULT '',
  addr_name VARCHAR(255) NOT NULL,
  addr_phone VARCHAR(255) NOT NULL,
  addr_line VARCHAR(255) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  expires_at DATETIME(6) NOT NULL,
  opened_payment_id VARCHAR(128) NOT NULL DEFAULT '',
  payment_id VARCHAR(128) NOT NULL DEFAULT '',
  paid_at DATETIME(6) NULL,
  closed_at DATETIME(6) NULL,
  close_reason VARCHAR(16) NOT NULL DEFAULT '',
  shipping_started TINYINT(1) NOT NULL DEFAULT 0,
  shipment_state VARCHAR(16) NOT NULL DEFAULT '',
  carrier VARCHAR(64) NOT NULL DEFAULT '',
  tracking_no VARCHAR(128) NOT NULL DEFAULT '',
  shipped_at DATETIME(6) NULL,
  delivered_at DATETIME(6) NULL,
  refund_id VARCHAR(64) NOT NULL DEFAULT '',
  refund_state VARCHAR(16) NOT NULL DEFAULT '',
  provider_refund_id VARCHAR(128) NOT NULL DEFAULT '',
  refund_requested_at DATETIME(6) NULL,
  refunded_at DATETIME(6) NULL,
  updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  UNIQUE KEY uk_orders_user_idem (user_id, idem_key),
  KEY idx_orders_user_created (user_id, created_at, order_id)
) ENGINE=InnoDB`,
		// An order's lines with price and cost at the time of the lock.
		`CREATE TABLE IF NOT EXISTS order_lines (
  order_id VARCHAR(64) NOT NULL,
  line_no INT NOT NULL,
  sku_id VARCHAR(64) NOT NULL,
  qty INT NOT NULL,
  price_cents BIGINT NOT NULL,
  cost_cents BIGINT NOT NULL,
  PRIMARY KEY (order_id, line_no)
) ENGINE=InnoDB`,
		// Who decided an order id's fate first: the placement that
		// inserted the order (PLACED) or the timer that found no order and
		// released what it had reserved (ABANDONED). The primary key
		// serialises the two, so an order is never created after its
		// reservations were released.
		`CREATE TABLE IF NOT EXISTS order_claims (
  order_id VARCHAR(64) NOT NULL PRIMARY KEY,
  outcome VARCHAR(16) NOT NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB`,
		// Every payment the provider notified, once: the one that paid
		// its order (ACCEPTED) or one returned (RETURNED) with its refund.
		`CREATE TABLE IF NOT EXISTS payments (
  payment_id VARCHAR(128) NOT NULL PRIMARY KEY,
  order_id VARCHAR(64) NOT NULL,
  cents BIGINT NOT NULL,
  disposition VARCHAR(16) NOT NULL,
  refund_id VARCHAR(160) NOT NULL DEFAULT '',
  refund_state VARCHAR(16) NOT NULL DEFAULT '',
  provider_refund_id VARCHAR(128) NOT NULL DEFAULT '',
  received_at DATETIME(6) NOT NULL,
  refunded_at DATETIME(6) NULL,
  KEY idx_payments_order (order_id)
) ENGINE=InnoDB`,
	}},
}
