package namesrv

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
)

func startNamesrv(t *testing.T, mod func(*Options)) *Server {
	t.Helper()
	o := DefaultOptions()
	o.ListenPort = 0
	o.BindAddress = "127.0.0.1"
	if mod != nil {
		mod(&o)
	}
	s, err := New(o)
	require.NoError(t, err)
	require.NoError(t, s.Start())
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func registerReq(name, addr string, id int64, topics ...string) *remoting.Command {
	table := map[string]protocol.TopicConfig{}
	for _, tp := range topics {
		table[tp] = protocol.TopicConfig{TopicName: tp, ReadQueueNums: 4, WriteQueueNums: 4, Perm: 6, TopicFilterType: "SINGLE_TAG"}
	}
	body := protocol.Encode(protocol.RegisterBrokerBody{TopicConfigSerializeWrapper: protocol.TopicConfigWrapper{TopicConfigTable: table}, FilterServerList: []string{}})
	return remoting.NewRequest(remoting.RegisterBroker, remoting.Fields{
		{Key: "brokerName", Value: name}, {Key: "brokerAddr", Value: addr}, {Key: "clusterName", Value: "DefaultCluster"},
		{Key: "haServerAddr", Value: addr}, {Key: "brokerId", Value: strconv.FormatInt(id, 10)}, {Key: "compressed", Value: "false"}, {Key: "bodyCrc32", Value: "0"},
	}, body)
}

func invoke(t *testing.T, c *remoting.Client, addr string, req *remoting.Command) *remoting.Command {
	t.Helper()
	resp, err := c.InvokeTimeout(addr, req, 3*time.Second)
	require.NoError(t, err)
	return resp
}

func routeOf(t *testing.T, c *remoting.Client, addr, topic string) (*remoting.Command, protocol.TopicRouteData) {
	t.Helper()
	resp := invoke(t, c, addr, remoting.NewRequest(remoting.GetRouteInfoByTopic, remoting.Fields{{Key: "topic", Value: topic}}, nil))
	var rd protocol.TopicRouteData
	if resp.Code == remoting.Success {
		require.NoError(t, json.Unmarshal(resp.Body, &rd))
	}
	return resp, rd
}

func TestNamesrvRouteAsTheGoClientParsesIt(t *testing.T) {
	s := startNamesrv(t, nil)
	c := remoting.NewClient(remoting.ClientOptions{})
	defer c.Close()
	require.Equal(t, int32(0), invoke(t, c, s.Addr(), registerReq("broker-b", "127.0.0.1:10921", 0, "T")).Code)
	require.Equal(t, int32(0), invoke(t, c, s.Addr(), registerReq("broker-a", "127.0.0.1:10911", 0, "T", "U")).Code)
	require.Equal(t, int32(0), invoke(t, c, s.Addr(), registerReq("broker-a", "127.0.0.1:10912", 1)).Code)

	resp, rd := routeOf(t, c, s.Addr(), "T")
	require.Equal(t, int32(remoting.Success), resp.Code)
	body := string(resp.Body)
	require.Contains(t, body, `"brokerAddrs":{"0":"127.0.0.1:10911","1":"127.0.0.1:10912"}`, "no spaces, quoted ids")
	require.Contains(t, body, `"queueDatas":[{"brokerName":"broker-a"`, "queue data sorted by broker")
	require.Len(t, rd.QueueDatas, 2)
	require.Equal(t, "broker-b", rd.QueueDatas[1].BrokerName)

	resp, _ = routeOf(t, c, s.Addr(), "nope")
	require.Equal(t, int32(remoting.TopicNotExist), resp.Code)

	resp = invoke(t, c, s.Addr(), remoting.NewRequest(remoting.GetAllTopicListFromNameServer, nil, nil))
	var tl protocol.TopicList
	require.NoError(t, json.Unmarshal(resp.Body, &tl))
	require.Equal(t, []string{"T", "U"}, tl.TopicList)

	resp = invoke(t, c, s.Addr(), remoting.NewRequest(remoting.GetBrokerClusterInfo, nil, nil))
	var ci protocol.ClusterInfo
	require.NoError(t, json.Unmarshal(resp.Body, &ci))
	require.Equal(t, []string{"broker-a", "broker-b"}, ci.ClusterAddrTable["DefaultCluster"])

	invoke(t, c, s.Addr(), remoting.NewRequest(remoting.DeleteTopicInNamesrv, remoting.Fields{{Key: "topic", Value: "U"}}, nil))
	resp, _ = routeOf(t, c, s.Addr(), "U")
	require.Equal(t, int32(remoting.TopicNotExist), resp.Code)

	resp = invoke(t, c, s.Addr(), remoting.NewRequest(999, nil, nil))
	require.Equal(t, int32(remoting.RequestCodeNotSupported), resp.Code)
}

func TestNamesrvMasterRegistrationReplacesTopics(t *testing.T) {
	s := startNamesrv(t, nil)
	c := remoting.NewClient(remoting.ClientOptions{})
	defer c.Close()
	invoke(t, c, s.Addr(), registerReq("broker-a", "127.0.0.1:10911", 0, "T", "U"))
	invoke(t, c, s.Addr(), registerReq("broker-a", "127.0.0.1:10911", 0, "T"))
	resp, _ := routeOf(t, c, s.Addr(), "U")
	require.Equal(t, int32(remoting.TopicNotExist), resp.Code)
}

func TestNamesrvRoleChangeMovesAddress(t *testing.T) {
	s := startNamesrv(t, nil)
	c := remoting.NewClient(remoting.ClientOptions{})
	defer c.Close()
	invoke(t, c, s.Addr(), registerReq("g", "127.0.0.1:1", 0, "T"))
	invoke(t, c, s.Addr(), registerReq("g", "127.0.0.1:2", 1, "T"))
	// The follower wins an election and registers as master.
	invoke(t, c, s.Addr(), registerReq("g", "127.0.0.1:2", 0, "T"))
	_, rd := routeOf(t, c, s.Addr(), "T")
	require.Equal(t, map[int64]string{0: "127.0.0.1:2"}, rd.BrokerDatas[0].BrokerAddrs)
}

func TestNamesrvExpiresSilentBrokers(t *testing.T) {
	s := startNamesrv(t, func(o *Options) {
		o.ScanNotActiveBrokerInterval = 20 * time.Millisecond
		o.BrokerExpiredTime = 200 * time.Millisecond
	})
	c := remoting.NewClient(remoting.ClientOptions{})
	defer c.Close()
	invoke(t, c, s.Addr(), registerReq("broker-a", "127.0.0.1:10911", 0, "T"))
	resp, _ := routeOf(t, c, s.Addr(), "T")
	require.Equal(t, int32(remoting.Success), resp.Code)
	require.Eventually(t, func() bool {
		resp, _ := routeOf(t, c, s.Addr(), "T")
		return resp.Code == remoting.TopicNotExist
	}, 3*time.Second, 20*time.Millisecond)
	require.Zero(t, s.BrokerCount())
}

func TestNamesrvDropsBrokerWhenItsConnectionCloses(t *testing.T) {
	s := startNamesrv(t, nil)
	broker := remoting.NewClient(remoting.ClientOptions{})
	invoke(t, broker, s.Addr(), registerReq("broker-a", "127.0.0.1:10911", 0, "T"))
	require.Equal(t, 1, s.BrokerCount())
	require.NoError(t, broker.Close())
	require.Eventually(t, func() bool { return s.BrokerCount() == 0 }, 2*time.Second, 10*time.Millisecond)
}

func TestNamesrvRegisterValidation(t *testing.T) {
	s := startNamesrv(t, nil)
	c := remoting.NewClient(remoting.ClientOptions{})
	defer c.Close()
	req := registerReq("broker-a", "127.0.0.1:10911", 0)
	req.ExtFields.Set("brokerId", "x")
	require.Equal(t, int32(remoting.InvalidParameter), invoke(t, c, s.Addr(), req).Code)
	req = registerReq("broker-a", "127.0.0.1:10911", 0)
	req.Body = []byte("{not json")
	require.Equal(t, int32(remoting.SystemError), invoke(t, c, s.Addr(), req).Code)
}

func TestNamesrvOptionsFromFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "namesrv.conf")
	require.NoError(t, os.WriteFile(path, []byte("listenPort=9877\nscanNotActiveBrokerInterval=5000\nserverWorkerThreads=8\n"), 0o644))
	o, err := LoadOptions(path)
	require.NoError(t, err)
	require.Equal(t, 9877, o.ListenPort)
	require.Equal(t, 5*time.Second, o.ScanNotActiveBrokerInterval)

	require.NoError(t, os.WriteFile(path, []byte("listenPrt=9877\n"), 0o644))
	_, err = LoadOptions(path)
	require.ErrorContains(t, err, `unknown key "listenPrt"`)

	o = DefaultOptions()
	o.ListenPort = 70000
	require.ErrorContains(t, o.Validate(), "listenPort=70000")
}

