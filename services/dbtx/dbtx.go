// Package dbtx runs a service's database transactions at READ COMMITTED
// and runs one again when MariaDB rolled it back for a deadlock or a lock
// wait timeout: such a transaction changed nothing and may simply run
// again. At READ COMMITTED no transaction holds gap locks; the services'
// writes are conditional updates of rows found by key, or inserts that a
// unique key makes safe.
package dbtx

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/go-sql-driver/mysql"
	"gorm.io/gorm"
)

// Attempts is how often Run tries a transaction at most.
const Attempts = 5

// ReadCommitted are the options of every transaction Run starts.
var ReadCommitted = &sql.TxOptions{Isolation: sql.LevelReadCommitted}

// Run runs fn in a transaction, again (backing off 5 ms more each time)
// when it lost a deadlock or a lock wait, or failed with an error that is
// one of also (a race the caller detected itself).
func Run(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error, also ...error) error {
	for attempt := 1; ; attempt++ {
		err := db.WithContext(ctx).Transaction(fn, ReadCommitted)
		if err == nil || attempt == Attempts || !Retryable(err, also...) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
		}
	}
}

// Retryable reports a deadlock (1213), a lock wait timeout (1205) or one
// of also.
func Retryable(err error, also ...error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205) {
		return true
	}
	for _, a := range also {
		if errors.Is(err, a) {
			return true
		}
	}
	return false
}
