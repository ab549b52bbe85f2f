package broker

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// putTimes is the broker's putMessageDistributeTime: how long sends took
// from the decoded request to the store's answer (for a group, until a
// majority holds the entry), counted in the buckets Apache's broker
// reports over the current minute, and the longest since start
// (putMessageEntireTimeMax). A batch counts once, as one put.
type putTimes struct {
	mu     sync.Mutex
	window time.Time // when the current minute's counts began
	counts [len(putBucketLabels)]int64
	max    time.Duration
}

// putBucketBounds are the exclusive upper bounds of the buckets after the
// first, in whole milliseconds; the first holds puts under 1 ms, the last
// everything from 10 s.
var putBucketBounds = [...]int64{10, 50, 100, 200, 500, 1000, 2000, 3000, 4000, 5000, 10000}

var putBucketLabels = [len(putBucketBounds) + 2]string{
	"<=0ms", "0~10ms", "10~50ms", "50~100ms", "100~200ms", "200~500ms",
	"500ms~1s", "1~2s", "2~3s", "3~4s", "4~5s", "5~10s", "10s~",
}

// putTimesWindow is how long counts gather before they start over.
const putTimesWindow = time.Minute

// putBucket is the bucket of a put that took d.
func putBucket(d time.Duration) int {
	ms := d.Milliseconds()
	if ms <= 0 {
		return 0
	}
	for i, bound := range putBucketBounds {
		if ms < bound {
			return i + 1
		}
	}
	return len(putBucketLabels) - 1
}

// record counts a put that began at start and ended at now.
func (p *putTimes) record(start, now time.Time) {
	d := now.Sub(start)
	i := putBucket(d)
	p.mu.Lock()
	if now.Sub(p.window) >= putTimesWindow {
		p.window, p.counts = now, [len(putBucketLabels)]int64{}
	}
	p.counts[i]++
	p.max = max(p.max, d)
	p.mu.Unlock()
}

// snapshot renders the current counts as Apache's broker does
// ("[<=0ms]:12 [0~10ms]:3 … [10s~]:0 ") and the longest put in
// milliseconds.
func (p *putTimes) snapshot(now time.Time) (distribution string, maxMillis int64) {
	p.mu.Lock()
	counts, longest := p.counts, p.max
	if now.Sub(p.window) >= putTimesWindow {
		counts = [len(putBucketLabels)]int64{}
	}
	p.mu.Unlock()
	var sb strings.Builder
	for i, label := range putBucketLabels {
		sb.WriteByte('[')
		sb.WriteString(label)
		sb.WriteString("]:")
		sb.WriteString(strconv.FormatInt(counts[i], 10))
		sb.WriteByte(' ')
	}
	return sb.String(), longest.Milliseconds()
}
