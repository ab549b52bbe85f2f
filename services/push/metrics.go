package push

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts the notifications sent. A nil *Metrics counts nothing.
type Metrics struct{ notified *prometheus.CounterVec }

// NewMetrics registers push's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{notified: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "qianlang_notifications_sent_total",
		Help: "Notifications sent by SMS and recorded, by kind.",
	}, []string{"kind"})}
	reg.MustRegister(m.notified)
	return m
}

func (m *Metrics) sent(kind string) {
	if m != nil {
		m.notified.WithLabelValues(kind).Inc()
	}
}
