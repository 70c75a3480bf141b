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
	// Hello admission (admit.go).
	hellosWaiting prometheus.Gauge
	helloWait     prometheus.Histogram
	// standDowns counts Hellos answered with stand down (a second agent).
	standDowns prometheus.Counter
	// Maestro's names for the same quantities.
	firstStatus prometheus.Histogram // bundle created → its first status accepted
	statusProc  prometheus.Histogram // a status event received → stored
	resync      prometheus.Histogram // a Hello's resync
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
		hellosWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "baton_hub_hellos_waiting",
			Help: "Agent Hellos waiting for admission (--hello-rate) before their resync.",
		}),
		helloWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "baton_hub_hello_admission_wait_seconds",
			Help:    "How long Hellos waited for admission (--hello-rate).",
			Buckets: []float64{0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60},
		}),
		standDowns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "baton_hub_agent_stand_downs_total",
			Help: "Hellos answered with stand down: another agent's session serves the consumer.",
		}),
		firstStatus: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "resource_first_status_latency_seconds",
			Help:    "Time from a bundle's creation to the first status accepted for it (Maestro's name).",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		statusProc: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "resource_status_event_processing_latency_seconds",
			Help:    "Time to process one status event from an agent, from its receipt to the store (Maestro's name).",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1},
		}),
		resync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "resources_spec_resync_duration_seconds",
			Help:    "Duration of the spec resync of an agent's Hello: every bundle that differs sent (Maestro's name).",
			Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30},
		}),
	}
	for _, c := range []prometheus.Collector{m.specs, m.status, m.requests, m.sessions, m.hellosWaiting, m.helloWait, m.standDowns,
		m.firstStatus, m.statusProc, m.resync} {
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
