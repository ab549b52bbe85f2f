package cli

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"time"

	"qianlang.io/mq/admin"
	"qianlang.io/mq/message"
	"qianlang.io/mq/protocol"
)

// msgView is a message as mqadmin shows it.
type msgView struct {
	Topic          string            `json:"topic"`
	QueueID        int32             `json:"queueId"`
	QueueOffset    int64             `json:"queueOffset"`
	MsgID          string            `json:"msgId"`
	OffsetMsgID    string            `json:"offsetMsgId"`
	Tags           string            `json:"tags,omitempty"`
	Keys           string            `json:"keys,omitempty"`
	BornHost       string            `json:"bornHost"`
	BornTimestamp  string            `json:"bornTimestamp"`
	StoreHost      string            `json:"storeHost"`
	StoreTimestamp string            `json:"storeTimestamp"`
	ReconsumeTimes int32             `json:"reconsumeTimes"`
	Properties     map[string]string `json:"properties"`
	Body           string            `json:"body"`
}

func view(m message.Message) msgView {
	props := message.ParseProperties(m.Properties)
	id := message.OffsetMsgID(m.StoreHost, m.PhysicalOffset)
	v := msgView{
		Topic: m.Topic, QueueID: m.QueueID, QueueOffset: m.QueueOffset, MsgID: id, OffsetMsgID: id,
		Tags: props[message.PropTags], Keys: props[message.PropKeys],
		BornHost: m.BornHost.String(), BornTimestamp: formatMillisFull(m.BornTimestamp),
		StoreHost: m.StoreHost.String(), StoreTimestamp: formatMillisFull(m.StoreTimestamp),
		ReconsumeTimes: m.ReconsumeTimes, Properties: props, Body: string(m.Body),
	}
	if u := props[message.PropUniqKey]; u != "" {
		v.MsgID = u
	}
	return v
}

func formatMillisFull(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	return time.UnixMilli(ms).Format("2006-01-02 15:04:05.000")
}

// printMessages prints messages as a table, or JSON.
func (e *env) printMessages(msgs []message.Message) error {
	views := make([]msgView, len(msgs))
	rows := make([][]string, len(msgs))
	for i, m := range msgs {
		v := view(m)
		views[i] = v
		body := v.Body
		if len(body) > 60 {
			body = body[:57] + "..."
		}
		rows[i] = []string{v.MsgID, v.Topic, fmt.Sprint(v.QueueID), fmt.Sprint(v.QueueOffset), orDash(v.Tags), orDash(v.Keys), v.StoreTimestamp, strconv.Quote(body)}
	}
	return e.print(views, []string{"Message ID", "Topic", "QID", "Offset", "Tags", "Keys", "Store Time", "Body"}, rows)
}

// printDetail prints one message in full.
func (e *env) printDetail(m message.Message) error {
	v := view(m)
	if e.jsonOut {
		return e.print(v, nil, nil)
	}
	rows := [][]string{
		{"Topic:", v.Topic}, {"Tags:", orDash(v.Tags)}, {"Keys:", orDash(v.Keys)},
		{"Queue ID:", fmt.Sprint(v.QueueID)}, {"Queue Offset:", fmt.Sprint(v.QueueOffset)},
		{"Message ID:", v.MsgID}, {"Offset Message ID:", v.OffsetMsgID},
		{"Born Host:", v.BornHost}, {"Born Timestamp:", v.BornTimestamp},
		{"Store Host:", v.StoreHost}, {"Store Timestamp:", v.StoreTimestamp},
		{"Reconsume Times:", fmt.Sprint(v.ReconsumeTimes)},
	}
	for _, k := range sortedKeys(v.Properties) {
		rows = append(rows, []string{"Property " + k + ":", v.Properties[k]})
	}
	rows = append(rows, []string{"Body:", strconv.Quote(v.Body)})
	w := e.out
	for _, r := range rows {
		fmt.Fprintf(w, "%-22s %s\n", r[0], r[1])
	}
	return nil
}

