package broker

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"qianlang.io/mq/acl"
	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
)

// aclFile is the loaded plain_acl.yml; the broker re-reads it when it
// changes, as Java does, and keeps the accounts it has when a new version
// does not parse.
type aclFile struct {
	path string
	cur  atomic.Pointer[acl.Config]
	stat struct {
		size int64
		mod  time.Time
	}
}

// loadACL reads aclConfigFile when aclEnable is on.
func loadACL(cfg *Config) (*aclFile, error) {
	if !cfg.AclEnable {
		return nil, nil
	}
	f := &aclFile{path: cfg.AclConfigFile}
	if _, err := f.reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// reload reads the file if it changed since the last read and reports
// whether it installed a new version.
func (f *aclFile) reload() (bool, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return false, fmt.Errorf("broker: aclConfigFile=%s: %w", f.path, err)
	}
	if f.cur.Load() != nil && fi.Size() == f.stat.size && fi.ModTime().Equal(f.stat.mod) {
		return false, nil
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return false, fmt.Errorf("broker: aclConfigFile=%s: %w", f.path, err)
	}
	c, err := acl.Parse(data)
	if err != nil {
		return false, fmt.Errorf("broker: aclConfigFile=%s: %w", f.path, err)
	}
	f.cur.Store(c)
	f.stat.size, f.stat.mod = fi.Size(), fi.ModTime()
	return true, nil
}

// reloadACL picks up a changed plain_acl.yml.
func (b *Broker) reloadACL() {
	changed, err := b.acl.reload()
	switch {
	case err != nil:
		b.log.Error("the ACL file changed but cannot be used; the previous accounts stay in force", "err", err)
	case changed:
		b.log.Info("ACL accounts reloaded", "file", b.acl.path, "accounts", len(b.acl.cur.Load().Accounts))
	}
}

// adminCodes need an admin account.
var adminCodes = map[int32]bool{
	remoting.UpdateAndCreateTopic: true, remoting.DeleteTopicInBroker: true,
	remoting.UpdateAndCreateSubscriptionGroup: true, remoting.DeleteSubscriptionGroup: true,
	remoting.InvokeBrokerToResetOffset: true, remoting.UpdateBrokerConfig: true,
	remoting.CleanExpiredConsumeQueue: true,
}

// checkAccess authenticates and authorizes a request when ACL is on; a
// refused request is answered NO_PERMISSION and logged, never served.
func (b *Broker) checkAccess(c *remoting.Conn, req *remoting.Command) *remoting.Command {
	if b.acl == nil {
		return nil
	}
	rules := b.acl.cur.Load()
	fields := make(map[string]string, len(req.ExtFields))
	for _, f := range req.ExtFields {
		fields[f.Key] = f.Value
	}
	remote := bornHost(c).Addr()
	acct, err := rules.Authenticate(acl.Request{Fields: fields, Body: req.Body, Remote: remote})
	if err == nil {
		var need acl.Need
		if need, err = accessNeed(req); err == nil {
			err = rules.Authorize(acct, need)
		}
	}
	if err != nil {
		b.log.Warn("request refused by ACL", "code", req.Code, "remote", remote.String(), "err", err)
		return req.Errorf(remoting.NoPermission, "%v", err)
	}
	return nil
}

// accessNeed is what a request needs, by code, as RocketMQ's plain ACL
// decides it: producers need PUB on the topic, consumers SUB on the topic
// and on their group; a retry topic stands for its group.
func accessNeed(req *remoting.Command) (acl.Need, error) {
	need := acl.Need{Topics: map[string]acl.Perm{}, Groups: map[string]acl.Perm{}}
	f := req.ExtFields
	topic := func(name string, p acl.Perm) {
		if g, ok := strings.CutPrefix(name, RetryGroupPrefix); ok {
			need.Groups[g] |= acl.Sub
			return
		}
		if name != "" {
			need.Topics[name] |= p
		}
	}
	group := func(name string) {
		if name != "" {
			need.Groups[name] |= acl.Sub
		}
	}
	switch req.Code {
	case remoting.SendMessage, remoting.SendReplyMessage:
		topic(f.Str("topic"), acl.Pub)
	case remoting.SendMessageV2, remoting.SendBatchMessage, remoting.SendReplyMessageV2:
		topic(f.Str("b"), acl.Pub)
	case remoting.PullMessage, remoting.QueryConsumerOffset, remoting.UpdateConsumerOffset:
		topic(f.Str("topic"), acl.Sub)
		group(f.Str("consumerGroup"))
	case remoting.QueryMessage:
		topic(f.Str("topic"), acl.Sub)
	case remoting.HeartBeat:
		var hb protocol.HeartbeatData
		if err := protocol.Decode(req.Body, "heartbeat", &hb); err != nil {
			return need, err
		}
		for _, cd := range hb.ConsumerDataSet {
			group(cd.GroupName)
			for _, sd := range cd.SubscriptionDataSet {
				topic(sd.Topic, acl.Sub)
			}
		}
	case remoting.UnregisterClient:
		group(f.Str("consumerGroup"))
	case remoting.GetConsumerListByGroup:
		group(f.Str("consumerGroup"))
	case remoting.ConsumerSendMsgBack:
		group(f.Str("group"))
	case remoting.LockBatchMQ, remoting.UnlockBatchMQ:
		var body protocol.LockBatchRequest
		if err := protocol.Decode(req.Body, "lock", &body); err != nil {
			return need, err
		}
		group(body.ConsumerGroup)
	default:
		need.Admin = adminCodes[req.Code]
	}
	return need, nil
}
