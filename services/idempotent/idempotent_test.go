package idempotent_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"qianlang.io/services/daemon"
	"qianlang.io/services/dbtest"
	"qianlang.io/services/idempotent"
	"qianlang.io/services/migrate"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

func open(t *testing.T) *gorm.DB {
	ctx := context.Background()
	db, err := daemon.OpenDB(ctx, dbtest.DSN(t, "idem"))
	require.NoError(t, err)
	require.NoError(t, migrate.Apply(ctx, db, []migrate.Migration{{Version: 1, Name: "init", Statements: []string{
		idempotent.Schema, "CREATE TABLE counter (id INT PRIMARY KEY, n INT NOT NULL)", "INSERT INTO counter VALUES (1, 0)"}}}))
	return db
}

func count(t *testing.T, db *gorm.DB) int {
	var n int
	require.NoError(t, db.Raw("SELECT n FROM counter WHERE id = 1").Scan(&n).Error)
	return n
}

func incr(tx *gorm.DB) error { return tx.Exec("UPDATE counter SET n = n + 1 WHERE id = 1").Error }

// Ten concurrent deliveries of one message apply it once; another key
// applies again; a failing effect records nothing, so its redelivery
// applies.
func TestApplyOnce(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	applied := make(chan bool, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := idempotent.Apply(ctx, db, "points", "paid:o1", incr)
			require.NoError(t, err)
			applied <- ok
		}()
	}
	wg.Wait()
	close(applied)
	n := 0
	for ok := range applied {
		if ok {
			n++
		}
	}
	require.Equal(t, 1, n)
	require.Equal(t, 1, count(t, db))

	ok, err := idempotent.Apply(ctx, db, "push", "paid:o1", incr)
	require.NoError(t, err)
	require.True(t, ok, "another consumer applies the same key")

	boom := errors.New("boom")
	_, err = idempotent.Apply(ctx, db, "points", "paid:o2", func(tx *gorm.DB) error {
		require.NoError(t, incr(tx))
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.Equal(t, 2, count(t, db))
	ok, err = idempotent.Apply(ctx, db, "points", "paid:o2", incr)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 3, count(t, db))
}
