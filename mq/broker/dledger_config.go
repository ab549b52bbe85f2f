package broker

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// dlegerPeer is one member of a Raft broker group, from dLegerPeers.
type dlegerPeer struct {
	name string // "n0"
	id   uint64 // raft id: the number after "n", plus one
	addr string // peer (replication) address
}

// parseDLegerPeers parses "n0-127.0.0.1:40911;n1-127.0.0.1:40912;…" into
// members ordered by id.
func parseDLegerPeers(s string) ([]dlegerPeer, error) {
	var out []dlegerPeer
	seen := map[uint64]bool{}
	for _, item := range strings.Split(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, addr, ok := strings.Cut(item, "-")
		if !ok || len(name) < 2 || name[0] != 'n' {
			return nil, fmt.Errorf("member %q: want n<number>-<ip>:<port>", item)
		}
		n, err := strconv.ParseUint(name[1:], 10, 16)
		if err != nil {
			return nil, fmt.Errorf("member %q: want n<number>-<ip>:<port>", item)
		}
		if _, err := netip.ParseAddrPort(addr); err != nil {
			return nil, fmt.Errorf("member %q: address %q: want ip:port", item, addr)
		}
		id := n + 1
		if seen[id] {
			return nil, fmt.Errorf("member %s listed twice", name)
		}
		seen[id] = true
		out = append(out, dlegerPeer{name: name, id: id, addr: addr})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out, nil
}

// validateDLeger checks the Raft group keys.
func (c *Config) validateDLeger(bad func(key string, val any, want string)) {
	if !validName(c.DLegerGroup) {
		bad("dLegerGroup", c.DLegerGroup, "want letters, digits, %, |, - or _ (usually the brokerName)")
	}
	peers, err := parseDLegerPeers(c.DLegerPeers)
	switch {
	case err != nil:
		bad("dLegerPeers", c.DLegerPeers, err.Error())
	case len(peers) < 1 || len(peers) > 9:
		bad("dLegerPeers", c.DLegerPeers, "want 1 to 9 members, 3 for a group that survives one failure")
	default:
		self, preferred := false, c.PreferredLeaderID == ""
		for _, p := range peers {
			self = self || p.name == c.DLegerSelfID
			preferred = preferred || p.name == c.PreferredLeaderID
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
func (c *Config) dlegerMembers() (self dlegerPeer, all []dlegerPeer) {
	all, _ = parseDLegerPeers(c.DLegerPeers)
	for _, p := range all {
		if p.name == c.DLegerSelfID {
			self = p
		}
	}
	return self, all
}

// preferredLeader is the raft id of the member preferredLeaderId names
// (0: none).
func (c *Config) preferredLeader(all []dlegerPeer) uint64 {
	for _, p := range all {
		if p.name == c.PreferredLeaderID {
			return p.id
		}
	}
	return 0
}
