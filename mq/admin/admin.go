// Package admin is a client for the NameServer's and brokers' admin
// requests, used by mqadmin and by tests.
package admin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"qianlang.io/mq/acl"
	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
)

// Client talks to a set of NameServers and the brokers they know.
type Client struct {
	rc       *remoting.Client
	namesrvs []string
	ak, sk   string // ACL credentials; requests are signed when ak is set
}

// SetCredentials makes the client sign its requests with an ACL account.
func (c *Client) SetCredentials(accessKey, secretKey string) { c.ak, c.sk = accessKey, secretKey }

// sign adds the ACL AccessKey and Signature fields.
func (c *Client) sign(req *remoting.Command) {
	if c.ak == "" {
		return
	}
	fields := map[string]string{acl.FieldAccessKey: c.ak}
	for _, f := range req.ExtFields {
		fields[f.Key] = f.Value
	}
	req.ExtFields = append(req.ExtFields, remoting.Field{Key: acl.FieldAccessKey, Value: c.ak},
		remoting.Field{Key: acl.FieldSignature, Value: acl.Sign(fields, req.Body, c.sk)})
}

// New returns a client for the ';'-separated NameServer addresses.
func New(namesrvAddr string) (*Client, error) {
	var addrs []string
	for _, a := range strings.Split(namesrvAddr, ";") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, errors.New("admin: no NameServer address (use -n ip:port)")
	}
	return &Client{rc: remoting.NewClient(remoting.ClientOptions{DialTimeout: 3 * time.Second}), namesrvs: addrs}, nil
}

// Close closes the connections.
func (c *Client) Close() error { return c.rc.Close() }

// call sends req to addr and checks the response code.
func (c *Client) call(ctx context.Context, addr string, req *remoting.Command) (*remoting.Command, error) {
	c.sign(req)
	resp, err := c.rc.Invoke(ctx, addr, req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	if err := resp.AsError(); err != nil {
		return resp, fmt.Errorf("%s: %w", addr, err)
	}
	return resp, nil
}

// callNamesrv tries each NameServer in turn until one answers.
func (c *Client) callNamesrv(ctx context.Context, code int32, fields remoting.Fields, v any) error {
	var errs []error
	for _, addr := range c.namesrvs {
		resp, err := c.call(ctx, addr, remoting.NewRequest(code, fields, nil))
		if err != nil {
			var re *remoting.Error
			if errors.As(err, &re) {
				return err // the NameServer answered: do not ask another
			}
			errs = append(errs, err)
			continue
		}
		if v == nil {
			return nil
		}
		return protocol.Decode(resp.Body, "response", v)
	}
	return fmt.Errorf("admin: no NameServer answered: %w", errors.Join(errs...))
}

func (c *Client) callBroker(ctx context.Context, addr string, code int32, fields remoting.Fields, body []byte, v any) error {
	resp, err := c.call(ctx, addr, remoting.NewRequest(code, fields, body))
	if err != nil {
		return err
	}
	if v == nil {
		return nil
	}
	return protocol.Decode(resp.Body, "response", v)
}

// ClusterInfo returns every cluster and broker group.
func (c *Client) ClusterInfo(ctx context.Context) (protocol.ClusterInfo, error) {
	var ci protocol.ClusterInfo
	err := c.callNamesrv(ctx, remoting.GetBrokerClusterInfo, nil, &ci)
	return ci, err
}

// TopicList returns every topic, or those of a cluster.
func (c *Client) TopicList(ctx context.Context, cluster string) ([]string, error) {
	var tl protocol.TopicList
	var err error
	if cluster == "" {
		err = c.callNamesrv(ctx, remoting.GetAllTopicListFromNameServer, nil, &tl)
	} else {
		err = c.callNamesrv(ctx, remoting.GetTopicsByCluster, remoting.Fields{{Key: "cluster", Value: cluster}}, &tl)
	}
	sort.Strings(tl.TopicList)
	return tl.TopicList, err
}

// Route returns a topic's route.
func (c *Client) Route(ctx context.Context, topic string) (protocol.TopicRouteData, error) {
	var rd protocol.TopicRouteData
	err := c.callNamesrv(ctx, remoting.GetRouteInfoByTopic, remoting.Fields{{Key: "topic", Value: topic}}, &rd)
	return rd, err
}

// MasterAddrs returns the master address of every broker group of a
// cluster ("" for all clusters), sorted by broker name.
func (c *Client) MasterAddrs(ctx context.Context, cluster string) ([]protocol.BrokerData, error) {
	ci, err := c.ClusterInfo(ctx)
	if err != nil {
		return nil, err
	}
	var out []protocol.BrokerData
	for name, bd := range ci.BrokerAddrTable {
		if cluster != "" && bd.Cluster != cluster {
			continue
		}
		if _, ok := bd.BrokerAddrs[0]; ok {
			out = append(out, ci.BrokerAddrTable[name])
		}
	}
	if cluster != "" && len(out) == 0 {
		return nil, fmt.Errorf("admin: cluster %q has no broker with a master", cluster)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].BrokerName < out[j].BrokerName })
	return out, nil
}

