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

// accessNeed is what a request needs, as RocketMQ's plain ACL decides it
// (see the need of each code in requestTable); a code the broker does not
// know needs a valid signature only.
func accessNeed(req *remoting.Command) (acl.Need, error) {
	need := acl.Need{Topics: map[string]acl.Perm{}, Groups: map[string]acl.Perm{}}
	if r := requestFor(req.Code); r != nil {
		return need, r.need(req, &need)
	}
	return need, nil
}

// needFn adds what a request needs under ACL to n: producers need PUB on
// the topic, consumers SUB on the topic and on their group; a retry topic
// stands for its group.
type needFn func(req *remoting.Command, n *acl.Need) error

// authenticated requests need a valid signature only.
func authenticated(*remoting.Command, *acl.Need) error { return nil }

// admin requests need an admin account.
func admin(_ *remoting.Command, n *acl.Need) error {
	n.Admin = true
	return nil
}

// topicIn: the topic named by the field key needs p.
func topicIn(key string, p acl.Perm) needFn {
	return func(req *remoting.Command, n *acl.Need) error {
		needTopic(n, req.ExtFields.Str(key), p)
		return nil
	}
}

// groupIn: the consumer group named by the field key needs SUB.
func groupIn(key string) needFn {
	return func(req *remoting.Command, n *acl.Need) error {
		needGroup(n, req.ExtFields.Str(key))
		return nil
	}
}

// both needs what a and b need.
func both(a, b needFn) needFn {
	return func(req *remoting.Command, n *acl.Need) error {
		if err := a(req, n); err != nil {
			return err
		}
		return b(req, n)
	}
}

// heartbeatNeed: every consumer group of a heartbeat and the topics it
// subscribes to need SUB.
func heartbeatNeed(req *remoting.Command, n *acl.Need) error {
	var hb protocol.HeartbeatData
	if err := protocol.Decode(req.Body, "heartbeat", &hb); err != nil {
		return err
	}
	for _, cd := range hb.ConsumerDataSet {
		needGroup(n, cd.GroupName)
		for _, sd := range cd.SubscriptionDataSet {
			needTopic(n, sd.Topic, acl.Sub)
		}
	}
	return nil
}

// lockNeed: the group locking or unlocking queues needs SUB.
func lockNeed(req *remoting.Command, n *acl.Need) error {
	var body protocol.LockBatchRequest
	if err := protocol.Decode(req.Body, "lock", &body); err != nil {
		return err
	}
	needGroup(n, body.ConsumerGroup)
	return nil
}

func needTopic(n *acl.Need, name string, p acl.Perm) {
	if g, ok := strings.CutPrefix(name, RetryGroupPrefix); ok {
		n.Groups[g] |= acl.Sub
		return
	}
	if name != "" {
		n.Topics[name] |= p
	}
}

func needGroup(n *acl.Need, name string) {
	if name != "" {
		n.Groups[name] |= acl.Sub
	}
}
