// Package loadgen is the load-test harness: producers and consumers that
// drive a broker at a closed-loop window or an open-loop rate and record
// per-message latency in HDR histograms. Adapters cover our own pipelined
// remoting client ("native"), the official RocketMQ Go client ("official")
// and NATS JetStream ("nats", the peer measured in the same runs).
package loadgen

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Options describe one run.
type Options struct {
	Size     int           // message body bytes
	Duration time.Duration // measured time
	Warmup   time.Duration // discarded time before it
	Window   int           // messages in flight (closed loop)
	Rate     int           // messages per second (open loop); 0: closed loop
	Conns    int           // connections / producers
	Batch    int           // messages per request (native only); 1: single sends
	Progress func(sent int64)
	// Timeline, when positive, splits the measured time into slices of
	// this length and records each slice's acknowledgements and worst
	// latency (by acknowledgement time), to find when a tail came.
	Timeline time.Duration
}

// Slice is one slice of a run's timeline.
type Slice struct {
	At    time.Duration `json:"at_ns"` // from the start of the measured time
	Acks  int64         `json:"acks"`
	Worst time.Duration `json:"worst_ns"`
}

// Result is what a run measured.
type Result struct {
	Messages  int64                   `json:"messages"`
	Bytes     int64                   `json:"bytes"`
	Errors    int64                   `json:"errors"`
	Elapsed   time.Duration           `json:"elapsed_ns"`
	MsgsPerS  float64                 `json:"msgs_per_s"`
	MBPerS    float64                 `json:"mb_per_s"`
	P50       time.Duration           `json:"p50_ns"`
	P99       time.Duration           `json:"p99_ns"`
	P999      time.Duration           `json:"p999_ns"`
	Max       time.Duration           `json:"max_ns"`
	Histogram *hdrhistogram.Histogram `json:"-"`
	Timeline  []Slice                 `json:"timeline,omitempty"`
}

// Sender sends one request of messages asynchronously and reports its
// outcome through done, which may run on another goroutine.
type Sender interface {
	Send(bodies [][]byte, done func(error)) error
	Close() error
}

// copyingSender is implemented by senders that copy the bodies before Send
// returns, so the caller may reuse them at once.
type copyingSender interface {
	CopiesBodies() bool
}

// NewHistogram covers 1 µs to 60 s with 3 significant digits.
func NewHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(1, 60_000_000, 3) }

// Payload returns a random incompressible body of size bytes whose first 8
// bytes will carry the send time.
func Payload(size int) []byte {
	b := make([]byte, max(size, 8))
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return b[:size]
}

// StampNow writes the current time into the first 8 bytes of b, for
// end-to-end latency.
func StampNow(b []byte) { stamp(b, time.Now()) }

func stamp(b []byte, t time.Time) {
	if len(b) >= 8 {
		binary.BigEndian.PutUint64(b, uint64(t.UnixNano()))
	}
}

// Stamp reads the time StampNow wrote.
func Stamp(b []byte) time.Time {
	if len(b) < 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)))
}

