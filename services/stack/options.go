package stack

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Options configure one stack. The zero value is not usable: start from
// DefaultOptions.
type Options struct {
	// Dir holds every component's data, configuration and logs, the
	// secrets file and stack.json. It is kept when the stack stops.
	Dir string
	// BasePort is the first of the ports the stack uses (see PortPlan).
	BasePort int
	// Groups is the number of Raft broker groups of three (1 or 2).
	Groups int
	// OrderTimeout is how long an order may stay unpaid (order --order-timeout).
	OrderTimeout time.Duration
	// SeckillOrderRate is the rate at which seckill winners become orders.
	SeckillOrderRate int
	// ShipAfter is the warehouse's handling time between payment and
	// handing the parcel to the carrier (warehouse --ship-after); until
	// then a paid order can still be cancelled and refunded.
	ShipAfter time.Duration
	// QuizMinAnswerMs is the least time between fetching a seckill quiz and
	// answering it that counts as human.
	QuizMinAnswerMs int
	// BinDir holds mqnamesrv, mqbroker, mqadmin and the services' binaries.
	BinDir string
	// DeployDir holds nginx/gateway.conf.tmpl and nginx/lua; empty means
	// BinDir/../deploy.
	DeployDir string
	// Components selects what to start: process names (redis, broker-a-n0,
	// order…) and groups (namesrv, broker, services, infra, all). Empty
	// means all.
	Components []string
	// ReadyTimeout bounds how long each start stage may take to become ready.
	ReadyTimeout time.Duration

	// Logger receives the launcher's own log (not the components' output).
	Logger *slog.Logger
	// Stdout receives the one line "ready".
	Stdout io.Writer
}

// DefaultOptions returns the defaults of `qlstack up`.
func DefaultOptions() Options {
	return Options{
		BasePort:         20000,
		Groups:           2,
		OrderTimeout:     30 * time.Minute,
		SeckillOrderRate: 500,
		ShipAfter:        10 * time.Second,
		QuizMinAnswerMs:  1000,
		ReadyTimeout:     3 * time.Minute,
	}
}

