package agent

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/baton-dev/baton/internal/agent/observe"
	"github.com/baton-dev/baton/internal/agent/report"
	"github.com/baton-dev/baton/internal/pprofhttp"
)

// newReporter builds the agent's reporter on conn.
func newReporter(a *Agent) *report.Reporter {
	o := []report.Option{
		report.WithConsumer(a.opts.Consumer), report.WithEpoch(a.opts.Epoch),
		report.WithClock(a.opts.Clock), report.WithLogger(a.log),
	}
	if a.opts.HeartbeatInterval > 0 {
		o = append(o, report.WithHeartbeat(a.opts.HeartbeatInterval))
	}
	if a.opts.OnReportSent != nil {
		o = append(o, report.WithOnSent(a.opts.OnReportSent))
	}
	return report.New(a.conn, o...)
}

// metrics are the agent's Prometheus metrics.
type metrics struct {
	specs          prometheus.Counter
	sessions       prometheus.Counter
	applies        *prometheus.CounterVec
	deletions      prometheus.Counter
	driftReapplies prometheus.Counter
	syncDuration   prometheus.Histogram
	obsFailures    *prometheus.CounterVec
}

// onHealth is the observer's health hook: it counts observation failures.
func (m *metrics) onHealth(h observe.ScopeHealth) {
	if !h.OK {
		m.obsFailures.WithLabelValues(h.Reason).Inc()
	}
}

func newMetrics(reg *prometheus.Registry, a *Agent) *metrics {
	m := &metrics{
		specs:    prometheus.NewCounter(prometheus.CounterOpts{Name: "baton_agent_specs_received_total", Help: "Spec messages received from the server."}),
		sessions: prometheus.NewCounter(prometheus.CounterOpts{Name: "baton_agent_sessions_total", Help: "Sessions started with the server (Hello sent)."}),
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_agent_applies_total",
			Help: "Bundle applies by result: ok, failed (some object failed), error (bundle not processed)."}, []string{"result"}),
		deletions:      prometheus.NewCounter(prometheus.CounterOpts{Name: "baton_agent_bundle_deletions_total", Help: "Bundles removed completely."}),
		driftReapplies: prometheus.NewCounter(prometheus.CounterOpts{Name: "baton_agent_drift_reapplies_total", Help: "Re-applies caused by an applied object changed or deleted by someone else."}),
		syncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "baton_agent_sync_duration_seconds",
			Help: "Time to sync one bundle (apply or delete, evaluate, report).", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}),
		obsFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_agent_observation_failures_total",
			Help: "Times a resource type (in a namespace) could no longer be observed, by reason: ClusterUnreachable, Forbidden, Unauthorized."}, []string{"reason"}),
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	reg.MustRegister(m.specs, m.sessions, m.applies, m.deletions, m.driftReapplies, m.syncDuration, m.obsFailures,
		gauge("baton_agent_observation_failing_scopes", "Resource types (per namespace) the agent cannot observe now; their objects are reported unconfirmed.",
			func() float64 { return float64(a.observer.Stats().Failing) }),
		gauge("baton_agent_standby", "1 while the agent stands down because another agent serves its consumer.", func() float64 {
			if a.standby.Load() {
				return 1
			}
			return 0
		}),
		gauge("baton_agent_bundles", "Bundles the agent holds.", func() float64 { return float64(a.bundleCount()) }),
		gauge("baton_agent_queue_depth", "Bundles waiting in the work queue.", func() float64 { return float64(a.queue.Len()) }),
		gauge("baton_agent_informers", "Shared informers (resource type and namespace) running.", func() float64 { return float64(a.observer.Stats().Scopes) }),
		gauge("baton_agent_observed_objects", "Distinct objects observed.", func() float64 { return float64(a.observer.Stats().Keys) }),
		counter("baton_agent_reports_sent_total", "Status reports sent the first time.", func() float64 { return float64(a.reporter.Stats().Sent) }),
		counter("baton_agent_reports_resent_total", "Status reports re-sent while unacknowledged.", func() float64 { return float64(a.reporter.Stats().Resent) }),
		counter("baton_agent_heartbeats_total", "Heartbeat messages sent.", func() float64 { return float64(a.reporter.Stats().Heartbeats) }),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Handler serves /healthz (the process runs), /readyz (bundle records
// loaded, workers running, every observed resource type observable),
// /metrics and, with Options.Pprof, /debug/pprof/.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.ready.Load() {
			http.Error(w, "loading bundle records", http.StatusServiceUnavailable)
			return
		}
		if standby, holder := a.Standby(); standby {
			// Ready (a rolling update must proceed), but not serving.
			_, _ = fmt.Fprintf(w, "ok: standing by: agent %q serves consumer %q\n", holder, a.opts.Consumer)
			return
		}
		if failing := a.observer.Failing(); len(failing) > 0 {
			var b strings.Builder
			fmt.Fprintf(&b, "observation failed for %d resource type(s); their objects are reported unconfirmed:\n", len(failing))
			for _, f := range failing {
				fmt.Fprintf(&b, "  %s: %s\n", f.Reason, f.Message)
			}
			http.Error(w, b.String(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.opts.Registry, promhttp.HandlerOpts{}))
	if a.opts.Pprof {
		pprofhttp.Mount(mux, pprofhttp.Loopback)
	}
	return mux
}
