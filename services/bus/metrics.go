package bus

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what a service sent and consumed. A nil *Metrics counts
// nothing.
type Metrics struct {
	sentTotal     *prometheus.CounterVec
	sendSeconds   *prometheus.HistogramVec
	consumedTotal *prometheus.CounterVec
	consumeSecs   *prometheus.HistogramVec
}

// NewMetrics registers the queue metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sentTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qianlang_messages_sent_total",
			Help: "Messages sent to the queue, by topic and outcome (ok, error).",
		}, []string{"topic", "outcome"}),
		sendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "qianlang_message_send_seconds",
			Help:    "Time from send to the queue's acknowledgement (or reply, for requests).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"topic"}),
		consumedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qianlang_messages_consumed_total",
			Help: "Deliveries handled, by consumer group, topic and outcome: ok, failed (to be redelivered), retried_ok (a redelivery that succeeded).",
		}, []string{"group", "topic", "outcome"}),
		consumeSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "qianlang_message_consume_seconds",
			Help:    "Time to handle one delivery, by consumer group and topic.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"group", "topic"}),
	}
	reg.MustRegister(m.sentTotal, m.sendSeconds, m.consumedTotal, m.consumeSecs)
	return m
}

// Sent counts one send of topic that started at start.
func (m *Metrics) Sent(topic string, start time.Time, err error) {
	if m == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.sentTotal.WithLabelValues(topic, outcome).Inc()
	m.sendSeconds.WithLabelValues(topic).Observe(time.Since(start).Seconds())
}

func (m *Metrics) consumed(group, topic string, reconsume int32, start time.Time, err error) {
	if m == nil {
		return
	}
	outcome := "ok"
	switch {
	case err != nil:
		outcome = "failed"
	case reconsume > 0:
		outcome = "retried_ok"
	}
	m.consumedTotal.WithLabelValues(group, topic, outcome).Inc()
	m.consumeSecs.WithLabelValues(group, topic).Observe(time.Since(start).Seconds())
}
