package dbtest_test

import (
	"database/sql"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"qianlang.io/services/dbtest"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

func TestServerHasDurableBinlogSettings(t *testing.T) {
	db, err := sql.Open("mysql", dbtest.DSN(t, "probe"))
	require.NoError(t, err)
	defer db.Close()
	var format, image string
	var syncBinlog, flush int
	require.NoError(t, db.QueryRow("SELECT @@binlog_format, @@binlog_row_image, @@sync_binlog, @@innodb_flush_log_at_trx_commit").Scan(&format, &image, &syncBinlog, &flush))
	require.Equal(t, "ROW", format)
	require.Equal(t, "FULL", image)
	require.Equal(t, 1, syncBinlog)
	require.Equal(t, 1, flush)
}
