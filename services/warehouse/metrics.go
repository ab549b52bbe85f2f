package warehouse

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts what the warehouse did. A nil *Metrics counts nothing.
type Metrics struct{ shipments *prometheus.CounterVec }

// NewMetrics registers the warehouse's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{shipments: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "qianlang_shipments_total",
		Help: "Orders shipped, cancelled before shipping, and delivered.",
	}, []string{"outcome"})}
	reg.MustRegister(m.shipments)
	return m
}

func (m *Metrics) count(state string) {
	if m != nil {
		m.shipments.WithLabelValues(state).Inc()
	}
}
