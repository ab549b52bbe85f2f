// Package schedule holds the arithmetic of delayed delivery: RocketMQ's
// delay levels (messageDelayLevel) and the ladder of hop durations that
// carries a timer message (an arbitrary delivery time) to its due time.
//
// A parked message sits in a schedule queue whose entries fall due in the
// order they were written: every entry of a queue waits the same duration
// from its store time. A delay level is one such queue. A timer message
// whose remaining wait matches no single queue hops down a ladder: it is
// parked on the longest rung not longer than what remains, and when that
// rung falls due, on the longest rung not longer than what then remains,
// until nothing remains. The rungs follow a 1-2-5 series, so a wait of d
// takes about three hops per factor of ten above the shortest rung, and a
// message is never delivered before its time.
package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultLevels is Apache's messageDelayLevel.
const DefaultLevels = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"

// ErrBadLevels is returned for a malformed messageDelayLevel.
var ErrBadLevels = errors.New("schedule: bad delay levels")

// ParseLevels parses a space-separated list of durations with unit s, m, h
// or d ("1s 5s 10s 30s 1m …"). Level n (from 1) is element n-1.
func ParseLevels(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range strings.Fields(s) {
		if len(f) < 2 {
			return nil, fmt.Errorf("%w: %q: want a number and a unit s, m, h or d", ErrBadLevels, f)
		}
		unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[f[len(f)-1]]
		n, err := strconv.ParseInt(f[:len(f)-1], 10, 64)
		if unit == 0 || err != nil || n <= 0 || n > 365*24*3600 {
			return nil, fmt.Errorf("%w: %q: want a positive number and a unit s, m, h or d", ErrBadLevels, f)
		}
		out = append(out, time.Duration(n)*unit)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no levels", ErrBadLevels)
	}
	if len(out) > 64 {
		return nil, fmt.Errorf("%w: %d levels, at most 64", ErrBadLevels, len(out))
	}
	return out, nil
}

// Rungs are the timer ladder's hop durations, shortest first.
var Rungs = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second,
	10 * time.Second, 20 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute,
	10 * time.Minute, 20 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// Rung returns the index of the longest rung not longer than remaining,
// and false when remaining is shorter than the shortest rung (the message
// is due now).
func Rung(remaining time.Duration) (int, bool) {
	if remaining < Rungs[0] {
		return 0, false
	}
	lo, hi := 0, len(Rungs)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if Rungs[mid] <= remaining {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo, true
}

// Hops is how many times a timer message waiting d is parked before it is
// delivered (for tests and capacity planning).
func Hops(d time.Duration) int {
	n := 0
	for {
		i, ok := Rung(d)
		if !ok {
			return n
		}
		d -= Rungs[i]
		n++
	}
}
