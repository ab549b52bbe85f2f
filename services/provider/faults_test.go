package provider

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFaultsApply(t *testing.T) {
	base := DefaultFaults()
	for _, c := range []struct {
		name  string
		patch string
		want  Faults
		err   string // the key the error names; "" for none
	}{
		{"empty", `{}`, base, ""},
		{"rate 0", `{"refund_error_rate": 0}`, base, ""},
		{"rate 1", `{"sms_error_rate": 1}`, Faults{SMSErrorRate: 1, DeliveryMS: 5000}, ""},
		{"latency", `{"logistics_latency_ms": 250, "delivery_ms": 100}`, Faults{LogisticsLatencyMS: 250, DeliveryMS: 100}, ""},
		{"latency 0", `{"delivery_ms": 0}`, Faults{}, ""},
		{"integral float", `{"refund_latency_ms": 200.0}`, Faults{RefundLatencyMS: 200, DeliveryMS: 5000}, ""},
		{"one day", `{"delivery_ms": 86400000}`, Faults{DeliveryMS: 86400000}, ""},
		{"rate above 1", `{"refund_error_rate": 1.01}`, base, "refund_error_rate"},
		{"rate below 0", `{"notify_duplicate_rate": -0.5}`, base, "notify_duplicate_rate"},
		{"rate string", `{"sms_error_rate": "0.5"}`, base, "sms_error_rate"},
		{"rate null", `{"logistics_error_rate": null}`, base, "logistics_error_rate"},
		{"negative latency", `{"sms_latency_ms": -1}`, base, "sms_latency_ms"},
		{"fractional latency", `{"refund_latency_ms": 0.5}`, base, "refund_latency_ms"},
		{"latency above a day", `{"delivery_ms": 86400001}`, base, "delivery_ms"},
		{"latency object", `{"logistics_latency_ms": {}}`, base, "logistics_latency_ms"},
		{"unknown key", `{"refund_rate": 0.5}`, base, "refund_rate"},
		{"one bad key spoils all", `{"sms_error_rate": 0.5, "zz": 1}`, base, "zz"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var patch map[string]json.RawMessage
			require.NoError(t, json.Unmarshal([]byte(c.patch), &patch))
			got, err := base.Apply(patch)
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				require.Equal(t, base, got, "nothing set")
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func TestRoll(t *testing.T) {
	for range 1000 {
		require.Equal(t, succeed, roll(0))
		require.NotEqual(t, succeed, roll(1))
	}
	seen := map[failure]int{}
	for range 1000 {
		seen[roll(1)]++
	}
	require.Greater(t, seen[unavailable], 350)
	require.Greater(t, seen[dropped], 350)
	require.Equal(t, 2, Faults{NotifyDuplicateRate: 1}.copies())
	require.Equal(t, 1, Faults{}.copies())
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{100, 200, 400, 800, 1600, 2000, 2000, 2000}
	for i, w := range want {
		require.Equal(t, w*time.Millisecond, backoff(i+1), "attempt %d", i+1)
	}
	require.Equal(t, 2*time.Second, backoff(1000))
}
