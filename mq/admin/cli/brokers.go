package cli

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strconv"

	"qianlang.io/mq/protocol"
)

// brokerAddrs resolves -b (one address) or -c (every master of a cluster).
func (e *env) brokerAddrs(ctx context.Context, name, brokerAddr, cluster string) ([]string, error) {
	if (brokerAddr == "") == (cluster == "") {
		return nil, fmt.Errorf("%s: give exactly one of -b brokerAddr and -c cluster", name)
	}
	if brokerAddr != "" {
		return []string{brokerAddr}, nil
	}
	masters, err := e.client.MasterAddrs(ctx, cluster)
	if err != nil {
		return nil, err
	}
	if len(masters) == 0 {
		return nil, fmt.Errorf("%s: cluster %s has no master", name, cluster)
	}
	var out []string
	for _, bd := range masters {
		out = append(out, bd.MasterAddr())
	}
	return out, nil
}

// kvTable prints per-broker key/value tables.
func (e *env) kvTable(all map[string]map[string]string) error {
	var rows [][]string
	for _, addr := range sortedKeys(all) {
		for _, k := range sortedKeys(all[addr]) {
			rows = append(rows, []string{addr, k, all[addr][k]})
		}
	}
	return e.print(all, []string{"Broker", "Key", "Value"}, rows)
}

func brokerStatus(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	return brokerKV(ctx, e, fs, args, "brokerStatus", e.runtime)
}

func getBrokerConfig(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	return brokerKV(ctx, e, fs, args, "getBrokerConfig", e.config)
}

func (e *env) runtime(ctx context.Context, addr string) (map[string]string, error) {
	return e.client.BrokerRuntime(ctx, addr)
}

func (e *env) config(ctx context.Context, addr string) (map[string]string, error) {
	return e.client.BrokerConfig(ctx, addr)
}

func brokerKV(ctx context.Context, e *env, fs *flag.FlagSet, args []string, name string, get func(context.Context, string) (map[string]string, error)) error {
	brokerAddr := fs.String("b", "", "broker address")
	cluster := fs.String("c", "", "every master of this cluster")
	ctx, done, err := e.start(ctx, fs, args)
	if err != nil {
		return err
	}
	defer done()
	addrs, err := e.brokerAddrs(ctx, name, *brokerAddr, *cluster)
	if err != nil {
		return err
	}
	all := map[string]map[string]string{}
	for _, a := range addrs {
		kv, err := get(ctx, a)
		if err != nil {
			return err
		}
		all[a] = kv
	}
	return e.kvTable(all)
}

func topicRoute(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
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
	if e.jsonOut {
		return e.print(rd, nil, nil)
	}
	var rows [][]string
	for _, bd := range rd.BrokerDatas {
		for _, id := range sortedIDs(bd.BrokerAddrs) {
			rows = append(rows, []string{"broker", bd.Cluster, bd.BrokerName, fmt.Sprint(id), bd.BrokerAddrs[id], "", "", ""})
		}
	}
	for _, q := range rd.QueueDatas {
		rows = append(rows, []string{"queues", "", q.BrokerName, "", "", fmt.Sprint(q.ReadQueueNums), fmt.Sprint(q.WriteQueueNums), protocol.PermString(q.Perm)})
	}
	return e.print(nil, []string{"Kind", "Cluster", "Broker Name", "BID", "Addr", "Read Queues", "Write Queues", "Perm"}, rows)
}

func deleteTopic(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	topic := fs.String("t", "", "`topic` name (required)")
	cluster := fs.String("c", "", "`cluster` to delete it from (required)")
	ctx, done, err := e.start(ctx, fs, args, "t", "c")
	if err != nil {
		return err
	}
	defer done()
	addrs, err := e.brokerAddrs(ctx, "deleteTopic", "", *cluster)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if err := e.client.DeleteTopic(ctx, a, *topic); err != nil {
			return fmt.Errorf("delete topic %s on %s: %w", *topic, a, err)
		}
	}
	if err := e.client.DeleteTopicInNamesrvs(ctx, *topic); err != nil {
		return fmt.Errorf("delete topic %s on the NameServers: %w", *topic, err)
	}
	return e.done(map[string]any{"topic": *topic, "brokers": addrs}, "delete topic [%s] from cluster [%s] success.", *topic, *cluster)
}

// done reports a successful change: v as JSON, or a sentence.
func (e *env) done(v any, format string, args ...any) error {
	if e.jsonOut {
		return e.print(v, nil, nil)
	}
	fmt.Fprintf(e.out, format+"\n", args...)
	return nil
}

