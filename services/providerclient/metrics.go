package providerclient

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts provider calls. A nil *Metrics counts nothing.
type Metrics struct {
	calls   *prometheus.CounterVec
	seconds *prometheus.HistogramVec
}

// NewMetrics registers the provider call metrics with reg: every attempt
// counted by call and outcome (ok, refused, unavailable) and timed.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qianlang_provider_calls_total",
			Help: "Attempts of calls to the provider, by call and outcome: ok, refused (a definite 4xx), unavailable (5xx, timeout, dropped connection; retried).",
		}, []string{"call", "outcome"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "qianlang_provider_call_seconds",
			Help:    "Time of one attempt of a provider call, by call.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"call"}),
	}
	reg.MustRegister(m.calls, m.seconds)
	return m
}

func (m *Metrics) observe(call string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(call, outcome(err)).Inc()
	m.seconds.WithLabelValues(call).Observe(time.Since(start).Seconds())
}
