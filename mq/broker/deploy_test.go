package broker

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The configs shipped in deploy/ load and validate, and the replicated
// layout's groups are consistent: each group's members share one peer list
// and name distinct members; the layout's brokers use distinct client
// ports.
func TestDeployConfigsValidate(t *testing.T) {
	files, err := filepath.Glob("../../deploy/*.conf")
	require.NoError(t, err)
	group, err := filepath.Glob("../../deploy/group/broker-*.conf")
	require.NoError(t, err)
	require.Len(t, group, 6)
	ports := map[int]string{}
	peers := map[string]string{}
	selves := map[string]bool{}
	for _, f := range append(files, group...) {
		if filepath.Base(f) == "namesrv.conf" {
			continue
		}
		c, err := LoadConfig(f)
		require.NoError(t, err, f)
		require.NoError(t, c.Validate(), f)
		if c.EnableDLegerCommitLog {
			require.Empty(t, ports[c.ListenPort], "%s and %s share listenPort %d", f, ports[c.ListenPort], c.ListenPort)
			ports[c.ListenPort] = f
			if p, ok := peers[c.DLegerGroup]; ok {
				require.Equal(t, p, c.DLegerPeers, f)
			}
			peers[c.DLegerGroup] = c.DLegerPeers
			key := c.DLegerGroup + "/" + c.DLegerSelfID
			require.False(t, selves[key], "%s repeats member %s", f, key)
			selves[key] = true
		}
	}
	require.Len(t, peers, 2)
}
