// Package cli implements mqadmin's subcommands.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"qianlang.io/mq/admin"
	"qianlang.io/mq/protocol"
)

// command is one subcommand.
type command struct {
	name  string
	usage string
	run   func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error
}

// env is what a subcommand works with.
type env struct {
	out     io.Writer
	jsonOut bool
	namesrv string
	ak, sk  string // ACL credentials
	client  *admin.Client
	// oArg is -o's value when it is not an output format: updateTopic's
	// order flag and consumeMessage's offset use -o, as in Apache's
	// mqadmin.
	oArg string
}

// outFlag is -o: "json" or "table" choose the output; any other value is
// left in oArg for the subcommands that give -o another meaning.
type outFlag struct{ e *env }

func (o outFlag) String() string { return "" }
func (o outFlag) Set(v string) error {
	switch v {
	case "json":
		o.e.jsonOut = true
	case "table":
		o.e.jsonOut = false
	default:
		o.e.oArg = v
	}
	return nil
}

var commands = []command{
	{"clusterList", "list clusters, broker groups and their figures", clusterList},
	{"brokerStatus", "show a broker's runtime figures", brokerStatus},
	{"getBrokerConfig", "show a broker's configuration", getBrokerConfig},
	{"topicList", "list topics", topicList},
	{"topicRoute", "show a topic's route", topicRoute},
	{"topicStatus", "show each queue's offsets of a topic", topicStatus},
	{"updateTopic", "create or update a topic on a broker or a whole cluster", updateTopic},
	{"deleteTopic", "delete a topic from a cluster and the NameServers", deleteTopic},
	{"updateSubGroup", "create or update a subscription group", updateSubGroup},
	{"deleteSubGroup", "delete a subscription group", deleteSubGroup},
	{"consumerProgress", "show consumer groups' progress and lag", consumerProgress},
	{"consumerConnection", "show a consumer group's online clients", consumerConnection},
	{"resetOffsetByTime", "move a consumer group's offsets to a time (rewind or skip)", resetOffsetByTime},
	{"sendMessage", "send a message", sendMessage},
	{"consumeMessage", "print a topic's messages (by queue, offset or time)", consumeMessage},
	{"queryMsgById", "show a message by its offset message id", queryMsgByID},
	{"queryMsgByKey", "find a topic's messages by key", queryMsgByKey},
	{"queryMsgByUniqueKey", "find a message by its message id (UNIQ_KEY)", queryMsgByUniqueKey},
	{"queryMsgTraceById", "show a message's trace records", queryMsgTraceByID},
	{"dlqList", "print a consumer group's dead letters", dlqList},
	{"dlqResend", "send a group's dead letters back to it", dlqResend},
}

// optionalO are the subcommands whose -o means something else too.
var optionalO = map[string]bool{"updateTopic": true, "consumeMessage": true}

// Run executes one mqadmin invocation; args start with the subcommand.
func Run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" {
		printUsage(out)
		return nil
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		fs.SetOutput(out)
		e := &env{out: out}
		fs.StringVar(&e.namesrv, "n", "", "NameServer addresses, ip:port;ip:port")
		fs.BoolVar(&e.jsonOut, "json", false, "print JSON instead of a table (same as -o json)")
		fs.Var(outFlag{e}, "o", "output: json or table")
		fs.StringVar(&e.ak, "ak", os.Getenv("MQADMIN_ACCESS_KEY"), "ACL access key (env MQADMIN_ACCESS_KEY)")
		fs.StringVar(&e.sk, "sk", os.Getenv("MQADMIN_SECRET_KEY"), "ACL secret key (env MQADMIN_SECRET_KEY)")
		return c.run(ctx, e, fs, args[1:])
	}
	printUsage(out)
	return fmt.Errorf("unknown subcommand %q", args[0])
}

