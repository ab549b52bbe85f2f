package member

import (
	"testing"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/replica"
)

func TestParsePeers(t *testing.T) {
	peers, err := ParsePeers("n2-127.0.0.1:40913; n0-127.0.0.1:40911;n1-127.0.0.1:40912;")
	require.NoError(t, err)
	require.Equal(t, []Peer{
		{Name: "n0", ID: 1, Addr: "127.0.0.1:40911"},
		{Name: "n1", ID: 2, Addr: "127.0.0.1:40912"},
		{Name: "n2", ID: 3, Addr: "127.0.0.1:40913"},
	}, peers)
	for _, bad := range []string{"x0-127.0.0.1:1", "n-127.0.0.1:1", "n0-localhost:1", "n0-127.0.0.1:1;n0-127.0.0.1:2", "n0"} {
		_, err := ParsePeers(bad)
		require.Error(t, err, bad)
	}
}

// The leader registers as brokerId 0, the followers as 1, 2… in member
// order without the leader.
func TestBrokerIDFollowsTheRole(t *testing.T) {
	peers, err := ParsePeers("n0-127.0.0.1:40911;n1-127.0.0.1:40912;n2-127.0.0.1:40913")
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		self   int // index in peers
		status replica.Status
		want   int64
	}{
		{"leader", 1, replica.Status{Role: replica.Leader, Leader: 2}, 0},
		{"first follower", 0, replica.Status{Role: replica.Follower, Leader: 2}, 1},
		{"second follower", 2, replica.Status{Role: replica.Follower, Leader: 2}, 2},
		{"follower of the first", 1, replica.Status{Role: replica.Follower, Leader: 1}, 1},
		{"no leader known", 0, replica.Status{Role: replica.Follower}, -1},
		{"stopped", 0, replica.Status{Role: replica.Stopped, Leader: 2}, -2},
	} {
		m := &Member{cfg: Config{Self: peers[tc.self], Peers: peers}}
		require.Equal(t, tc.want, m.idFor(tc.status), tc.name)
	}
}