func updateSubGroup(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	group := fs.String("g", "", "`group` name (required)")
	brokerAddr := fs.String("b", "", "on this broker address")
	cluster := fs.String("c", "", "on every master of this cluster")
	g := protocol.DefaultSubscriptionGroup("")
	fs.BoolVar(&g.ConsumeEnable, "s", g.ConsumeEnable, "consume enabled")
	fs.BoolVar(&g.ConsumeFromMinEnable, "m", g.ConsumeFromMinEnable, "consume from the minimum offset when new")
	fs.BoolVar(&g.ConsumeBroadcastEnable, "d", g.ConsumeBroadcastEnable, "broadcasting allowed")
	fs.IntVar(&g.RetryQueueNums, "q", g.RetryQueueNums, "retry queue count")
	fs.IntVar(&g.RetryMaxTimes, "r", g.RetryMaxTimes, "max reconsume times before the dead-letter queue")
	fs.Int64Var(&g.BrokerID, "i", g.BrokerID, "broker id consumers read from")
	fs.Int64Var(&g.WhichBrokerWhenConsumeSlowly, "w", g.WhichBrokerWhenConsumeSlowly, "broker id for slow consumers")
	fs.BoolVar(&g.NotifyConsumerIdsChangedEnable, "a", g.NotifyConsumerIdsChangedEnable, "notify consumers of membership changes")
	if err := e.parse(fs, args, "g"); err != nil {
		return err
	}
	defer e.close()
	if g.RetryMaxTimes < 0 || g.RetryQueueNums < 0 {
		return fmt.Errorf("updateSubGroup: -r %d / -q %d: want non-negative numbers", g.RetryMaxTimes, g.RetryQueueNums)
	}
	g.GroupName = *group
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	addrs, err := e.brokerAddrs(ctx, "updateSubGroup", *brokerAddr, *cluster)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if err := e.client.UpdateSubGroup(ctx, a, g); err != nil {
			return fmt.Errorf("update subscription group %s on %s: %w", *group, a, err)
		}
	}
	return e.done(map[string]any{"brokers": addrs, "groupConfig": g}, "update subscription group [%s] on %v success.", *group, addrs)
}

func deleteSubGroup(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	group := fs.String("g", "", "`group` name (required)")
	brokerAddr := fs.String("b", "", "on this broker address")
	cluster := fs.String("c", "", "on every master of this cluster")
	removeOffset := fs.Bool("r", false, "remove the group's offsets too")
	ctx, done, err := e.start(ctx, fs, args, "g")
	if err != nil {
		return err
	}
	defer done()
	addrs, err := e.brokerAddrs(ctx, "deleteSubGroup", *brokerAddr, *cluster)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if err := e.client.DeleteSubGroup(ctx, a, *group, *removeOffset); err != nil {
			return fmt.Errorf("delete subscription group %s on %s: %w", *group, a, err)
		}
	}
	return e.done(map[string]any{"group": *group, "brokers": addrs}, "delete subscription group [%s] from %v success.", *group, addrs)
}

func consumerConnection(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	group := fs.String("g", "", "consumer `group` (required)")
	ctx, done, err := e.start(ctx, fs, args, "g")
	if err != nil {
		return err
	}
	defer done()
	masters, err := e.client.MasterAddrs(ctx, "")
	if err != nil {
		return err
	}
	var found *protocol.ConsumerConnection
	var lastErr error
	for _, bd := range masters {
		cc, err := e.client.ConsumerConnection(ctx, bd.MasterAddr(), *group)
		if err != nil {
			lastErr = err
			continue
		}
		found = &cc
		break
	}
	if found == nil {
		return fmt.Errorf("consumerConnection: group %s is not online: %w", *group, lastErr)
	}
	if e.jsonOut {
		return e.print(found, nil, nil)
	}
	var rows [][]string
	for i, c := range found.ConnectionSet {
		rows = append(rows, []string{strconv.Itoa(i + 1), c.ClientID, c.ClientAddr, c.Language, strconv.Itoa(c.Version)})
	}
	if err := e.print(nil, []string{"#", "ClientId", "ClientAddr", "Language", "Version"}, rows); err != nil {
		return err
	}
	fmt.Fprintln(e.out)
	var subs [][]string
	for _, t := range sortedKeys(found.SubscriptionTable) {
		sd := found.SubscriptionTable[t]
		subs = append(subs, []string{t, sd.SubString, orDash(sd.ExpressionType)})
	}
	sort.Slice(subs, func(i, j int) bool { return subs[i][0] < subs[j][0] })
	if err := e.print(nil, []string{"Topic", "SubExpression", "Type"}, subs); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "\nConsumeType: %s\nMessageModel: %s\nConsumeFromWhere: %s\n", found.ConsumeType, found.MessageModel, found.ConsumeFromWhere)
	return nil
}
