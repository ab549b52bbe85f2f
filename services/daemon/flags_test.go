package daemon

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Every bad flag stops the service at start with a message naming the
// flag and its value.
func TestFlagsValidate(t *testing.T) {
	good := func() Flags {
		return Flags{Listen: "127.0.0.1:0", DSN: "root@tcp(127.0.0.1:3306)/qianlang_order", NameServers: "127.0.0.1:9876",
			Secrets: "/s.json", LogLevel: "info", ShutdownTimeout: time.Second, MaxReconsume: 16}
	}
	g := good()
	require.NoError(t, g.Validate(true))
	for _, tc := range []struct {
		name    string
		breakIt func(f *Flags)
		want    string
	}{
		{"listen", func(f *Flags) { f.Listen = "nope" }, `--listen "nope"`},
		{"dsn without database", func(f *Flags) { f.DSN = "root@tcp(127.0.0.1:3306)/" }, "--dsn"},
		{"namesrv", func(f *Flags) { f.NameServers = "h" }, `--namesrv "h"`},
		{"secrets", func(f *Flags) { f.Secrets = "" }, "--secrets"},
		{"log level", func(f *Flags) { f.LogLevel = "loud" }, `--log-level "loud"`},
		{"shutdown timeout", func(f *Flags) { f.ShutdownTimeout = 0 }, "--shutdown-timeout 0s"},
		{"max reconsume", func(f *Flags) { f.MaxReconsume = 0 }, "--max-reconsume 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := good()
			tc.breakIt(&f)
			require.ErrorContains(t, f.Validate(true), tc.want)
		})
	}
	// A service without the queue takes neither --namesrv nor --max-reconsume.
	f := good()
	f.NameServers, f.MaxReconsume = "", 0
	require.NoError(t, f.Validate(false))
}

func TestDSNIsRedactedInErrors(t *testing.T) {
	f := Flags{Listen: "127.0.0.1:0", DSN: "root:hunter2@tcp(127.0.0.1:3306)/", Secrets: "/s", LogLevel: "info", ShutdownTimeout: time.Second}
	err := f.Validate(false)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
}
