package admin

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"qianlang.io/mq/message"
	"qianlang.io/mq/protocol"
	"qianlang.io/mq/remoting"
)

// Outgoing is a message mqadmin sends.
type Outgoing struct {
	Topic   string
	Body    []byte
	Tags    string
	Keys    string
	QueueID int // -1: the broker picks
	Props   map[string]string
}

// SendResult is a broker's answer to a send.
type SendResult struct {
	MsgID       string `json:"msgId"`
	OffsetMsgID string `json:"offsetMsgId"`
	QueueID     string `json:"queueId"`
	QueueOffset string `json:"queueOffset"`
	Broker      string `json:"broker"`
}

// Send sends one message to the broker at brokerAddr.
func (c *Client) Send(ctx context.Context, brokerAddr string, m Outgoing) (SendResult, error) {
	props := map[string]string{}
	for k, v := range m.Props {
		props[k] = v
	}
	if m.Tags != "" {
		props[message.PropTags] = m.Tags
	}
	if m.Keys != "" {
		props[message.PropKeys] = m.Keys
	}
	f := remoting.Fields{
		{Key: "producerGroup", Value: "mqadmin"},
		{Key: "topic", Value: m.Topic},
		{Key: "defaultTopic", Value: "TBW102"},
		{Key: "defaultTopicQueueNums", Value: "4"},
		{Key: "queueId", Value: strconv.Itoa(m.QueueID)},
		{Key: "sysFlag", Value: "0"},
		{Key: "bornTimestamp", Value: strconv.FormatInt(time.Now().UnixMilli(), 10)},
		{Key: "flag", Value: "0"},
		{Key: "properties", Value: message.EncodeProperties(props)},
		{Key: "reconsumeTimes", Value: "0"},
	}
	resp, err := c.call(ctx, brokerAddr, remoting.NewRequest(remoting.SendMessage, f, m.Body))
	if err != nil {
		return SendResult{}, err
	}
	return SendResult{
		MsgID: resp.ExtFields.Str("transactionId"), OffsetMsgID: resp.ExtFields.Str("msgId"),
		QueueID: resp.ExtFields.Str("queueId"), QueueOffset: resp.ExtFields.Str("queueOffset"), Broker: brokerAddr,
	}, nil
}

// DeleteTopic deletes a topic on one broker.
func (c *Client) DeleteTopic(ctx context.Context, brokerAddr, topic string) error {
	return c.callBroker(ctx, brokerAddr, remoting.DeleteTopicInBroker, remoting.Fields{{Key: "topic", Value: topic}}, nil, nil)
}

// DeleteTopicInNamesrvs removes a topic's routes from every NameServer.
func (c *Client) DeleteTopicInNamesrvs(ctx context.Context, topic string) error {
	var errs []error
	for _, addr := range c.namesrvs {
		_, err := c.call(ctx, addr, remoting.NewRequest(remoting.DeleteTopicInNamesrv, remoting.Fields{{Key: "topic", Value: topic}}, nil))
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// UpdateSubGroup creates or updates a subscription group on one broker.
func (c *Client) UpdateSubGroup(ctx context.Context, brokerAddr string, g protocol.SubscriptionGroupConfig) error {
	return c.callBroker(ctx, brokerAddr, remoting.UpdateAndCreateSubscriptionGroup, nil, protocol.Encode(g), nil)
}

// DeleteSubGroup deletes a subscription group (and, with removeOffset,
// its offsets) on one broker.
func (c *Client) DeleteSubGroup(ctx context.Context, brokerAddr, group string, removeOffset bool) error {
	return c.callBroker(ctx, brokerAddr, remoting.DeleteSubscriptionGroup, remoting.Fields{
		{Key: "groupName", Value: group}, {Key: "removeOffset", Value: strconv.FormatBool(removeOffset)},
	}, nil, nil)
}

// BrokerConfig returns a broker's configuration as key=value lines.
func (c *Client) BrokerConfig(ctx context.Context, brokerAddr string) (map[string]string, error) {
	resp, err := c.call(ctx, brokerAddr, remoting.NewRequest(remoting.GetBrokerConfig, nil, nil))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(resp.Body), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			out[k] = v
		}
	}
	return out, nil
}

// ViewMessage reads the message at an offset message id (it names the
// broker and the CommitLog offset).
func (c *Client) ViewMessage(ctx context.Context, offsetMsgID string) (message.Message, error) {
	host, off, err := message.ParseOffsetMsgID(offsetMsgID)
	if err != nil {
		return message.Message{}, fmt.Errorf("admin: %q is not an offset message id: %w", offsetMsgID, err)
	}
	resp, err := c.call(ctx, host.String(), remoting.NewRequest(remoting.ViewMessageByID, remoting.Fields{{Key: "offset", Value: strconv.FormatInt(off, 10)}}, nil))
	if err != nil {
		return message.Message{}, err
	}
	m, _, err := message.DecodeRecord(resp.Body)
	return m, err
}

// QueryByKey finds a topic's messages indexed under key (or, with unique,
// under a message id) stored between begin and end (Unix ms), on every
// master of the topic.
func (c *Client) QueryByKey(ctx context.Context, topic, key string, maxNum int, begin, end int64, unique bool) ([]message.Message, error) {
	rd, err := c.Route(ctx, topic)
	if err != nil {
		return nil, err
	}
	var out []message.Message
	var errs []error
	for _, bd := range rd.BrokerDatas {
		addr, ok := bd.BrokerAddrs[0]
		if !ok {
			continue
		}
		f := remoting.Fields{
			{Key: "topic", Value: topic}, {Key: "key", Value: key}, {Key: "maxNum", Value: strconv.Itoa(maxNum)},
			{Key: "beginTimestamp", Value: strconv.FormatInt(begin, 10)}, {Key: "endTimestamp", Value: strconv.FormatInt(end, 10)},
		}
		if unique {
			f = append(f, remoting.Field{Key: "_UNIQUE_KEY_QUERY", Value: "true"})
		}
		resp, err := c.call(ctx, addr, remoting.NewRequest(remoting.QueryMessage, f, nil))
		var re *remoting.Error
		if errors.As(err, &re) && re.Code == remoting.QueryNotFound {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		msgs, err := decodeRecords(resp.Body)
		if err != nil {
			errs = append(errs, err)
		}
		for _, m := range msgs {
			if m.Topic == topic && (!unique || uniqKey(m) == key || hasKey(m, key)) || !unique && hasKey(m, key) {
				out = append(out, m)
			}
		}
	}
	return out, errors.Join(errs...)
}

func uniqKey(m message.Message) string {
	v, _ := message.Property(m.Properties, message.PropUniqKey)
	return v
}

func hasKey(m message.Message, key string) bool {
	if uniqKey(m) == key {
		return true
	}
	v, _ := message.Property(m.Properties, message.PropKeys)
	for _, k := range message.Keys(v) {
		if k == key {
			return true
		}
	}
	return false
}

func decodeRecords(b []byte) ([]message.Message, error) {
	var out []message.Message
	for len(b) > 0 {
		m, n, err := message.DecodeRecord(b)
		if err != nil {
			return out, err
		}
		out = append(out, m)
		b = b[n:]
	}
	return out, nil
}

// ResetOffsetByTime moves a group's offsets on a topic to the first
// message stored at or after ts (Unix ms; -1: the end) on every master,
// and returns the new offsets. Without force an offset only moves back.
func (c *Client) ResetOffsetByTime(ctx context.Context, topic, group string, ts int64, force bool) (map[protocol.MessageQueue]int64, error) {
	rd, err := c.Route(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := map[protocol.MessageQueue]int64{}
	for _, bd := range rd.BrokerDatas {
		addr, ok := bd.BrokerAddrs[0]
		if !ok {
			return out, fmt.Errorf("admin: broker group %s has no master", bd.BrokerName)
		}
		resp, err := c.call(ctx, addr, remoting.NewRequest(remoting.InvokeBrokerToResetOffset, remoting.Fields{
			{Key: "topic", Value: topic}, {Key: "group", Value: group},
			{Key: "timestamp", Value: strconv.FormatInt(ts, 10)}, {Key: "isForce", Value: strconv.FormatBool(force)},
		}, nil))
		if err != nil {
			return out, err
		}
		table, err := protocol.DecodeResetOffsetBody(resp.Body)
		if err != nil {
			return out, err
		}
		for mq, off := range table {
			out[mq] = off
		}
	}
	return out, nil
}

// Pull reads up to n messages of a queue from offset on one broker, with
// no consumer group state.
func (c *Client) Pull(ctx context.Context, brokerAddr, topic string, queueID int, offset int64, n int) ([]message.Message, int64, error) {
	resp, err := c.rc.Invoke(ctx, brokerAddr, c.signed(remoting.NewRequest(remoting.PullMessage, remoting.Fields{
		{Key: "consumerGroup", Value: "mqadmin"}, {Key: "topic", Value: topic}, {Key: "queueId", Value: strconv.Itoa(queueID)},
		{Key: "queueOffset", Value: strconv.FormatInt(offset, 10)}, {Key: "maxMsgNums", Value: strconv.Itoa(n)},
		{Key: "sysFlag", Value: "0"}, {Key: "commitOffset", Value: "0"}, {Key: "suspendTimeoutMillis", Value: "0"},
		{Key: "subscription", Value: "*"}, {Key: "subVersion", Value: "0"}, {Key: "expressionType", Value: "TAG"},
	}, nil)))
	if err != nil {
		return nil, offset, fmt.Errorf("%s: %w", brokerAddr, err)
	}
	next, _ := resp.ExtFields.Int64Or("nextBeginOffset", offset)
	switch resp.Code {
	case remoting.Success:
		msgs, err := decodeRecords(resp.Body)
		return msgs, next, err
	case remoting.PullNotFound, remoting.PullRetryImmediately, remoting.PullOffsetMoved:
		return nil, next, nil
	}
	return nil, offset, fmt.Errorf("%s: %w", brokerAddr, resp.AsError())
}

func (c *Client) signed(req *remoting.Command) *remoting.Command {
	c.sign(req)
	return req
}

// QueueOffsets returns a queue's min and max offsets, and the offset of
// the first message stored at or after ts (when ts >= 0).
func (c *Client) QueueOffsets(ctx context.Context, brokerAddr, topic string, queueID int, ts int64) (minOff, maxOff, atTime int64, err error) {
	get := func(code int32, extra ...remoting.Field) (int64, error) {
		f := append(remoting.Fields{{Key: "topic", Value: topic}, {Key: "queueId", Value: strconv.Itoa(queueID)}}, extra...)
		resp, err := c.call(ctx, brokerAddr, remoting.NewRequest(code, f, nil))
		if err != nil {
			return 0, err
		}
		return resp.ExtFields.Int64("offset")
	}
	if minOff, err = get(remoting.GetMinOffset); err != nil {
		return
	}
	if maxOff, err = get(remoting.GetMaxOffset); err != nil {
		return
	}
	atTime = minOff
	if ts >= 0 {
		atTime, err = get(remoting.SearchOffsetByTimestamp, remoting.Field{Key: "timestamp", Value: strconv.FormatInt(ts, 10)})
	}
	return
}

// TraceRecord is one record of the client's message trace format.
type TraceRecord struct {
	Type   string            `json:"type"`
	Fields map[string]string `json:"fields"`
}

var traceFieldNames = map[string][]string{
	"Pub":       {"timestamp", "region", "group", "topic", "msgId", "tags", "keys", "storeHost", "bodyLength", "costTime", "msgType", "offsetMsgId", "success", "clientHost"},
	"SubBefore": {"timestamp", "region", "group", "requestId", "msgId", "retryTimes", "keys", "clientHost"},
	"SubAfter":  {"requestId", "msgId", "costTime", "success", "keys", "contextCode", "timestamp", "group"},
}

// ParseTrace decodes a trace message body: records separated by \x02,
// fields by \x01, the first field naming the record's type.
func ParseTrace(body []byte) []TraceRecord {
	var out []TraceRecord
	for _, rec := range strings.Split(string(body), "\x02") {
		if rec == "" {
			continue
		}
		parts := strings.Split(rec, "\x01")
		r := TraceRecord{Type: parts[0], Fields: map[string]string{}}
		names := traceFieldNames[r.Type]
		for i, v := range parts[1:] {
			name := "field" + strconv.Itoa(i+1)
			if i < len(names) {
				name = names[i]
			}
			r.Fields[name] = v
		}
		out = append(out, r)
	}
	return out
}