func TestNamesrvStaleLeaderCannotTakeTheMasterSlotBack(t *testing.T) {
	s := startNamesrv(t, nil)
	c := remoting.NewClient(remoting.ClientOptions{})
	defer c.Close()
	withTerm := func(req *remoting.Command, term int) *remoting.Command {
		req.ExtFields = append(req.ExtFields, remoting.Field{Key: "raftTerm", Value: strconv.Itoa(term)})
		return req
	}
	invoke(t, c, s.Addr(), withTerm(registerReq("g", "127.0.0.1:1", 0, "T"), 2))
	invoke(t, c, s.Addr(), withTerm(registerReq("g", "127.0.0.1:2", 0, "T"), 3))
	// The old leader, cut off, has not noticed yet and re-registers.
	invoke(t, c, s.Addr(), withTerm(registerReq("g", "127.0.0.1:1", 0, "T"), 2))
	_, rd := routeOf(t, c, s.Addr(), "T")
	require.Equal(t, "127.0.0.1:2", rd.BrokerDatas[0].BrokerAddrs[0])
	// Once it follows, it takes a follower slot.
	invoke(t, c, s.Addr(), withTerm(registerReq("g", "127.0.0.1:1", 1, "T"), 3))
	_, rd = routeOf(t, c, s.Addr(), "T")
	require.Equal(t, map[int64]string{0: "127.0.0.1:2", 1: "127.0.0.1:1"}, rd.BrokerDatas[0].BrokerAddrs)
}

func TestNamesrvRebuiltGroupTakesTheFreeMasterSlot(t *testing.T) {
	s := startNamesrv(t, nil)
	c := remoting.NewClient(remoting.ClientOptions{})
	defer c.Close()
	req := registerReq("g", "127.0.0.1:1", 0, "T")
	req.ExtFields = append(req.ExtFields, remoting.Field{Key: "raftTerm", Value: "7"})
	invoke(t, c, s.Addr(), req)
	invoke(t, c, s.Addr(), remoting.NewRequest(remoting.UnregisterBroker, remoting.Fields{
		{Key: "brokerName", Value: "g"}, {Key: "brokerAddr", Value: "127.0.0.1:1"}, {Key: "clusterName", Value: "DefaultCluster"}, {Key: "brokerId", Value: "0"}}, nil))
	// The group, rebuilt from empty stores, elects at term 1.
	req = registerReq("g", "127.0.0.1:2", 0, "T")
	req.ExtFields = append(req.ExtFields, remoting.Field{Key: "raftTerm", Value: "1"})
	invoke(t, c, s.Addr(), req)
	_, rd := routeOf(t, c, s.Addr(), "T")
	require.Equal(t, "127.0.0.1:2", rd.BrokerDatas[0].BrokerAddrs[0])
}
