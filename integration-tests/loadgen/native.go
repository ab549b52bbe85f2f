package loadgen

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"qianlang.io/mq/admin"
	"qianlang.io/mq/message"
	"qianlang.io/mq/remoting"
)

// Target is a topic's master broker and queue count, from its route.
type Target struct {
	Topic      string
	BrokerName string
	BrokerAddr string
	Queues     int
}

// Resolve looks a topic up through the NameServer.
func Resolve(ctx context.Context, namesrv, topic string) (Target, error) {
	a, err := admin.New(namesrv)
	if err != nil {
		return Target{}, err
	}
	defer a.Close()
	rd, err := a.Route(ctx, topic)
	if err != nil {
		return Target{}, err
	}
	for _, qd := range rd.QueueDatas {
		for _, bd := range rd.BrokerDatas {
			if bd.BrokerName == qd.BrokerName && bd.MasterAddr() != "" {
				return Target{Topic: topic, BrokerName: bd.BrokerName, BrokerAddr: bd.MasterAddr(), Queues: qd.WriteQueueNums}, nil
			}
		}
	}
	return Target{}, fmt.Errorf("loadgen: topic %s has no writable broker", topic)
}

// nativeSender pipelines sends over one remoting connection, the way the
// official client frames them (single messages with the long header,
// batches with the short one), without the client's per-message overhead.
type nativeSender struct {
	conn   *remoting.Client
	target Target
	next   atomic.Uint32
	uniq   *message.UniqIDGenerator
}

// NewNativeSenders opens n connections to the topic's broker.
func NewNativeSenders(ctx context.Context, namesrv, topic string, n int) ([]Sender, error) {
	t, err := Resolve(ctx, namesrv, topic)
	if err != nil {
		return nil, err
	}
	out := make([]Sender, n)
	for i := range out {
		c := remoting.NewClient(remoting.ClientOptions{})
		if _, err := c.Conn(ctx, t.BrokerAddr); err != nil {
			return nil, err
		}
		out[i] = &nativeSender{conn: c, target: t, uniq: message.NewUniqIDGenerator(netip.MustParseAddr("127.0.0.1"))}
	}
	return out, nil
}

func (s *nativeSender) Send(bodies [][]byte, done func(error)) error {
	q := int(s.next.Add(1)) % s.target.Queues
	t := time.Now()
	now := strconv.FormatInt(t.UnixMilli(), 10)
	var req *remoting.Command
	if len(bodies) == 1 {
		props := message.PropUniqKey + "\x01" + s.uniq.Next(t) + "\x02"
		req = remoting.NewRequest(remoting.SendMessage, remoting.Fields{
			{Key: "producerGroup", Value: "qlbench"}, {Key: "topic", Value: s.target.Topic},
			{Key: "defaultTopic", Value: "TBW102"}, {Key: "defaultTopicQueueNums", Value: "4"},
			{Key: "queueId", Value: strconv.Itoa(q)}, {Key: "sysFlag", Value: "0"},
			{Key: "bornTimestamp", Value: now}, {Key: "flag", Value: "0"},
			{Key: "properties", Value: props}, {Key: "reconsumeTimes", Value: "0"},
			{Key: "unitMode", Value: "false"}, {Key: "maxReconsumeTimes", Value: "0"}, {Key: "batch", Value: "false"},
		}, bodies[0])
	} else {
		var body []byte
		for _, b := range bodies {
			body = message.AppendBatchItem(body, message.BatchItem{Body: b})
		}
		req = remoting.NewRequest(remoting.SendBatchMessage, remoting.Fields{
			{Key: "a", Value: "qlbench"}, {Key: "b", Value: s.target.Topic}, {Key: "c", Value: "TBW102"},
			{Key: "d", Value: "4"}, {Key: "e", Value: strconv.Itoa(q)}, {Key: "f", Value: "0"},
			{Key: "g", Value: now}, {Key: "h", Value: "0"}, {Key: "i", Value: ""}, {Key: "j", Value: "0"},
			{Key: "k", Value: "false"}, {Key: "l", Value: "0"}, {Key: "m", Value: "true"},
		}, body)
	}
	cn, err := s.conn.Conn(context.Background(), s.target.BrokerAddr)
	if err != nil {
		return err
	}
	return cn.InvokeAsync(req, 10*time.Second, func(resp *remoting.Command, err error) {
		if err == nil {
			err = resp.AsError()
			resp.Release() // nothing keeps the answer: its buffer goes back to the pool
		}
		done(err)
	})
}

func (s *nativeSender) Close() error { return s.conn.Close() }

// CopiesBodies: the frame is encoded (bodies copied) before Send returns.
func (s *nativeSender) CopiesBodies() bool { return true }

// ConsumeNative drains a topic from the given start offsets (nil: each
// queue's current min) up to the max offsets seen at start, with one pull
// in flight per queue, and reports the throughput and the end-to-end
// latency from each message's send stamp.
func ConsumeNative(ctx context.Context, namesrv, topic string, maxMsgs int) (Result, error) {
	t, err := Resolve(ctx, namesrv, topic)
	if err != nil {
		return Result{}, err
	}
	c := remoting.NewClient(remoting.ClientOptions{})
	defer c.Close()
	var (
		mu    sync.Mutex
		hist  = NewHistogram()
		msgs  atomic.Int64
		bytes atomic.Int64
		wg    sync.WaitGroup
		errs  = make(chan error, t.Queues)
	)
	start := time.Now()
	for q := range t.Queues {
		wg.Go(func() {
			local := NewHistogram()
			defer func() { mu.Lock(); hist.Merge(local); mu.Unlock() }()
			if err := drainQueue(ctx, c, t, q, maxMsgs, local, &msgs, &bytes); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		return Result{}, err
	default:
	}
	return summarize(hist, msgs.Load(), bytes.Load(), 0, elapsed), nil
}

func drainQueue(ctx context.Context, c *remoting.Client, t Target, q, maxMsgs int, h interface{ RecordValue(int64) error }, msgs, bytes *atomic.Int64) error {
	offsetReq := func(code int32) (int64, error) {
		resp, err := c.Invoke(ctx, t.BrokerAddr, remoting.NewRequest(code, remoting.Fields{{Key: "topic", Value: t.Topic}, {Key: "queueId", Value: strconv.Itoa(q)}}, nil))
		if err != nil {
			return 0, err
		}
		return resp.ExtFields.Int64("offset")
	}
	off, err := offsetReq(remoting.GetMinOffset)
	if err != nil {
		return err
	}
	end, err := offsetReq(remoting.GetMaxOffset)
	if err != nil {
		return err
	}
	for off < end {
		next, err := pullOnce(ctx, c, t, "qlbench_consumer", q, off, maxMsgs, "0", 0, "*", "TAG", func(m *message.Message) {
			_ = h.RecordValue(max(1, time.Since(Stamp(m.Body)).Microseconds()))
			msgs.Add(1)
			bytes.Add(int64(len(m.Body)))
		})
		if err != nil {
			return err
		}
		off = next
	}
	return nil
}
