package push_test

import (
	"os"
	"testing"

	"qianlang.io/services/dbtest"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }
