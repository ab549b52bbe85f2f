package stack

import (
	"fmt"
	"net"
	"sort"
	"strconv"
)

// Port offsets from --base-port. Nothing listens on a fixed port, so two
// stacks with base ports 1000 apart run side by side.
const (
	offNamesrv1  = 1
	offNamesrv2  = 2
	offConsole   = 70 // reserved for the console
	offGateway   = 80
	offProvider  = 90
	offOrder     = 101
	offInventory = 102
	offPoints    = 103
	offMarketing = 104
	offPush      = 105
	offWarehouse = 106
	offSeckill   = 107 // reserved
	offAnalytics = 108 // reserved
	offQlcanal1  = 109 // reserved
	offQlcanal2  = 110 // reserved
	offZooKeeper = 181
	offMariaDB   = 306
	offRedis     = 379
	// Broker n of the stack (0..5: broker-a-n0..n2, broker-b-n0..n2)
	// listens on offBroker+10n and replicates on offBroker+10n+1.
	offBroker = 911

	minPortOffset = offNamesrv1
	maxPortOffset = offBroker + 10*5 + 1
)

// NamedPort is one port of the plan.
type NamedPort struct {
	Name string // "broker-a-n0", "broker-a-n0 raft", "console (reserved)"…
	Port int
}

// PortPlan lists every port a stack with this base port and number of
// broker groups uses or reserves, ordered by port.
func PortPlan(base, groups int) []NamedPort {
	var out []NamedPort
	for _, c := range componentTable(groups) {
		for i, off := range c.ports {
			name := c.name
			if i > 0 {
				name += " raft"
			}
			out = append(out, NamedPort{name, base + off})
		}
	}
	for name, off := range map[string]int{"console (reserved)": offConsole, "seckill (reserved)": offSeckill,
		"analytics (reserved)": offAnalytics, "qlcanal-1 (reserved)": offQlcanal1, "qlcanal-2 (reserved)": offQlcanal2} {
		out = append(out, NamedPort{name, base + off})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Port < out[j].Port })
	return out
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// checkPortsFree fails naming the first port of the selected components
// that something else already listens on.
func checkPortsFree(base int, comps []*component) error {
	for _, c := range comps {
		for _, off := range c.ports {
			// Brokers listen on every address; the others on loopback.
			for _, host := range []string{"127.0.0.1", "0.0.0.0"} {
				l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(base+off)))
				if err != nil {
					return fmt.Errorf("port %d (%s) is in use: pick another --base-port: %w", base+off, c.name, err)
				}
				_ = l.Close()
			}
		}
	}
	return nil
}
