package auditsink

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	lag       *prometheus.GaugeVec
	delivered *prometheus.CounterVec
	failures  *prometheus.CounterVec
	spool     *prometheus.GaugeVec
}

// newMetrics creates the sinks' metrics and registers them with reg when
// it is not nil.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "signet_audit_sink_lag_entries",
			Help: "Audit entries in the log that the sink's destination does not have yet.",
		}, []string{"sink"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_audit_sink_delivered_total",
			Help: "Audit entries delivered to the sink's destination (repeats after a restart included).",
		}, []string{"sink"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_audit_sink_failures_total",
			Help: "Failed attempts to deliver to the sink's destination (each is retried).",
		}, []string{"sink"}),
		spool: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "signet_audit_sink_spool_bytes",
			Help: "Bytes in a webhook sink's on-disk spool, waiting for the receiver.",
		}, []string{"sink"}),
	}
	if reg != nil {
		if err := m.register(reg); err != nil {
			panic(err)
		}
	}
	return m
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.lag, m.delivered, m.failures, m.spool} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
