package meta

import (
	"qianlang.io/mq/protocol"
	"qianlang.io/mq/vfs"
)

// Groups is the broker's subscription-group table,
// config/subscriptionGroup.json, keyed by group name.
type Groups struct {
	*Table[string, protocol.SubscriptionGroupConfig]
}

// NewGroups returns the subscription-group table stored under root.
func NewGroups(fs vfs.FS, root string) *Groups {
	l := Layout{File: "subscriptionGroup.json", Entries: "subscriptionGroupTable", Version: "dataVersion"}
	return &Groups{NewTable[string, protocol.SubscriptionGroupConfig](fs, root, l, nil)}
}

// Put creates or replaces a group, keyed by its name, and writes the
// table.
func (g *Groups) Put(c protocol.SubscriptionGroupConfig) error {
	_, err := g.Table.Put(c.GroupName, c)
	return err
}

// Wrapper is the table as GET_ALL_SUBSCRIPTIONGROUP_CONFIG answers it.
func (g *Groups) Wrapper() protocol.SubscriptionGroupWrapper {
	groups, v := g.Snapshot()
	return protocol.SubscriptionGroupWrapper{SubscriptionGroupTable: groups, DataVersion: v}
}
