package hub

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/baton-dev/baton/internal/store"
)

type metrics struct {
	specs    *prometheus.CounterVec // kind: sent | resent
	status   *prometheus.CounterVec // result
	requests prometheus.Counter
	sessions prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		specs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "baton_hub_specs_sent_total",
			Help: "Spec messages sent to agents; kind is sent for a first attempt, resent for a repeat.",
		}, []string{"kind"}),
		status: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "baton_hub_status_reports_total",
			Help: "Status reports received from agents by outcome (accepted, confirmed, stale, purged, unknown).",
		}, []string{"result"}),
		requests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "baton_hub_status_requests_total",
			Help: "Bundles whose status the server asked an agent to report again.",
		}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "baton_hub_sessions_connected",
			Help: "Agent sessions served by this replica.",
		}),
	}
	for _, c := range []prometheus.Collector{m.specs, m.status, m.requests, m.sessions} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func resultName(r store.StatusResult) string {
	switch r {
	case store.StatusAccepted:
		return "accepted"
	case store.StatusConfirmed:
		return "confirmed"
	case store.StatusStale:
		return "stale"
	case store.StatusPurged:
		return "purged"
	case store.StatusUnknown:
		return "unknown"
	}
	return "other"
}
