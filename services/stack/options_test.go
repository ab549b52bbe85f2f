package stack

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func validOptions() Options {
	o := DefaultOptions()
	o.Dir = "/tmp/qlstack-test"
	o.BinDir = "/opt/qianlang/bin"
	return o
}

func TestValidateNamesTheFlagAndValue(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(o *Options)
		want   string // "" means valid
	}{
		{"defaults", func(*Options) {}, ""},
		{"lowest base port", func(o *Options) { o.BasePort = 1023 }, ""},
		{"highest base port", func(o *Options) { o.BasePort = 64573 }, ""},
		{"base port zero", func(o *Options) { o.BasePort = 0 }, "--base-port=0: the stack uses ports base+1..base+962"},
		{"base port too low", func(o *Options) { o.BasePort = 1022 }, "--base-port=1022"},
		{"base port too high", func(o *Options) { o.BasePort = 64574 }, "--base-port=64574"},
		{"base port negative", func(o *Options) { o.BasePort = -5 }, "--base-port=-5"},
		{"no groups", func(o *Options) { o.Groups = 0 }, "--groups=0: want 1 or 2"},
		{"three groups", func(o *Options) { o.Groups = 3 }, "--groups=3: want 1 or 2"},
		{"one group", func(o *Options) { o.Groups = 1 }, ""},
		{"order timeout zero", func(o *Options) { o.OrderTimeout = 0 }, "--order-timeout=0s"},
		{"order timeout below a second", func(o *Options) { o.OrderTimeout = 500 * time.Millisecond }, "--order-timeout=500ms"},
		{"order timeout negative", func(o *Options) { o.OrderTimeout = -time.Minute }, "--order-timeout=-1m0s"},
		{"order timeout of seconds", func(o *Options) { o.OrderTimeout = 3 * time.Second }, ""},
		{"order timeout too long", func(o *Options) { o.OrderTimeout = 200 * time.Hour }, "--order-timeout=200h0m0s"},
		{"ship after negative", func(o *Options) { o.ShipAfter = -time.Second }, "--ship-after=-1s"},
		{"seckill order rate zero", func(o *Options) { o.SeckillOrderRate = 0 }, "--seckill-order-rate=0"},
		{"quiz answer negative", func(o *Options) { o.QuizMinAnswerMs = -1 }, "--quiz-min-answer-ms=-1"},
		{"quiz answer zero", func(o *Options) { o.QuizMinAnswerMs = 0 }, ""},
		{"ready timeout tiny", func(o *Options) { o.ReadyTimeout = time.Millisecond }, "--ready-timeout=1ms"},
		{"no dir", func(o *Options) { o.Dir = "" }, `--dir="": required`},
		{"dir with a space", func(o *Options) { o.Dir = "/tmp/my stack" }, `--dir=/tmp/my stack: must not contain whitespace`},
		{"dir with a dollar", func(o *Options) { o.Dir = "/tmp/$HOME" }, `--dir=/tmp/$HOME: must not contain`},
		{"no bin dir", func(o *Options) { o.BinDir = "" }, `--bin-dir="": required`},
		{"unknown component", func(o *Options) { o.Components = []string{"redis", "kafka"} }, `--components=redis,kafka: unknown component "kafka"`},
		{"broker of a missing group", func(o *Options) { o.Groups = 1; o.Components = []string{"namesrv", "broker-b-n0"} }, `unknown component "broker-b-n0"`},
		{"brokers without namesrv", func(o *Options) { o.Components = []string{"broker"} }, "--components=broker: brokers need the NameServers"},
		{"infrastructure", func(o *Options) {
			o.Components = []string{"mariadb", "redis", "zookeeper", "namesrv", "broker", "nginx"}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := validOptions()
			tc.change(&o)
			err := o.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestValidateReportsEveryBadFlag(t *testing.T) {
	o := validOptions()
	o.BasePort, o.Groups, o.OrderTimeout = 70000, 5, 0
	err := o.Validate()
	require.ErrorContains(t, err, "--base-port=70000")
	require.ErrorContains(t, err, "--groups=5")
	require.ErrorContains(t, err, "--order-timeout=0s")
}

func TestValidateFillsTheDeployDir(t *testing.T) {
	o := validOptions()
	require.NoError(t, o.Validate())
	require.Equal(t, "/opt/qianlang/deploy", o.DeployDir)
	o.DeployDir = "/elsewhere/deploy"
	require.NoError(t, o.Validate())
	require.Equal(t, "/elsewhere/deploy", o.DeployDir)
}

func TestFlags(t *testing.T) {
	o := DefaultOptions()
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"--dir", "/d", "--base-port", "31000", "--groups", "1", "--order-timeout", "5s",
		"--seckill-order-rate", "50", "--ship-after", "3s", "--quiz-min-answer-ms", "10", "--bin-dir", "/b", "--deploy-dir", "/p",
		"--components", "redis, nginx,namesrv"}))
	require.Equal(t, Options{Dir: "/d", BasePort: 31000, Groups: 1, OrderTimeout: 5 * time.Second, SeckillOrderRate: 50,
		ShipAfter: 3 * time.Second, QuizMinAnswerMs: 10, BinDir: "/b", DeployDir: "/p", Components: []string{"redis", "nginx", "namesrv"},
		ReadyTimeout: 3 * time.Minute}, o)

	fs = flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.RegisterFlags(fs)
	require.ErrorContains(t, fs.Parse([]string{"--order-timeout", "soon"}), `invalid value "soon" for flag -order-timeout`)
}

