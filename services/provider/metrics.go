package provider

import "github.com/prometheus/client_golang/prometheus"

// Call outcomes, the label of qianlang_provider_calls_total.
const (
	outcomeOK            = "ok"             // answered 200 after doing the work
	outcomeReplayed      = "replayed"       // answered 200 with a stored answer (idempotency key seen)
	outcomeRejected      = "rejected"       // answered 4xx
	outcomeError         = "error"          // answered 5xx of its own
	outcomeInjectedError = "injected_error" // answered 503 by an injected fault
	outcomeDropped       = "dropped"        // connection dropped by an injected fault
)

type metrics struct {
	calls     *prometheus.CounterVec
	delivered *prometheus.CounterVec
	retried   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qianlang_provider_calls_total",
			Help: "Calls to the provider's API, by endpoint and outcome (ok, replayed, rejected, error, injected_error, dropped).",
		}, []string{"endpoint", "outcome"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qianlang_provider_callbacks_delivered_total",
			Help: "Callbacks the platform acknowledged with a 2xx, by kind (payment, delivery).",
		}, []string{"kind"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qianlang_provider_callbacks_retried_total",
			Help: "Callback attempts that failed and were put off to be retried, by kind (payment, delivery).",
		}, []string{"kind"}),
	}
	reg.MustRegister(m.calls, m.delivered, m.retried)
	return m
}

func (m *metrics) call(endpoint, outcome string) { m.calls.WithLabelValues(endpoint, outcome).Inc() }
