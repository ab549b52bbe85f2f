package loadgen

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"qianlang.io/mq/message"
	"qianlang.io/mq/remoting"
)

// sendRaw sends one message with properties over c, pipelined: done runs
// when the broker answers.
func sendRaw(c *remoting.Client, t Target, q int, body []byte, props string, done func(error)) error {
	req := remoting.NewRequest(remoting.SendMessage, remoting.Fields{
		{Key: "producerGroup", Value: "qlbench"}, {Key: "topic", Value: t.Topic},
		{Key: "defaultTopic", Value: "TBW102"}, {Key: "defaultTopicQueueNums", Value: "4"},
		{Key: "queueId", Value: strconv.Itoa(q)}, {Key: "sysFlag", Value: "0"},
		{Key: "bornTimestamp", Value: strconv.FormatInt(time.Now().UnixMilli(), 10)}, {Key: "flag", Value: "0"},
		{Key: "properties", Value: props}, {Key: "reconsumeTimes", Value: "0"},
	}, body)
	cn, err := c.Conn(context.Background(), t.BrokerAddr)
	if err != nil {
		return err
	}
	return cn.InvokeAsync(req, 10*time.Second, func(resp *remoting.Command, err error) {
		if err == nil {
			err = resp.AsError()
		}
		done(err)
	})
}

// sendAllRaw sends n messages, body(i) and props(i), with window in
// flight, spread over the topic's queues.
func sendAllRaw(ctx context.Context, c *remoting.Client, t Target, n, window int, body func(int) []byte, props func(int) string) error {
	sem := make(chan struct{}, window)
	var failed atomic.Value
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err, _ := failed.Load().(error); err != nil {
			return err
		}
		wg.Add(1)
		err := sendRaw(c, t, i%t.Queues, body(i), props(i), func(err error) {
			if err != nil {
				failed.Store(err)
			}
			<-sem
			wg.Done()
		})
		if err != nil {
			return err
		}
	}
	wg.Wait()
	err, _ := failed.Load().(error)
	return err
}

