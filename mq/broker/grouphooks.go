package broker

import (
	"context"

	"qianlang.io/mq/replica"
)

// TransferLeadership hands the leadership of this broker's Raft group to
// its most up-to-date follower and waits until another member leads, or
// ctx ends. It is a no-op on a follower and on a broker in no group.
func (b *Broker) TransferLeadership(ctx context.Context) error {
	if b.member == nil {
		return nil
	}
	return b.member.TransferLeadership(ctx)
}

// SetStatusHook installs fn (nil removes it), which the group member calls
// with each status it is told, before it acts on it: its role, brokerId
// and registration. A test blocks in fn to hold the broker's handling of
// role changes back. It does nothing on a broker in no group.
func (b *Broker) SetStatusHook(fn func(replica.Status)) {
	if b.member != nil {
		b.member.SetStatusHook(fn)
	}
}