// Produce drives senders (one per connection) with the options and
// measures acknowledged throughput and publish latency. In open-loop mode
// latency is taken from each message's intended send time, so a stalled
// broker shows up as latency instead of hiding (coordinated omission).
func Produce(ctx context.Context, senders []Sender, o Options) (Result, error) {
	if len(senders) == 0 {
		return Result{}, fmt.Errorf("loadgen: no senders")
	}
	o.Batch = max(o.Batch, 1)
	o.Window = max(o.Window, o.Batch)
	runCtx, cancel := context.WithTimeout(ctx, o.Warmup+o.Duration)
	defer cancel()
	measureFrom := time.Now().Add(o.Warmup)

	var (
		mu        sync.Mutex
		hist      = NewHistogram()
		acked     atomic.Int64
		ackedB    atomic.Int64
		errs      atomic.Int64
		total     atomic.Int64
		firstErr  atomic.Pointer[error]
		wg        sync.WaitGroup
		perSender = max(1, o.Window/len(senders))
	)
	var timeline *timeline
	if o.Timeline > 0 {
		timeline = newTimeline(measureFrom, o.Duration, o.Timeline)
	}
	var interval time.Duration
	if o.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(o.Batch*len(senders)) / float64(o.Rate))
	}
	for _, s := range senders {
		wg.Go(func() {
			local := NewHistogram()
			sem := make(chan struct{}, max(1, perSender/o.Batch))
			body := Payload(o.Size)
			scratch := make([][]byte, o.Batch)
			for i := range scratch {
				scratch[i] = append([]byte(nil), body...)
			}
			next := time.Now()
			var inflight sync.WaitGroup
			defer func() {
				inflight.Wait()
				mu.Lock()
				hist.Merge(local)
				mu.Unlock()
			}()
			var lmu sync.Mutex
			for runCtx.Err() == nil {
				var intended time.Time
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					}
					intended = next
					next = next.Add(interval)
				}
				select {
				case sem <- struct{}{}:
				case <-runCtx.Done():
					return
				}
				now := time.Now()
				if interval == 0 {
					intended = now // closed loop: from the actual send
				}
				var bodies [][]byte
				if cs, ok := s.(copyingSender); ok && cs.CopiesBodies() {
					bodies = scratch
					for _, b := range bodies {
						stamp(b, now)
					}
				} else {
					bodies = make([][]byte, o.Batch)
					for i := range bodies {
						b := append([]byte(nil), body...)
						stamp(b, now)
						bodies[i] = b
					}
				}
				inflight.Add(1)
				err := s.Send(bodies, func(err error) {
					defer inflight.Done()
					defer func() { <-sem }()
					now := time.Now()
					if err != nil {
						errs.Add(1)
						firstErr.CompareAndSwap(nil, &err)
						return
					}
					total.Add(int64(len(bodies)))
					if o.Progress != nil {
						o.Progress(int64(len(bodies)))
					}
					if intended.Before(measureFrom) || now.After(measureFrom.Add(o.Duration)) {
						return
					}
					acked.Add(int64(len(bodies)))
					ackedB.Add(int64(len(bodies) * o.Size))
					lmu.Lock()
					_ = local.RecordValues(max(1, now.Sub(intended).Microseconds()), int64(len(bodies)))
					lmu.Unlock()
					if timeline != nil {
						timeline.record(now, now.Sub(intended), len(bodies))
					}
				})
				if err != nil {
					inflight.Done()
					<-sem
					errs.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	r := summarize(hist, acked.Load(), ackedB.Load(), errs.Load(), o.Duration)
	if timeline != nil {
		r.Timeline = timeline.slices()
	}
	if r.Messages == 0 {
		if e := firstErr.Load(); e != nil {
			return r, fmt.Errorf("loadgen: nothing acknowledged: %w", *e)
		}
	}
	return r, nil
}

func summarize(h *hdrhistogram.Histogram, msgs, bytes, errs int64, elapsed time.Duration) Result {
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return Result{
		Messages: msgs, Bytes: bytes, Errors: errs, Elapsed: elapsed,
		MsgsPerS: float64(msgs) / elapsed.Seconds(), MBPerS: float64(bytes) / elapsed.Seconds() / (1 << 20),
		P50: us(h.ValueAtQuantile(50)), P99: us(h.ValueAtQuantile(99)), P999: us(h.ValueAtQuantile(99.9)), Max: us(h.Max()),
		Histogram: h,
	}
}

// String renders a result on one line.
func (r Result) String() string {
	return fmt.Sprintf("%d msgs, %.0f msgs/s, %.1f MiB/s, p50 %v p99 %v p99.9 %v max %v, %d errors",
		r.Messages, r.MsgsPerS, r.MBPerS, r.P50, r.P99, r.P999, r.Max, r.Errors)
}

// timeline collects a run's acknowledgements by slice of time.
type timeline struct {
	from  time.Time
	every time.Duration
	mu    sync.Mutex
	s     []Slice
}

func newTimeline(from time.Time, d, every time.Duration) *timeline {
	n := int((d + every - 1) / every)
	t := &timeline{from: from, every: every, s: make([]Slice, n)}
	for i := range t.s {
		t.s[i].At = time.Duration(i) * every
	}
	return t
}

func (t *timeline) record(at time.Time, latency time.Duration, n int) {
	d := at.Sub(t.from)
	i := int(d / t.every)
	if d < 0 || i >= len(t.s) {
		return
	}
	t.mu.Lock()
	t.s[i].Acks += int64(n)
	t.s[i].Worst = max(t.s[i].Worst, latency)
	t.mu.Unlock()
}

func (t *timeline) slices() []Slice {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Slice(nil), t.s...)
}