// CreateTopic creates or updates a topic on one broker.
func (c *Client) CreateTopic(ctx context.Context, brokerAddr string, tc protocol.TopicConfig) error {
	f := remoting.Fields{
		{Key: "topic", Value: tc.TopicName},
		{Key: "defaultTopic", Value: "TBW102"},
		{Key: "readQueueNums", Value: strconv.Itoa(tc.ReadQueueNums)},
		{Key: "writeQueueNums", Value: strconv.Itoa(tc.WriteQueueNums)},
		{Key: "perm", Value: strconv.Itoa(tc.Perm)},
		{Key: "topicFilterType", Value: orDefault(tc.TopicFilterType, "SINGLE_TAG")},
		{Key: "topicSysFlag", Value: strconv.Itoa(tc.TopicSysFlag)},
		{Key: "order", Value: strconv.FormatBool(tc.Order)},
	}
	return c.callBroker(ctx, brokerAddr, remoting.UpdateAndCreateTopic, f, nil, nil)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TopicStats returns a topic's queue offsets on one broker.
func (c *Client) TopicStats(ctx context.Context, brokerAddr, topic string) (protocol.TopicStats, error) {
	var st protocol.TopicStats
	err := c.callBroker(ctx, brokerAddr, remoting.GetTopicStatsInfo, remoting.Fields{{Key: "topic", Value: topic}}, nil, &st)
	return st, err
}

// ConsumeStats returns a group's progress on one broker.
func (c *Client) ConsumeStats(ctx context.Context, brokerAddr, group, topic string) (protocol.ConsumeStats, error) {
	var st protocol.ConsumeStats
	f := remoting.Fields{{Key: "consumerGroup", Value: group}}
	if topic != "" {
		f = append(f, remoting.Field{Key: "topic", Value: topic})
	}
	err := c.callBroker(ctx, brokerAddr, remoting.GetConsumeStats, f, nil, &st)
	return st, err
}

// ConsumerConnection returns a group's online clients on one broker.
func (c *Client) ConsumerConnection(ctx context.Context, brokerAddr, group string) (protocol.ConsumerConnection, error) {
	var cc protocol.ConsumerConnection
	err := c.callBroker(ctx, brokerAddr, remoting.GetConsumerConnectionList, remoting.Fields{{Key: "consumerGroup", Value: group}}, nil, &cc)
	return cc, err
}

// SubscriptionGroups returns a broker's subscription groups.
func (c *Client) SubscriptionGroups(ctx context.Context, brokerAddr string) (protocol.SubscriptionGroupWrapper, error) {
	var w protocol.SubscriptionGroupWrapper
	err := c.callBroker(ctx, brokerAddr, remoting.GetAllSubscriptionGroupConfig, nil, nil, &w)
	return w, err
}

// BrokerRuntime returns a broker's runtime figures.
func (c *Client) BrokerRuntime(ctx context.Context, brokerAddr string) (map[string]string, error) {
	var kv protocol.KVTable
	err := c.callBroker(ctx, brokerAddr, remoting.GetBrokerRuntimeInfo, nil, nil, &kv)
	return kv.Table, err
}

// SendMessage sends one message with body to topic on the broker at
// brokerAddr (a queue it picks) and returns the message id it answers.
func (c *Client) SendMessage(ctx context.Context, brokerAddr, topic string, body []byte) (string, error) {
	f := remoting.Fields{
		{Key: "producerGroup", Value: "mqadmin"},
		{Key: "topic", Value: topic},
		{Key: "defaultTopic", Value: "TBW102"},
		{Key: "defaultTopicQueueNums", Value: "4"},
		{Key: "queueId", Value: "-1"},
		{Key: "sysFlag", Value: "0"},
		{Key: "bornTimestamp", Value: strconv.FormatInt(time.Now().UnixMilli(), 10)},
		{Key: "flag", Value: "0"},
		{Key: "properties", Value: ""},
		{Key: "reconsumeTimes", Value: "0"},
	}
	resp, err := c.call(ctx, brokerAddr, remoting.NewRequest(remoting.SendMessage, f, body))
	if err != nil {
		return "", err
	}
	return resp.ExtFields.Str("msgId"), nil
}