func printUsage(out io.Writer) {
	fmt.Fprintln(out, "usage: mqadmin <command> [-n namesrvAddr] [flags] [-o json] [-ak accessKey -sk secretKey]")
	fmt.Fprintln(out, "commands:")
	for _, c := range commands {
		fmt.Fprintf(out, "  %-18s %s\n", c.name, c.usage)
	}
}

// parse parses the flags, checks that the required ones are set, and
// connects. A required flag's usage names its value in backquotes.
func (e *env) parse(fs *flag.FlagSet, args []string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	var missing []string
	for _, name := range required {
		if f := fs.Lookup(name); f != nil && f.Value.String() == "" {
			what, _ := flag.UnquoteUsage(f)
			missing = append(missing, "-"+name+" "+what)
		}
	}
	switch len(missing) {
	case 0:
	case 1:
		return fmt.Errorf("%s: %s is required", fs.Name(), missing[0])
	default:
		return fmt.Errorf("%s: %s are required", fs.Name(), strings.Join(missing, ", "))
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	if e.oArg != "" && !optionalO[fs.Name()] {
		return fmt.Errorf("%s: -o %s: want json or table", fs.Name(), e.oArg)
	}
	c, err := admin.New(e.namesrv)
	if err != nil {
		return err
	}
	if e.ak != "" {
		c.SetCredentials(e.ak, e.sk)
	}
	e.client = c
	return nil
}

// start parses the flags (see parse) and returns the context a command
// runs in, bounded by the usual timeout, and what to call when it ends.
func (e *env) start(ctx context.Context, fs *flag.FlagSet, args []string, required ...string) (context.Context, func(), error) {
	if err := e.parse(fs, args, required...); err != nil {
		return ctx, func() {}, err
	}
	ctx, cancel := withTimeout(ctx)
	return ctx, func() { cancel(); e.close() }, nil
}

func (e *env) close() {
	if e.client != nil {
		_ = e.client.Close()
	}
}

// print writes v as JSON, or rows as an aligned table.
func (e *env) print(v any, header []string, rows [][]string) error {
	if e.jsonOut {
		enc := json.NewEncoder(e.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	w := tabwriter.NewWriter(e.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "#"+strings.Join(header, "\t#"))
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	return w.Flush()
}

func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 10*time.Second)
}

type brokerRow struct {
	Cluster    string            `json:"cluster"`
	BrokerName string            `json:"brokerName"`
	BrokerID   int64             `json:"brokerId"`
	Addr       string            `json:"addr"`
	Runtime    map[string]string `json:"runtime,omitempty"`
	Error      string            `json:"error,omitempty"`
}

func clusterList(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	cluster := fs.String("c", "", "only this cluster")
	ctx, done, err := e.start(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	ci, err := e.client.ClusterInfo(ctx)
	if err != nil {
		return err
	}
	var list []brokerRow
	for _, cl := range sortedKeys(ci.ClusterAddrTable) {
		if *cluster != "" && cl != *cluster {
			continue
		}
		for _, name := range ci.ClusterAddrTable[cl] {
			bd := ci.BrokerAddrTable[name]
			for _, id := range sortedIDs(bd.BrokerAddrs) {
				r := brokerRow{Cluster: cl, BrokerName: name, BrokerID: id, Addr: bd.BrokerAddrs[id]}
				if rt, err := e.client.BrokerRuntime(ctx, r.Addr); err != nil {
					r.Error = err.Error()
				} else {
					r.Runtime = rt
				}
				list = append(list, r)
			}
		}
	}
	rows := make([][]string, 0, len(list))
	for _, r := range list {
		rt := r.Runtime
		if rt == nil {
			rt = map[string]string{"writable": "unreachable"}
		}
		rows = append(rows, []string{r.Cluster, r.BrokerName, fmt.Sprint(r.BrokerID), r.Addr, orDash(rt["brokerVersionDesc"]),
			orDash(rt["msgPutTotalTodayNow"]), orDash(rt["msgGetTotalTodayNow"]), orDash(rt["commitLogMaxOffset"]),
			orDash(rt["commitLogDiskRatio"]), orDash(rt["writable"]),
			orDash(rt["dLegerSelfId"]), orDash(memberRole(rt)), orDash(rt["dLegerTerm"]), orDash(rt["dLegerCommitIndex"]), orDash(rt["dLegerAppliedIndex"])})
	}
	return e.print(list, []string{"Cluster Name", "Broker Name", "BID", "Addr", "Version", "Put Total", "Get Total", "CommitLog Max", "Disk Ratio", "Writable",
		"Member", "Role", "Term", "Commit", "Applied"}, rows)
}

// memberRole is a group member's role; a leader that has not yet applied
// an entry of its own term (and so does not take writes yet) shows as
// settling.
func memberRole(rt map[string]string) string {
	if rt["dLegerRole"] == "LEADER" && rt["dLegerSettled"] == "false" {
		return "LEADER (settling)"
	}
	return rt["dLegerRole"]
}

func topicList(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	cluster := fs.String("c", "", "only topics of this cluster")
	ctx, done, err := e.start(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	topics, err := e.client.TopicList(ctx, *cluster)
	if err != nil {
		return err
	}
	if e.jsonOut {
		return e.print(topics, nil, nil)
	}
	for _, t := range topics {
		fmt.Fprintln(e.out, t)
	}
	return nil
}

func updateTopic(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	topic := fs.String("t", "", "`topic` name (required)")
	brokerAddr := fs.String("b", "", "create on this broker address")
	cluster := fs.String("c", "", "create on every broker of this cluster")
	read := fs.Int("r", 8, "read queue count")
	write := fs.Int("w", 8, "write queue count")
	perm := fs.Int("p", 6, "permission: 2 write, 4 read, 6 both")
	if err := e.parse(fs, args, "t"); err != nil {
		return err
	}
	order := new(bool)
	switch e.oArg {
	case "", "false":
	case "true":
		*order = true
	default:
		return fmt.Errorf("updateTopic: -o %s: want true or false (ordered topic), or json or table", e.oArg)
	}
	defer e.close()
	if (*brokerAddr == "") == (*cluster == "") {
		return errors.New("updateTopic: give exactly one of -b brokerAddr and -c cluster")
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	tc := protocol.TopicConfig{TopicName: *topic, ReadQueueNums: *read, WriteQueueNums: *write, Perm: *perm, Order: *order, TopicFilterType: "SINGLE_TAG"}
	addrs := []string{*brokerAddr}
	if *cluster != "" {
		masters, err := e.client.MasterAddrs(ctx, *cluster)
		if err != nil {
			return err
		}
		addrs = addrs[:0]
		for _, bd := range masters {
			addrs = append(addrs, bd.MasterAddr())
		}
	}
	for _, a := range addrs {
		if err := e.client.CreateTopic(ctx, a, tc); err != nil {
			return fmt.Errorf("create topic %s on %s: %w", *topic, a, err)
		}
		if !e.jsonOut {
			fmt.Fprintf(e.out, "create topic to %s success.\n", a)
		}
	}
	if e.jsonOut {
		return e.print(map[string]any{"brokers": addrs, "topicConfig": tc}, nil, nil)
	}
	fmt.Fprintf(e.out, "TopicConfig [topicName=%s, readQueueNums=%d, writeQueueNums=%d, perm=%s, order=%v]\n", tc.TopicName, tc.ReadQueueNums, tc.WriteQueueNums, protocol.PermString(tc.Perm), tc.Order)
	return nil
}

func topicStatus(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	topic := fs.String("t", "", "`topic` name (required)")
	ctx, done, err := e.start(ctx, fs, args, "t")
	if err != nil {
		return err
	}
	defer done()
	rd, err := e.client.Route(ctx, *topic)
	if err != nil {
		return err
	}
	var all []protocol.QueueStats
	for _, bd := range rd.BrokerDatas {
		if bd.MasterAddr() == "" {
			continue
		}
		st, err := e.client.TopicStats(ctx, bd.MasterAddr(), *topic)
		if err != nil {
			return err
		}
		all = append(all, st.Queues...)
	}
	rows := make([][]string, 0, len(all))
	for _, q := range all {
		rows = append(rows, []string{q.BrokerName, fmt.Sprint(q.QueueID), fmt.Sprint(q.MinOffset), fmt.Sprint(q.MaxOffset), formatMillis(q.LastUpdateTimestamp)})
	}
	return e.print(all, []string{"Broker Name", "QID", "Min Offset", "Max Offset", "Last Updated"}, rows)
}

func consumerProgress(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	group := fs.String("g", "", "consumer group (omit to list all groups)")
	topic := fs.String("t", "", "only this topic")
	ctx, done, err := e.start(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	masters, err := e.client.MasterAddrs(ctx, "")
	if err != nil {
		return err
	}
	if *group == "" {
		return groupSummary(ctx, e, masters)
	}
	var all []protocol.QueueConsumeStats
	for _, bd := range masters {
		st, err := e.client.ConsumeStats(ctx, bd.MasterAddr(), *group, *topic)
		if err != nil {
			return err
		}
		all = append(all, st.Queues...)
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.BrokerName != b.BrokerName {
			return a.BrokerName < b.BrokerName
		}
		return a.QueueID < b.QueueID
	})
	var diff int64
	rows := make([][]string, 0, len(all))
	for _, q := range all {
		d := q.BrokerOffset - q.ConsumerOffset
		diff += d
		rows = append(rows, []string{q.Topic, q.BrokerName, fmt.Sprint(q.QueueID), fmt.Sprint(q.BrokerOffset), fmt.Sprint(q.ConsumerOffset), fmt.Sprint(d), formatMillis(q.LastTimestamp)})
	}
	if e.jsonOut {
		return e.print(map[string]any{"group": *group, "queues": all, "diffTotal": diff}, nil, nil)
	}
	if err := e.print(nil, []string{"Topic", "Broker Name", "QID", "Broker Offset", "Consumer Offset", "Diff", "LastTime"}, rows); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "\nDiff Total: %d\n", diff)
	return nil
}

type groupRow struct {
	Group     string `json:"group"`
	Count     int    `json:"onlineClients"`
	Type      string `json:"consumeType"`
	Model     string `json:"messageModel"`
	DiffTotal int64  `json:"diffTotal"`
}

func groupSummary(ctx context.Context, e *env, masters []protocol.BrokerData) error {
	byGroup := map[string]*groupRow{}
	for _, bd := range masters {
		w, err := e.client.SubscriptionGroups(ctx, bd.MasterAddr())
		if err != nil {
			return err
		}
		for name := range w.SubscriptionGroupTable {
			r := byGroup[name]
			if r == nil {
				r = &groupRow{Group: name}
				byGroup[name] = r
			}
			if st, err := e.client.ConsumeStats(ctx, bd.MasterAddr(), name, ""); err == nil {
				for _, q := range st.Queues {
					r.DiffTotal += q.BrokerOffset - q.ConsumerOffset
				}
			}
			if cc, err := e.client.ConsumerConnection(ctx, bd.MasterAddr(), name); err == nil {
				r.Count = max(r.Count, len(cc.ConnectionSet))
				r.Type, r.Model = cc.ConsumeType, cc.MessageModel
			}
		}
	}
	var list []groupRow
	for _, name := range sortedKeys(byGroup) {
		list = append(list, *byGroup[name])
	}
	rows := make([][]string, 0, len(list))
	for _, r := range list {
		rows = append(rows, []string{r.Group, fmt.Sprint(r.Count), orDash(r.Type), orDash(r.Model), fmt.Sprint(r.DiffTotal)})
	}
	return e.print(list, []string{"Group", "Count", "Type", "Model", "Diff Total"}, rows)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedIDs(m map[int64]string) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func formatMillis(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	return time.UnixMilli(ms).Format("2006-01-02 15:04:05")
}