func TestSelectComponents(t *testing.T) {
	for _, tc := range []struct {
		names  []string
		groups int
		want   []string
	}{
		{nil, 1, []string{"mariadb", "redis", "zookeeper", "namesrv-1", "namesrv-2", "broker-a-n0", "broker-a-n1", "broker-a-n2",
			"provider", "order", "inventory", "points", "marketing", "push", "warehouse", "nginx"}},
		{[]string{"infra"}, 2, []string{"mariadb", "redis", "zookeeper", "namesrv-1", "namesrv-2", "broker-a-n0", "broker-a-n1", "broker-a-n2",
			"broker-b-n0", "broker-b-n1", "broker-b-n2", "nginx"}},
		{[]string{"services"}, 1, []string{"provider", "order", "inventory", "points", "marketing", "push", "warehouse"}},
		{[]string{"nginx", "redis", "redis"}, 1, []string{"redis", "nginx"}},
		{[]string{"namesrv-1", "brokers"}, 1, []string{"namesrv-1", "broker-a-n0", "broker-a-n1", "broker-a-n2"}},
	} {
		got, err := selectComponents(tc.names, tc.groups)
		require.NoError(t, err, "%v", tc.names)
		require.Equal(t, tc.want, got, "%v", tc.names)
	}
}

func TestPortPlan(t *testing.T) {
	for _, groups := range []int{1, 2} {
		plan := PortPlan(20000, groups)
		seen := map[int]string{}
		for _, p := range plan {
			require.NotContains(t, seen, p.Port, "%s and %s share a port", seen[p.Port], p.Name)
			seen[p.Port] = p.Name
			require.GreaterOrEqual(t, p.Port, 20000+minPortOffset)
			require.LessOrEqual(t, p.Port, 20000+maxPortOffset)
		}
	}
	byName := map[string]int{}
	for _, p := range PortPlan(20000, 2) {
		byName[p.Name] = p.Port
	}
	for name, port := range map[string]int{
		"namesrv-1": 20001, "namesrv-2": 20002, "console (reserved)": 20070, "nginx": 20080, "provider": 20090,
		"order": 20101, "inventory": 20102, "points": 20103, "marketing": 20104, "push": 20105, "warehouse": 20106,
		"seckill (reserved)": 20107, "analytics (reserved)": 20108, "qlcanal-1 (reserved)": 20109, "qlcanal-2 (reserved)": 20110,
		"zookeeper": 20181, "mariadb": 20306, "redis": 20379,
		"broker-a-n0": 20911, "broker-a-n1": 20921, "broker-a-n2": 20931,
		"broker-b-n0": 20941, "broker-b-n1": 20951, "broker-b-n2": 20961,
		"broker-a-n0 raft": 20912, "broker-b-n2 raft": 20962,
	} {
		require.Equal(t, port, byName[name], name)
	}
}