// RegisterFlags binds the options to fs with the names of `qlstack up`.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Dir, "dir", o.Dir, "directory for the stack's data, configuration and logs (required)")
	fs.IntVar(&o.BasePort, "base-port", o.BasePort, "first port of the stack's range (see the port plan)")
	fs.IntVar(&o.Groups, "groups", o.Groups, "Raft broker groups of 3 (1 or 2)")
	fs.DurationVar(&o.OrderTimeout, "order-timeout", o.OrderTimeout, "how long an order may stay unpaid before it is closed")
	fs.IntVar(&o.SeckillOrderRate, "seckill-order-rate", o.SeckillOrderRate, "seckill winners turned into orders per second")
	fs.DurationVar(&o.ShipAfter, "ship-after", o.ShipAfter, "the warehouse's handling time from payment to handing the parcel to the carrier")
	fs.IntVar(&o.QuizMinAnswerMs, "quiz-min-answer-ms", o.QuizMinAnswerMs, "least ms between fetching a seckill quiz and answering it")
	fs.StringVar(&o.BinDir, "bin-dir", o.BinDir, "directory of mqnamesrv, mqbroker, mqadmin and the services")
	fs.StringVar(&o.DeployDir, "deploy-dir", o.DeployDir, "directory of nginx/gateway.conf.tmpl (default <bin-dir>/../deploy)")
	fs.Func("components", "comma list of what to start: process names or namesrv, broker, services, infra, all (default all)", func(s string) error {
		o.Components = splitList(s)
		return nil
	})
	fs.DurationVar(&o.ReadyTimeout, "ready-timeout", o.ReadyTimeout, "how long each start stage may take to become ready")
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Validate checks every option and names each bad flag with its value. It
// also makes Dir, BinDir and DeployDir absolute and fills DeployDir.
func (o *Options) Validate() error {
	var errs []error
	bad := func(flag string, val any, want string) {
		errs = append(errs, fmt.Errorf("--%s=%v: %s", flag, val, want))
	}
	for _, p := range []*string{&o.Dir, &o.BinDir, &o.DeployDir} {
		if *p != "" {
			if abs, err := filepath.Abs(*p); err == nil {
				*p = abs
			}
		}
	}
	if o.Dir == "" {
		bad("dir", `""`, "required: the directory for the stack's data")
	} else if strings.ContainsAny(o.Dir, " \t\n;{}#\"'$\\") {
		bad("dir", o.Dir, "must not contain whitespace or any of ; { } # \" ' $ \\ (the path goes into nginx.conf, my.cnf and zoo.cfg)")
	}
	if lo, hi := minPortOffset, maxPortOffset; o.BasePort+lo < 1024 || o.BasePort+hi > 65535 {
		bad("base-port", o.BasePort, fmt.Sprintf("the stack uses ports base+%d..base+%d, which must lie within 1024..65535 (want %d..%d)",
			lo, hi, 1024-lo, 65535-hi))
	}
	if o.Groups != 1 && o.Groups != 2 {
		bad("groups", o.Groups, "want 1 or 2 Raft broker groups")
	}
	if o.OrderTimeout < time.Second || o.OrderTimeout > 7*24*time.Hour {
		bad("order-timeout", o.OrderTimeout, "want a duration from 1s to 168h")
	}
	if o.ShipAfter < 0 || o.ShipAfter > 24*time.Hour {
		bad("ship-after", o.ShipAfter, "want a duration from 0s to 24h")
	}
	if o.SeckillOrderRate < 1 || o.SeckillOrderRate > 1_000_000 {
		bad("seckill-order-rate", o.SeckillOrderRate, "want 1..1000000 orders per second")
	}
	if o.QuizMinAnswerMs < 0 || o.QuizMinAnswerMs > 600_000 {
		bad("quiz-min-answer-ms", o.QuizMinAnswerMs, "want 0..600000 ms")
	}
	if o.ReadyTimeout < time.Second {
		bad("ready-timeout", o.ReadyTimeout, "want at least 1s")
	}
	if o.BinDir == "" {
		bad("bin-dir", `""`, "required: the directory of the binaries")
	}
	if o.Groups == 1 || o.Groups == 2 {
		if _, err := selectComponents(o.Components, o.Groups); err != nil {
			bad("components", strings.Join(o.Components, ","), err.Error())
		}
	}
	if o.DeployDir == "" && o.BinDir != "" {
		o.DeployDir = filepath.Join(filepath.Dir(o.BinDir), "deploy")
	}
	return errors.Join(errs...)
}

// componentGroups are the names --components accepts besides process names.
var componentGroups = map[string]func(c *component) bool{
	"all":      func(*component) bool { return true },
	"namesrv":  func(c *component) bool { return c.kind == kindNamesrv },
	"namesrvs": func(c *component) bool { return c.kind == kindNamesrv },
	"broker":   func(c *component) bool { return c.kind == kindBroker },
	"brokers":  func(c *component) bool { return c.kind == kindBroker },
	"services": func(c *component) bool { return c.kind == kindService },
	"infra":    func(c *component) bool { return c.kind != kindService },
}

// selectComponents returns the names of the processes that names select
// for a stack of groups broker groups, in table order.
func selectComponents(names []string, groups int) ([]string, error) {
	table := componentTable(groups)
	if len(names) == 0 {
		names = []string{"all"}
	}
	chosen := map[string]bool{}
	for _, n := range names {
		match, isGroup := componentGroups[n]
		found := false
		for _, c := range table {
			if (isGroup && match(c)) || c.name == n {
				chosen[c.name], found = true, true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown component %q: want process names (%s) or groups (%s)",
				n, strings.Join(processNames(table), ", "), strings.Join(sortedKeys(componentGroups), ", "))
		}
	}
	var out []string
	hasNamesrv, hasBroker := false, false
	for _, c := range table {
		if chosen[c.name] {
			out = append(out, c.name)
			hasNamesrv = hasNamesrv || c.kind == kindNamesrv
			hasBroker = hasBroker || c.kind == kindBroker
		}
	}
	if hasBroker && !hasNamesrv {
		return nil, errors.New("brokers need the NameServers: add namesrv")
	}
	return out, nil
}

func processNames(table []*component) []string {
	out := make([]string, len(table))
	for i, c := range table {
		out[i] = c.name
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
