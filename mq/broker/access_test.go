package broker

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/acl"
	"qianlang.io/mq/remoting"
)

func TestACLFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain_acl.yml")
	write := func(body string, at time.Time) {
		require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
		require.NoError(t, os.Chtimes(path, at, at))
	}
	t0 := time.Now().Add(-time.Hour)
	write("accounts:\n  - accessKey: first-key\n    secretKey: first-secret\n", t0)
	f, err := loadACL(&Config{AclEnable: true, AclConfigFile: path})
	require.NoError(t, err)
	require.Contains(t, f.cur.Load().Accounts, "first-key")

	changed, err := f.reload()
	require.NoError(t, err)
	require.False(t, changed, "an unchanged file is not read again")

	write("accounts:\n  - accessKey: second-key\n    secretKey: second-secret\n", t0.Add(time.Minute))
	changed, err = f.reload()
	require.NoError(t, err)
	require.True(t, changed)
	require.Contains(t, f.cur.Load().Accounts, "second-key")
	require.NotContains(t, f.cur.Load().Accounts, "first-key")

	write("accounts:\n  - accessKey: x\n", t0.Add(2*time.Minute))
	_, err = f.reload()
	require.ErrorIs(t, err, acl.ErrConfig)
	require.ErrorContains(t, err, "aclConfigFile="+path)
	require.Contains(t, f.cur.Load().Accounts, "second-key", "a bad file leaves the accounts in force")

	_, err = loadACL(&Config{AclEnable: true, AclConfigFile: filepath.Join(t.TempDir(), "missing.yml")})
	require.ErrorContains(t, err, "aclConfigFile=")
}

func TestAccessNeed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		req    *remoting.Command
		admin  bool
		topics map[string]acl.Perm
		groups map[string]acl.Perm
	}{
		{"send", remoting.NewRequest(remoting.SendMessage, remoting.Fields{{Key: "topic", Value: "T"}}, nil), false, map[string]acl.Perm{"T": acl.Pub}, map[string]acl.Perm{}},
		{"batch send (short keys)", remoting.NewRequest(remoting.SendBatchMessage, remoting.Fields{{Key: "b", Value: "T"}}, nil), false, map[string]acl.Perm{"T": acl.Pub}, map[string]acl.Perm{}},
		{"pull", remoting.NewRequest(remoting.PullMessage, remoting.Fields{{Key: "topic", Value: "T"}, {Key: "consumerGroup", Value: "g"}}, nil), false, map[string]acl.Perm{"T": acl.Sub}, map[string]acl.Perm{"g": acl.Sub}},
		{"pull of a retry topic needs the group", remoting.NewRequest(remoting.PullMessage, remoting.Fields{{Key: "topic", Value: "%RETRY%g"}, {Key: "consumerGroup", Value: "g"}}, nil), false, map[string]acl.Perm{}, map[string]acl.Perm{"g": acl.Sub}},
		{"send back", remoting.NewRequest(remoting.ConsumerSendMsgBack, remoting.Fields{{Key: "group", Value: "g"}}, nil), false, map[string]acl.Perm{}, map[string]acl.Perm{"g": acl.Sub}},
		{"create topic", remoting.NewRequest(remoting.UpdateAndCreateTopic, remoting.Fields{{Key: "topic", Value: "T"}}, nil), true, map[string]acl.Perm{}, map[string]acl.Perm{}},
		{"reset offsets", remoting.NewRequest(remoting.InvokeBrokerToResetOffset, nil, nil), true, map[string]acl.Perm{}, map[string]acl.Perm{}},
	} {
		need, err := accessNeed(tc.req)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.admin, need.Admin, tc.name)
		require.Equal(t, tc.topics, need.Topics, tc.name)
		require.Equal(t, tc.groups, need.Groups, tc.name)
	}
	_, err := accessNeed(remoting.NewRequest(remoting.HeartBeat, nil, []byte("{")))
	require.Error(t, err, "an undecodable heartbeat is refused, not let through")
}
