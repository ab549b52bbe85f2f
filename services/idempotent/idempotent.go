// Package idempotent applies a consumed message's effect at most once.
//
// The queue delivers at least once and third parties notify more than
// once, so every consumer records what it applied: a row (consumer, key)
// inserted in the same database transaction as the effect. A redelivery
// finds the row, its transaction rolls back, and nothing happens twice; two
// deliveries racing serialise on the row's key.
package idempotent

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
)

// Schema creates the table of applied messages; services list it in their
// first migration.
const Schema = `CREATE TABLE IF NOT EXISTS applied_messages (
  consumer VARCHAR(96) NOT NULL,
  msg_key VARCHAR(191) NOT NULL,
  applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (consumer, msg_key)
) ENGINE=InnoDB`

var errDuplicate = errors.New("already applied")

// Apply runs fn in a transaction that also records (consumer, key), unless
// that record exists. It reports whether fn ran and committed.
func Apply(ctx context.Context, db *gorm.DB, consumer, key string, fn func(tx *gorm.DB) error) (bool, error) {
	if key == "" {
		return false, fmt.Errorf("idempotent: %s: empty key", consumer)
	}
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("INSERT INTO applied_messages (consumer, msg_key) VALUES (?, ?)", consumer, key).Error; err != nil {
			if IsDuplicateKey(err) {
				return errDuplicate
			}
			return err
		}
		return fn(tx)
	})
	switch {
	case errors.Is(err, errDuplicate):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("idempotent: %s %s: %w", consumer, key, err)
	}
	return true, nil
}

// IsDuplicateKey reports whether err is MariaDB's duplicate-key error (1062).
func IsDuplicateKey(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062
}
