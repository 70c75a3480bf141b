package webhook

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/baton-dev/baton/pkg/api"
)

// Metrics, per subscription name:
//
//	baton_webhook_deliveries_total{subscription,result}   counter: attempts, result success|failure
//	baton_webhook_backlog{subscription}                   gauge: undelivered events
//	baton_webhook_oldest_undelivered_seconds{subscription} gauge: age of the oldest undelivered event (0: none)
//	baton_webhook_dropped_total{subscription}             counter: events dropped by the backlog bound
//	baton_webhook_failing{subscription}                   gauge: 1 while the subscription is Failing
//
// The gauges are read from the store when scraped, so every replica
// reports the same values.
type metrics struct {
	m          *Manager
	deliveries *prometheus.CounterVec
	backlog    *prometheus.Desc
	oldest     *prometheus.Desc
	dropped    *prometheus.Desc
	failing    *prometheus.Desc
}

// Register adds the manager's metrics to reg.
func (m *Manager) Register(reg prometheus.Registerer) error {
	if err := reg.Register(m.metrics.deliveries); err != nil {
		return err
	}
	return reg.Register(m.metrics)
}

func newMetrics(m *Manager) *metrics {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"subscription"}, nil)
	}
	return &metrics{
		m: m,
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "baton_webhook_deliveries_total", Help: "Webhook delivery attempts by result (success, failure).",
		}, []string{"subscription", "result"}),
		backlog: d("baton_webhook_backlog", "Undelivered webhook events."),
		oldest:  d("baton_webhook_oldest_undelivered_seconds", "Age of the oldest undelivered webhook event (0 when none)."),
		dropped: d("baton_webhook_dropped_total", "Webhook events dropped to bound the backlog."),
		failing: d("baton_webhook_failing", "1 while the subscription is Failing (consecutive failed attempts)."),
	}
}

func (x *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{x.backlog, x.oldest, x.dropped, x.failing} {
		ch <- d
	}
}

func (x *metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	subs, err := x.m.st.ListSubscriptions(ctx)
	if err != nil {
		x.m.log.Warn("webhook: metrics: read subscriptions", "err", err)
		return
	}
	now := x.m.o.Clock.Now()
	for _, s := range subs {
		d := s.Delivery
		age := 0.0
		if d.OldestUndelivered != nil {
			age = max(now.Sub(*d.OldestUndelivered), 0).Seconds()
		}
		failing := 0.0
		if x.m.State(d) == api.SubscriptionFailing {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(x.backlog, prometheus.GaugeValue, float64(d.Backlog), s.Name)
		ch <- prometheus.MustNewConstMetric(x.oldest, prometheus.GaugeValue, age, s.Name)
		ch <- prometheus.MustNewConstMetric(x.dropped, prometheus.CounterValue, float64(d.Dropped), s.Name)
		ch <- prometheus.MustNewConstMetric(x.failing, prometheus.GaugeValue, failing, s.Name)
	}
}
