package provider

import "qianlang.io/services/migrate"

// Migrations are the provider's schema versions.
var Migrations = []migrate.Migration{{
	Version: 1,
	Name:    "payments, refunds, sms, shipments, idempotency records, faults, callback outbox",
	Statements: []string{
		`CREATE TABLE IF NOT EXISTS payments (
  payment_id VARCHAR(64) NOT NULL PRIMARY KEY,
  order_id VARCHAR(128) NOT NULL,
  user_id VARCHAR(128) NOT NULL,
  cents BIGINT NOT NULL,
  refunded_cents BIGINT NOT NULL DEFAULT 0,
  notify_url VARCHAR(2048) NOT NULL,
  state VARCHAR(16) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  paid_at DATETIME(6) NULL,
  KEY payments_order (order_id)
) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS refunds (
  refund_id VARCHAR(64) NOT NULL PRIMARY KEY,
  payment_id VARCHAR(64) NOT NULL,
  order_id VARCHAR(128) NOT NULL,
  cents BIGINT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  KEY refunds_order (order_id),
  KEY refunds_payment (payment_id)
) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS sms (
  sms_id VARCHAR(64) NOT NULL PRIMARY KEY,
  user_id VARCHAR(128) NOT NULL,
  order_id VARCHAR(128) NOT NULL,
  kind VARCHAR(64) NOT NULL,
  text TEXT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  KEY sms_order (order_id)
) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS shipments (
  tracking_no VARCHAR(64) NOT NULL PRIMARY KEY,
  order_id VARCHAR(128) NOT NULL,
  carrier VARCHAR(64) NOT NULL,
  address TEXT NOT NULL,
  callback_url VARCHAR(2048) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  delivered_at DATETIME(6) NOT NULL,
  KEY shipments_order (order_id)
) ENGINE=InnoDB`,
		// One row per (endpoint, Idempotency-Key): inserted first in the
		// transaction of the effect, so a second call with the key waits on
		// the row and then finds the first call's answer.
		`CREATE TABLE IF NOT EXISTS idempotency_records (
  endpoint VARCHAR(32) NOT NULL,
  idem_key VARCHAR(191) NOT NULL,
  answer MEDIUMTEXT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  PRIMARY KEY (endpoint, idem_key)
) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS faults (
  id TINYINT NOT NULL PRIMARY KEY,
  config TEXT NOT NULL,
  updated_at DATETIME(6) NOT NULL
) ENGINE=InnoDB`,
		// The durable outbox of callbacks (payment notifications and
		// delivery callbacks), written in the transaction of what they report.
		`CREATE TABLE IF NOT EXISTS callbacks (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  kind VARCHAR(16) NOT NULL,
  ref VARCHAR(128) NOT NULL,
  url VARCHAR(2048) NOT NULL,
  body TEXT NOT NULL,
  attempts INT NOT NULL DEFAULT 0,
  next_attempt_at DATETIME(6) NOT NULL,
  done TINYINT(1) NOT NULL DEFAULT 0,
  created_at DATETIME(6) NOT NULL,
  delivered_at DATETIME(6) NULL,
  last_error VARCHAR(255) NOT NULL DEFAULT '',
  KEY callbacks_due (done, next_attempt_at),
  KEY callbacks_ref (ref)
) ENGINE=InnoDB`,
	},
}}
