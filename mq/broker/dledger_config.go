package broker

import (
	"time"

	"qianlang.io/mq/broker/member"
)

// validateDLeger checks the Raft group keys.
func (c *Config) validateDLeger(bad func(key string, val any, want string)) {
	if !validName(c.DLegerGroup) {
		bad("dLegerGroup", c.DLegerGroup, "want letters, digits, %, |, - or _ (usually the brokerName)")
	}
	peers, err := member.ParsePeers(c.DLegerPeers)
	switch {
	case err != nil:
		bad("dLegerPeers", c.DLegerPeers, err.Error())
	case len(peers) < 1 || len(peers) > 9:
		bad("dLegerPeers", c.DLegerPeers, "want 1 to 9 members, 3 for a group that survives one failure")
	default:
		self, preferred := false, c.PreferredLeaderID == ""
		for _, p := range peers {
			self = self || p.Name == c.DLegerSelfID
			preferred = preferred || p.Name == c.PreferredLeaderID
		}
		if !self {
			bad("dLegerSelfId", c.DLegerSelfID, "must name a member of dLegerPeers")
		}
		if !preferred {
			bad("preferredLeaderId", c.PreferredLeaderID, "must be empty or name a member of dLegerPeers")
		}
	}
	if c.DLegerHeartbeatInterval < 10*time.Millisecond || c.DLegerHeartbeatInterval > 10*time.Second {
		bad("dLegerHeartbeatIntervalMs", c.DLegerHeartbeatInterval.Milliseconds(), "want 10..10000")
	}
	if c.DLegerShutdownDrain < 0 || c.DLegerShutdownDrain > 10*time.Minute {
		bad("dLegerShutdownDrainMs", c.DLegerShutdownDrain.Milliseconds(), "want 0..600000")
	}
	if c.DLegerElectionTimeout < 3*c.DLegerHeartbeatInterval {
		bad("dLegerElectionTimeoutMs", c.DLegerElectionTimeout.Milliseconds(), "want at least three heartbeat intervals")
	}
}

// dlegerMembers returns this member and every member.
func (c *Config) dlegerMembers() (self member.Peer, all []member.Peer) {
	all, _ = member.ParsePeers(c.DLegerPeers)
	for _, p := range all {
		if p.Name == c.DLegerSelfID {
			self = p
		}
	}
	return self, all
}

// preferredLeader is the raft id of the member preferredLeaderId names
// (0: none).
func (c *Config) preferredLeader(all []member.Peer) uint64 {
	for _, p := range all {
		if p.Name == c.PreferredLeaderID {
			return p.ID
		}
	}
	return 0
}