// parseTime reads a time flag: Unix ms, "now", or
// yyyy-MM-dd#HH:mm:ss:SSS (Apache's format) in local time.
func parseTime(flagName, s string) (int64, error) {
	switch {
	case s == "":
		return -1, nil
	case s == "now":
		return time.Now().UnixMilli(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	t, err := time.ParseInLocation("2006-01-02#15:04:05:000", s, time.Local)
	if err != nil {
		return 0, fmt.Errorf("%s %q: want Unix milliseconds, now, or yyyy-MM-dd#HH:mm:ss:SSS", flagName, s)
	}
	return t.UnixMilli(), nil
}

func sendMessage(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	topic := fs.String("t", "", "`topic` (required)")
	body := fs.String("p", "", "message `body` (required)")
	keys := fs.String("k", "", "message keys, space-separated")
	tags := fs.String("c", "", "message tag")
	brokerName := fs.String("b", "", "send to this broker group")
	queueID := fs.Int("i", -1, "send to this queue (with -b)")
	ctx, done, err := e.start(ctx, fs, args, "t", "p")
	if err != nil {
		return err
	}
	defer done()
	rd, err := e.client.Route(ctx, *topic)
	if err != nil {
		return err
	}
	var addr string
	for _, bd := range rd.BrokerDatas {
		if (*brokerName == "" || bd.BrokerName == *brokerName) && bd.MasterAddr() != "" {
			addr = bd.MasterAddr()
			break
		}
	}
	if addr == "" {
		return fmt.Errorf("sendMessage: no master of broker %q routes topic %s", *brokerName, *topic)
	}
	r, err := e.client.Send(ctx, addr, admin.Outgoing{Topic: *topic, Body: []byte(*body), Tags: *tags, Keys: *keys, QueueID: *queueID})
	if err != nil {
		return err
	}
	return e.print(r, []string{"Broker", "QID", "Queue Offset", "Message ID", "Offset Message ID", "Send Result"},
		[][]string{{r.Broker, r.QueueID, r.QueueOffset, r.MsgID, r.OffsetMsgID, "SEND_OK"}})
}

// readRange reads messages of a topic's queues: from an offset, or from
// the first message stored at or after begin, up to count messages or
// past end (Unix ms; -1: no limit).
func (e *env) readRange(ctx context.Context, topic, brokerName string, queueID int, offset int64, begin, end int64, count int) ([]message.Message, error) {
	rd, err := e.client.Route(ctx, topic)
	if err != nil {
		return nil, err
	}
	queues := map[string]int{}
	for _, q := range rd.QueueDatas {
		queues[q.BrokerName] = max(q.ReadQueueNums, q.WriteQueueNums)
	}
	var out []message.Message
	for _, bd := range rd.BrokerDatas {
		if brokerName != "" && bd.BrokerName != brokerName || bd.MasterAddr() == "" {
			continue
		}
		for q := range queues[bd.BrokerName] {
			if queueID >= 0 && q != queueID {
				continue
			}
			minOff, maxOff, at, err := e.client.QueueOffsets(ctx, bd.MasterAddr(), topic, q, begin)
			if err != nil {
				return out, err
			}
			from := max(minOff, at)
			if offset >= 0 {
				from = max(minOff, offset)
			}
			for from < maxOff && len(out) < count {
				msgs, next, err := e.client.Pull(ctx, bd.MasterAddr(), topic, q, from, min(32, count-len(out)))
				if err != nil {
					return out, err
				}
				for _, m := range msgs {
					if end >= 0 && m.StoreTimestamp > end {
						next = maxOff
						break
					}
					out = append(out, m)
				}
				if next <= from {
					break
				}
				from = next
			}
		}
	}
	return out, nil
}

func consumeMessage(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	topic := fs.String("t", "", "`topic` (required)")
	brokerName := fs.String("b", "", "only this broker group")
	queueID := fs.Int("i", -1, "only this queue")
	count := fs.Int("c", 128, "at most this many messages")
	begin := fs.String("s", "", "from this store time (Unix ms, now, or yyyy-MM-dd#HH:mm:ss:SSS)")
	end := fs.String("e", "", "up to this store time")
	if err := e.parse(fs, args, "t"); err != nil {
		return err
	}
	defer e.close()
	offset := int64(-1)
	if e.oArg != "" {
		n, err := strconv.ParseInt(e.oArg, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("consumeMessage: -o %s: want a queue offset, or json or table", e.oArg)
		}
		offset = n
	}
	b, err := parseTime("-s", *begin)
	if err != nil {
		return fmt.Errorf("consumeMessage: %w", err)
	}
	en, err := parseTime("-e", *end)
	if err != nil {
		return fmt.Errorf("consumeMessage: %w", err)
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	msgs, err := e.readRange(ctx, *topic, *brokerName, *queueID, offset, b, en, *count)
	if err != nil {
		return err
	}
	return e.printMessages(msgs)
}

func queryMsgByID(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	id := fs.String("i", "", "`msgId`: offset message id (required)")
	ctx, done, err := e.start(ctx, fs, args, "i")
	if err != nil {
		return err
	}
	defer done()
	m, err := e.client.ViewMessage(ctx, *id)
	if err != nil {
		return err
	}
	return e.printDetail(m)
}

func queryMsgByKey(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	topic := fs.String("t", "", "`topic` (required)")
	key := fs.String("k", "", "`key` (required)")
	begin := fs.String("b", "", "stored at or after (Unix ms, now, or yyyy-MM-dd#HH:mm:ss:SSS; default: the beginning)")
	end := fs.String("e", "", "stored at or before (default: now)")
	maxNum := fs.Int("m", 64, "at most this many messages")
	if err := e.parse(fs, args, "t", "k"); err != nil {
		return err
	}
	defer e.close()
	b, err := parseTime("-b", *begin)
	if err != nil {
		return fmt.Errorf("queryMsgByKey: %w", err)
	}
	en, err := parseTime("-e", *end)
	if err != nil {
		return fmt.Errorf("queryMsgByKey: %w", err)
	}
	if en < 0 {
		en = time.Now().UnixMilli()
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	msgs, err := e.client.QueryByKey(ctx, *topic, *key, *maxNum, max(b, 0), en, false)
	if err != nil {
		return err
	}
	return e.printMessages(msgs)
}

func queryMsgByUniqueKey(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	topic := fs.String("t", "", "`topic` (required)")
	id := fs.String("i", "", "`msgId`: message id, the UNIQ_KEY (required)")
	ctx, done, err := e.start(ctx, fs, args, "t", "i")
	if err != nil {
		return err
	}
	defer done()
	msgs, err := e.client.QueryByKey(ctx, *topic, *id, 32, 0, time.Now().UnixMilli(), true)
	if err != nil {
		return err
	}
	if len(msgs) == 0 {
		return fmt.Errorf("queryMsgByUniqueKey: no message %s in topic %s", *id, *topic)
	}
	return e.printDetail(msgs[len(msgs)-1])
}

func queryMsgTraceByID(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	id := fs.String("i", "", "`msgId`: message id (required)")
	traceTopic := fs.String("t", "RMQ_SYS_TRACE_TOPIC", "trace topic")
	ctx, done, err := e.start(ctx, fs, args, "i")
	if err != nil {
		return err
	}
	defer done()
	msgs, err := e.client.QueryByKey(ctx, *traceTopic, *id, 64, 0, time.Now().UnixMilli(), false)
	if err != nil {
		return err
	}
	var recs []admin.TraceRecord
	for _, m := range msgs {
		for _, r := range admin.ParseTrace(m.Body) {
			if r.Fields["msgId"] == *id {
				recs = append(recs, r)
			}
		}
	}
	if len(recs) == 0 {
		return fmt.Errorf("queryMsgTraceById: no trace of message %s in %s", *id, *traceTopic)
	}
	rows := make([][]string, len(recs))
	for i, r := range recs {
		ts, _ := strconv.ParseInt(r.Fields["timestamp"], 10, 64)
		rows[i] = []string{r.Type, formatMillisFull(ts), orDash(r.Fields["group"]), orDash(r.Fields["topic"]), orDash(r.Fields["clientHost"]), orDash(r.Fields["costTime"]), orDash(r.Fields["success"]), orDash(r.Fields["retryTimes"])}
	}
	return e.print(recs, []string{"Type", "Time", "Group", "Topic", "Client", "Cost ms", "Success", "Retry"}, rows)
}

func dlqList(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	group := fs.String("g", "", "consumer `group` (required)")
	count := fs.Int("c", 128, "at most this many messages")
	ctx, done, err := e.start(ctx, fs, args, "g")
	if err != nil {
		return err
	}
	defer done()
	msgs, err := e.readRange(ctx, "%DLQ%"+*group, "", -1, -1, -1, -1, *count)
	if err != nil {
		return err
	}
	return e.printMessages(msgs)
}

// dlqResend sends dead letters back to their group through its retry
// topic, so only that group consumes them again (the client restores the
// original topic from RETRY_TOPIC), with a fresh reconsume count.
func dlqResend(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	group := fs.String("g", "", "consumer `group` (required)")
	id := fs.String("i", "", "only the message with this id (UNIQ_KEY or offset message id)")
	count := fs.Int("c", 1024, "at most this many messages")
	if err := e.parse(fs, args, "g"); err != nil {
		return err
	}
	defer e.close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	msgs, err := e.readRange(ctx, "%DLQ%"+*group, "", -1, -1, -1, -1, *count)
	if err != nil {
		return err
	}
	rd, err := e.client.Route(ctx, "%RETRY%"+*group)
	if err != nil {
		return fmt.Errorf("dlqResend: the retry topic of %s: %w", *group, err)
	}
	var target string
	for _, bd := range rd.BrokerDatas {
		if bd.MasterAddr() != "" {
			target = bd.MasterAddr()
			break
		}
	}
	var sent []admin.SendResult
	for _, m := range msgs {
		v := view(m)
		if *id != "" && v.MsgID != *id && v.OffsetMsgID != *id {
			continue
		}
		props := message.ParseProperties(m.Properties)
		for _, k := range []string{message.PropDelay, message.PropRealTopic, message.PropRealQueueID, message.PropDueMS} {
			delete(props, k)
		}
		r, err := e.client.Send(ctx, target, admin.Outgoing{Topic: "%RETRY%" + *group, Body: m.Body, QueueID: 0, Props: props})
		if err != nil {
			return fmt.Errorf("dlqResend: message %s: %w", v.MsgID, err)
		}
		sent = append(sent, r)
	}
	if *id != "" && len(sent) == 0 {
		return fmt.Errorf("dlqResend: no dead letter %s for group %s", *id, *group)
	}
	rows := make([][]string, len(sent))
	for i, r := range sent {
		rows[i] = []string{r.MsgID, r.Broker, r.QueueOffset}
	}
	return e.print(sent, []string{"Message ID", "Broker", "Retry Queue Offset"}, rows)
}

func resetOffsetByTime(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	group := fs.String("g", "", "consumer `group` (required)")
	topic := fs.String("t", "", "`topic` (required)")
	ts := fs.String("s", "", "`time`: Unix ms, now, yyyy-MM-dd#HH:mm:ss:SSS, or -1 for the end (required)")
	force := fs.Bool("f", true, "also move offsets forward (skip); false only rewinds")
	if err := e.parse(fs, args, "g", "t", "s"); err != nil {
		return err
	}
	defer e.close()
	at := int64(-1)
	if *ts != "-1" {
		var err error
		if at, err = parseTime("-s", *ts); err != nil {
			return fmt.Errorf("resetOffsetByTime: %w", err)
		}
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	table, err := e.client.ResetOffsetByTime(ctx, *topic, *group, at, *force)
	if err != nil {
		return err
	}
	type row struct {
		Queue  protocol.MessageQueue `json:"mq"`
		Offset int64                 `json:"offset"`
	}
	var list []row
	for mq, off := range table {
		list = append(list, row{mq, off})
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i].Queue, list[j].Queue
		if a.BrokerName != b.BrokerName {
			return a.BrokerName < b.BrokerName
		}
		return a.QueueID < b.QueueID
	})
	rows := make([][]string, len(list))
	for i, r := range list {
		rows[i] = []string{r.Queue.BrokerName, strconv.Itoa(r.Queue.QueueID), strconv.FormatInt(r.Offset, 10)}
	}
	return e.print(list, []string{"Broker Name", "QID", "New Offset"}, rows)
}