// pullLoop long-polls every queue of t from its current end and hands
// each message to got, until ctx ends.
func pullLoop(ctx context.Context, c *remoting.Client, t Target, group, expr, exprType string, got func(*message.Message)) error {
	var wg sync.WaitGroup
	errs := make(chan error, t.Queues)
	for q := range t.Queues {
		resp, err := c.Invoke(ctx, t.BrokerAddr, remoting.NewRequest(remoting.GetMaxOffset, remoting.Fields{{Key: "topic", Value: t.Topic}, {Key: "queueId", Value: strconv.Itoa(q)}}, nil))
		if err != nil {
			return err
		}
		off, err := resp.ExtFields.Int64("offset")
		if err != nil {
			return err
		}
		wg.Go(func() {
			for ctx.Err() == nil {
				next, err := pullOnce(ctx, c, t, group, q, off, 32, "2", 1000, expr, exprType, got)
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				off = next
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// pullOnce pulls a queue once and returns the next offset.
func pullOnce(ctx context.Context, c *remoting.Client, t Target, group string, q int, off int64, maxMsgs int, sysFlag string, suspendMS int, expr, exprType string, got func(*message.Message)) (int64, error) {
	req := remoting.NewRequest(remoting.PullMessage, remoting.Fields{
		{Key: "consumerGroup", Value: group}, {Key: "topic", Value: t.Topic},
		{Key: "queueId", Value: strconv.Itoa(q)}, {Key: "queueOffset", Value: strconv.FormatInt(off, 10)},
		{Key: "maxMsgNums", Value: strconv.Itoa(maxMsgs)}, {Key: "sysFlag", Value: sysFlag},
		{Key: "commitOffset", Value: "0"}, {Key: "suspendTimeoutMillis", Value: strconv.Itoa(suspendMS)},
		{Key: "subscription", Value: expr}, {Key: "subVersion", Value: "0"}, {Key: "expressionType", Value: exprType},
	}, nil)
	resp, err := c.Invoke(ctx, t.BrokerAddr, req)
	if err != nil {
		return off, err
	}
	next, err := resp.ExtFields.Int64("nextBeginOffset")
	if err != nil {
		return off, err
	}
	switch resp.Code {
	case remoting.Success:
		for pos := 0; pos < len(resp.Body); {
			m, n, err := message.DecodeRecord(resp.Body[pos:])
			if err != nil {
				return off, err
			}
			got(&m)
			pos += n
		}
	case remoting.PullNotFound, remoting.PullRetryImmediately:
	default:
		return off, errors.New(resp.String())
	}
	return next, nil
}

// DelayLateness parks pending timer messages (TIMER_DELIVER_MS) due over
// spread, starting lead after the first is sent, and measures how late
// each is delivered to a long-polling consumer. The histogram holds the
// lateness; a message delivered early counts as an error.
func DelayLateness(ctx context.Context, namesrv, topic string, pending int, lead, spread time.Duration, size int) (Result, error) {
	t, err := Resolve(ctx, namesrv, topic)
	if err != nil {
		return Result{}, err
	}
	c := remoting.NewClient(remoting.ClientOptions{})
	defer c.Close()
	var (
		mu       sync.Mutex
		hist     = NewHistogram()
		received atomic.Int64
		early    atomic.Int64
	)
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- pullLoop(pctx, c, t, "qlbench_delay", "*", "TAG", func(m *message.Message) {
			if len(m.Body) < 8 {
				return
			}
			due := time.UnixMilli(int64(binary.BigEndian.Uint64(m.Body)))
			late := time.Since(due)
			if late < -time.Millisecond {
				early.Add(1)
			}
			mu.Lock()
			_ = hist.RecordValue(max(1, late.Microseconds()))
			mu.Unlock()
			received.Add(1)
		})
	}()
	time.Sleep(500 * time.Millisecond) // the pulls are parked
	first := time.Now().Add(lead)
	dueOf := func(i int) int64 {
		return first.Add(time.Duration(int64(spread) * int64(i) / int64(pending))).UnixMilli()
	}
	err = sendAllRaw(ctx, c, t, pending, 256, func(i int) []byte {
		b := make([]byte, max(size, 8))
		binary.BigEndian.PutUint64(b, uint64(dueOf(i)))
		return b
	}, func(i int) string {
		return message.PropTimerDeliverMS + "\x01" + strconv.FormatInt(dueOf(i), 10) + "\x02"
	})
	if err != nil {
		return Result{}, fmt.Errorf("loadgen: parking timers: %w", err)
	}
	if time.Now().After(first) {
		return Result{}, fmt.Errorf("loadgen: parking %d timers took longer than the %v lead; raise -lead", pending, lead)
	}
	deadline := time.Now().Add(time.Until(first) + spread + time.Minute)
	for received.Load() < int64(pending) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		return Result{}, err
	}
	r := summarize(hist, received.Load(), received.Load()*int64(size), early.Load()+int64(pending)-received.Load(), spread)
	return r, nil
}

// txListener commits every transaction at once.
type txListener struct{}

func (txListener) ExecuteLocalTransaction(*primitive.Message) primitive.LocalTransactionState {
	return primitive.CommitMessageState
}
func (txListener) CheckLocalTransaction(*primitive.MessageExt) primitive.LocalTransactionState {
	return primitive.CommitMessageState
}

// SendSyncThroughput runs workers goroutines that each send size-byte
// messages one at a time through the official client for duration:
// transactional (half message, local transaction, END_TRANSACTION) when tx
// is set, plain SendSync otherwise.
func SendSyncThroughput(ctx context.Context, namesrv, topic string, tx bool, workers, size int, warmup, duration time.Duration) (Result, error) {
	opts := []producer.Option{producer.WithNameServer([]string{namesrv}), producer.WithGroupName(fmt.Sprintf("qlbench_sync_%v", tx)),
		producer.WithInstanceName(fmt.Sprintf("qlbench-sync-%d", time.Now().UnixNano())), producer.WithRetry(0)}
	var send func(*primitive.Message) error
	if tx {
		p, err := rocketmq.NewTransactionProducer(txListener{}, opts...)
		if err != nil {
			return Result{}, err
		}
		if err := p.Start(); err != nil {
			return Result{}, err
		}
		defer p.Shutdown()
		send = func(m *primitive.Message) error {
			r, err := p.SendMessageInTransaction(ctx, m)
			if err == nil && r.State != primitive.CommitMessageState {
				err = fmt.Errorf("loadgen: transaction state %v", r.State)
			}
			return err
		}
	} else {
		p, err := rocketmq.NewProducer(opts...)
		if err != nil {
			return Result{}, err
		}
		if err := p.Start(); err != nil {
			return Result{}, err
		}
		defer p.Shutdown()
		send = func(m *primitive.Message) error {
			_, err := p.SendSync(ctx, m)
			return err
		}
	}
	var (
		mu           sync.Mutex
		hist         = NewHistogram()
		msgs, failed atomic.Int64
		wg           sync.WaitGroup
	)
	start := time.Now().Add(warmup)
	end := start.Add(duration)
	for range workers {
		wg.Go(func() {
			local := NewHistogram()
			defer func() { mu.Lock(); hist.Merge(local); mu.Unlock() }()
			for ctx.Err() == nil {
				t0 := time.Now()
				if t0.After(end) {
					return
				}
				err := send(primitive.NewMessage(topic, Payload(size)))
				if t0.Before(start) {
					continue
				}
				if err != nil {
					failed.Add(1)
					continue
				}
				msgs.Add(1)
				_ = local.RecordValue(max(1, time.Since(t0).Microseconds()))
			}
		})
	}
	wg.Wait()
	return summarize(hist, msgs.Load(), msgs.Load()*int64(size), failed.Load(), duration), nil
}

// FilterPull fills topic with n messages whose property "a" cycles 0..9,
// then drains it once with the SQL92 expression (or "*" as a TAG
// subscription when expr is empty) and reports the ConsumeQueue entries
// scanned per second; Messages is how many matched.
func FilterPull(ctx context.Context, namesrv, topic string, n, size int, expr string, fill bool) (Result, error) {
	t, err := Resolve(ctx, namesrv, topic)
	if err != nil {
		return Result{}, err
	}
	c := remoting.NewClient(remoting.ClientOptions{})
	defer c.Close()
	if fill {
		err := sendAllRaw(ctx, c, t, n, 256, func(int) []byte { return Payload(size) }, func(i int) string {
			return "a\x01" + strconv.Itoa(i%10) + "\x02region\x01" + []string{"hz", "sh"}[i%2] + "\x02"
		})
		if err != nil {
			return Result{}, err
		}
	}
	exprType := "SQL92"
	if expr == "" {
		expr, exprType = "*", "TAG"
	}
	var matched, scanned atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, t.Queues)
	start := time.Now()
	for q := range t.Queues {
		wg.Go(func() {
			var off int64
			for {
				resp, err := c.Invoke(ctx, t.BrokerAddr, remoting.NewRequest(remoting.GetMaxOffset, remoting.Fields{{Key: "topic", Value: t.Topic}, {Key: "queueId", Value: strconv.Itoa(q)}}, nil))
				if err != nil {
					errs <- err
					return
				}
				end, _ := resp.ExtFields.Int64("offset")
				if off >= end {
					scanned.Add(end)
					return
				}
				next, err := pullOnce(ctx, c, t, "qlbench_filter", q, off, 32, "4", 0, expr, exprType, func(*message.Message) { matched.Add(1) })
				if err != nil {
					errs <- err
					return
				}
				if next <= off {
					scanned.Add(off)
					return
				}
				off = next
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
	r := summarize(NewHistogram(), matched.Load(), matched.Load()*int64(size), 0, elapsed)
	r.MsgsPerS = float64(scanned.Load()) / elapsed.Seconds()
	return r, nil
}
