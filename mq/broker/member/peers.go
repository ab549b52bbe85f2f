package member

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Peer is one member of a Raft broker group, from dLegerPeers.
type Peer struct {
	Name string // "n0"
	ID   uint64 // raft id: the number after "n", plus one
	Addr string // peer (replication) address
}

// ParsePeers parses "n0-127.0.0.1:40911;n1-127.0.0.1:40912;…" into
// members ordered by id.
func ParsePeers(s string) ([]Peer, error) {
	var out []Peer
	seen := map[uint64]bool{}
	for _, item := range strings.Split(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := parsePeer(item)
		if err != nil {
			return nil, err
		}
		if seen[p.ID] {
			return nil, fmt.Errorf("member %s listed twice", p.Name)
		}
		seen[p.ID] = true
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Peer) int { return int(a.ID) - int(b.ID) })
	return out, nil
}

func parsePeer(item string) (Peer, error) {
	name, addr, ok := strings.Cut(item, "-")
	if !ok || len(name) < 2 || name[0] != 'n' {
		return Peer{}, fmt.Errorf("member %q: want n<number>-<ip>:<port>", item)
	}
	n, err := strconv.ParseUint(name[1:], 10, 16)
	if err != nil {
		return Peer{}, fmt.Errorf("member %q: want n<number>-<ip>:<port>", item)
	}
	if _, err := netip.ParseAddrPort(addr); err != nil {
		return Peer{}, fmt.Errorf("member %q: address %q: want ip:port", item, addr)
	}
	return Peer{Name: name, ID: n + 1, Addr: addr}, nil
}
