package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"
)

// Faults is the provider's misbehaviour, set with PUT /provider/faults (the
// contract's §3). Rates are probabilities per call; latencies are added,
// exactly and without jitter, to every call that succeeds.
type Faults struct {
	RefundErrorRate     float64 `json:"refund_error_rate"`
	RefundLatencyMS     int64   `json:"refund_latency_ms"`
	NotifyDuplicateRate float64 `json:"notify_duplicate_rate"`
	SMSErrorRate        float64 `json:"sms_error_rate"`
	SMSLatencyMS        int64   `json:"sms_latency_ms"`
	LogisticsErrorRate  float64 `json:"logistics_error_rate"`
	LogisticsLatencyMS  int64   `json:"logistics_latency_ms"`
	DeliveryMS          int64   `json:"delivery_ms"`
}

// DefaultFaults is a well-behaved provider that delivers parcels 5 s after
// they are shipped.
func DefaultFaults() Faults { return Faults{DeliveryMS: 5000} }

// maxMS bounds every *_ms key (one day).
const maxMS = 24 * 60 * 60 * 1000

// fields maps each key to the field it sets.
func (f *Faults) fields() map[string]any {
	return map[string]any{
		"refund_error_rate":     &f.RefundErrorRate,
		"refund_latency_ms":     &f.RefundLatencyMS,
		"notify_duplicate_rate": &f.NotifyDuplicateRate,
		"sms_error_rate":        &f.SMSErrorRate,
		"sms_latency_ms":        &f.SMSLatencyMS,
		"logistics_error_rate":  &f.LogisticsErrorRate,
		"logistics_latency_ms":  &f.LogisticsLatencyMS,
		"delivery_ms":           &f.DeliveryMS,
	}
}

// Apply returns f with the keys of patch set. Any unknown key, rate outside
// [0, 1], or *_ms that is not a whole number in [0, one day] is an error
// naming the key, and then nothing is set.
func (f Faults) Apply(patch map[string]json.RawMessage) (Faults, error) {
	orig := f
	keys := make([]string, 0, len(patch))
	for k := range patch {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fields := f.fields()
	for _, k := range keys {
		field, ok := fields[k]
		if !ok {
			return orig, fmt.Errorf("%s: unknown fault key", k)
		}
		v, err := number(patch[k])
		if err != nil {
			return orig, fmt.Errorf("%s: %w", k, err)
		}
		switch p := field.(type) {
		case *float64:
			if v < 0 || v > 1 {
				return orig, fmt.Errorf("%s: a rate must be in [0, 1], got %v", k, v)
			}
			*p = v
		case *int64:
			if v < 0 || v > maxMS || v != math.Trunc(v) {
				return orig, fmt.Errorf("%s: milliseconds must be a whole number in [0, %d], got %v", k, maxMS, v)
			}
			*p = int64(v)
		}
	}
	return f, nil
}

func number(raw json.RawMessage) (float64, error) {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return 0, fmt.Errorf("must be a number, got null")
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("must be a number, got %s", raw)
	}
	return v, nil
}

// faultKind names the calls a fault applies to.
type faultKind int

const (
	noFaults faultKind = iota
	refundFaults
	smsFaults
	logisticsFaults
)

// profile is what applies to one call: its failure rate and latency.
type profile struct {
	errorRate float64
	latency   time.Duration
}

// of returns the faults that apply to calls of kind.
func (f Faults) of(kind faultKind) profile {
	switch kind {
	case refundFaults:
		return profile{f.RefundErrorRate, ms(f.RefundLatencyMS)}
	case smsFaults:
		return profile{f.SMSErrorRate, ms(f.SMSLatencyMS)}
	case logisticsFaults:
		return profile{f.LogisticsErrorRate, ms(f.LogisticsLatencyMS)}
	}
	return profile{}
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

// failure is how an injected fault makes a call fail.
type failure int

const (
	succeed     failure = iota
	unavailable         // a 503 answer
	dropped             // the connection closed without an answer
)

// roll decides one call's fate: a failure with probability rate, half of
// failures answered 503 and half dropped.
func roll(rate float64) failure {
	if rate <= 0 || rand.Float64() >= rate {
		return succeed
	}
	if rand.IntN(2) == 0 {
		return unavailable
	}
	return dropped
}

// copies is how many times a callback is to be delivered: twice with
// probability notify_duplicate_rate.
func (f Faults) copies() int {
	if f.NotifyDuplicateRate > 0 && rand.Float64() < f.NotifyDuplicateRate {
		return 2
	}
	return 1
}

// String shows f as its JSON, on one line for logs.
func (f Faults) String() string {
	b, _ := json.Marshal(f)
	return string(b)
}
