package stack

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

type kind int

const (
	kindStorage kind = iota // MariaDB, Redis, ZooKeeper
	kindNamesrv
	kindBroker
	kindService // business services and the provider
	kindGateway
)

// Start stages: every component of a stage starts together and the next
// stage waits until all of them are ready (and the stage's gate passed).
const (
	stageStorage = iota
	stageNamesrv
	stageBrokers // gate: a settled leader in every group, then the topics
	stageProvider
	stageServices
	stageGateway
)

// component is one row of the stack's table: one supervised process.
type component struct {
	name  string
	kind  kind
	ports []int // offsets from the base port; the first is its address
	stage int
	// stopRank orders the shutdown: lower ranks stop first, equal ranks
	// together (gateway, services, brokers, NameServers, ZooKeeper, Redis,
	// MariaDB).
	stopRank    int
	stopTimeout time.Duration
	binary      func(s *Stack) string
	args        func(s *Stack) []string
	// prepare runs once per `up`, before the first start (configuration
	// files, database initialisation).
	prepare func(ctx context.Context, s *Stack) error
	// ready returns nil once the component serves.
	ready func(ctx context.Context, s *Stack) error
}

// brokerNames are broker-a-n0…n2 and, with two groups, broker-b-n0…n2.
func brokerNames(groups int) []string {
	var out []string
	for g := 0; g < groups; g++ {
		for n := 0; n < 3; n++ {
			out = append(out, fmt.Sprintf("broker-%c-n%d", 'a'+g, n))
		}
	}
	return out
}

// componentTable is the whole platform. A later part (seckill, analytics,
// qlcanal-1/2, console) is one more row; its ports are reserved in ports.go.
func componentTable(groups int) []*component {
	t := []*component{
		{name: "mariadb", kind: kindStorage, ports: []int{offMariaDB}, stage: stageStorage, stopRank: 6, stopTimeout: time.Minute,
			binary: func(*Stack) string { return mariadbdPath }, args: mariadbArgs, prepare: prepareMariaDB, ready: mariadbReady},
		{name: "redis", kind: kindStorage, ports: []int{offRedis}, stage: stageStorage, stopRank: 5, stopTimeout: 30 * time.Second,
			binary: func(*Stack) string { return redisPath }, args: redisArgs, prepare: prepareRedis, ready: redisReady},
		{name: "zookeeper", kind: kindStorage, ports: []int{offZooKeeper}, stage: stageStorage, stopRank: 4, stopTimeout: 15 * time.Second,
			binary: javaPath, args: zookeeperArgs, prepare: prepareZooKeeper, ready: zookeeperReady},
		namesrv("namesrv-1", offNamesrv1),
		namesrv("namesrv-2", offNamesrv2),
	}
	for i, name := range brokerNames(groups) {
		t = append(t, broker(name, offBroker+10*i))
	}
	t = append(t,
		service("provider", offProvider, stageProvider),
		service("order", offOrder, stageServices, withNamesrv, withProvider, withPublicURL, func(s *Stack, _ string) []string {
			return []string{"--order-timeout", s.opts.OrderTimeout.String(), "--seckill-order-rate", strconv.Itoa(s.opts.SeckillOrderRate)}
		}),
		service("inventory", offInventory, stageServices, withNamesrv),
		service("points", offPoints, stageServices, withNamesrv),
		service("marketing", offMarketing, stageServices, withNamesrv),
		service("push", offPush, stageServices, withNamesrv, withProvider),
		service("warehouse", offWarehouse, stageServices, withNamesrv, withProvider, withPublicURL, func(s *Stack, _ string) []string {
			return []string{"--ship-after", s.opts.ShipAfter.String()}
		}),
		&component{name: "nginx", kind: kindGateway, ports: []int{offGateway}, stage: stageGateway, stopRank: 0, stopTimeout: 10 * time.Second,
			binary: func(*Stack) string { return nginxPath }, args: nginxArgs, prepare: prepareNginx, ready: nginxReady},
	)
	return t
}

func namesrv(name string, off int) *component {
	return &component{name: name, kind: kindNamesrv, ports: []int{off}, stage: stageNamesrv, stopRank: 3, stopTimeout: 10 * time.Second,
		binary:  binFile("mqnamesrv"),
		args:    func(s *Stack) []string { return []string{"-c", s.confPath(name + ".conf")} },
		prepare: func(_ context.Context, s *Stack) error { return s.writeNamesrvConf(name, off) },
		ready:   func(ctx context.Context, s *Stack) error { return dialReady(ctx, s.addr(off)) },
	}
}

func broker(name string, off int) *component {
	return &component{name: name, kind: kindBroker, ports: []int{off, off + 1}, stage: stageBrokers, stopRank: 2, stopTimeout: 30 * time.Second,
		binary:  binFile("mqbroker"),
		args:    func(s *Stack) []string { return []string{"-c", s.confPath(name + ".conf")} },
		prepare: func(_ context.Context, s *Stack) error { return s.writeBrokerConf(name) },
		ready:   func(ctx context.Context, s *Stack) error { return dialReady(ctx, s.addr(off)) },
	}
}

// argsFn adds flags to a service's command line; self is the service's
// own address.
type argsFn func(s *Stack, self string) []string

func withNamesrv(s *Stack, _ string) []string { return []string{"--namesrv", s.namesrvList()} }
func withProvider(s *Stack, _ string) []string {
	return []string{"--provider", "http://" + s.addr(offProvider)}
}
func withPublicURL(_ *Stack, self string) []string { return []string{"--public-url", "http://" + self} }

// service is a business service or the provider: a binary of bin-dir with
// the flags every service takes, plus extra.
func service(name string, off, stage int, extra ...argsFn) *component {
	return &component{name: name, kind: kindService, ports: []int{off}, stage: stage, stopRank: 1, stopTimeout: 15 * time.Second,
		binary: binFile(name),
		args: func(s *Stack) []string {
			self := s.addr(off)
			args := []string{"--listen", self, "--dsn", s.serviceDSN(name), "--secrets", s.secretsPath()}
			for _, f := range extra {
				args = append(args, f(s, self)...)
			}
			return args
		},
		ready: func(ctx context.Context, s *Stack) error { return httpReady(ctx, "http://"+s.addr(off)+"/healthz") },
	}
}

func binFile(name string) func(s *Stack) string {
	return func(s *Stack) string { return filepath.Join(s.opts.BinDir, name) }
}
