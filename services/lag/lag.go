// Package lag measures how far the platform's consumer groups are behind:
// the messages stored in their topics' queues that they have not yet
// consumed, summed over the cluster's group leaders.
package lag

import (
	"context"
	"fmt"
	"strings"
	"time"

	"qianlang.io/mq/admin"
	"qianlang.io/services/events"
)

// Behind returns each platform consumer group's lag.
func Behind(ctx context.Context, namesrv []string) (map[string]int64, error) {
	c, err := admin.New(strings.Join(namesrv, ";"))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	masters, err := c.MasterAddrs(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("lag: %w", err)
	}
	out := map[string]int64{}
	for _, g := range events.Groups {
		for _, bd := range masters {
			st, err := c.ConsumeStats(ctx, bd.MasterAddr(), g, "")
			if err != nil {
				return nil, fmt.Errorf("lag of %s on %s: %w", g, bd.BrokerName, err)
			}
			for _, q := range st.Queues {
				out[g] += max(0, q.BrokerOffset-q.ConsumerOffset)
			}
		}
	}
	return out, nil
}

// WaitZero polls until no platform group lags, and returns how long that
// took; an error when within passed first.
func WaitZero(ctx context.Context, namesrv []string, within time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		b, err := Behind(ctx, namesrv)
		if err == nil && total(b) == 0 {
			return time.Since(start), nil
		}
		if time.Since(start) > within {
			return time.Since(start), fmt.Errorf("consumer groups still behind after %v: %v (%v)", within, b, err)
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
