package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"
)

// oldestOutbox is the part of a store that dates its oldest pending spec
// delivery (sqlstore.Store has it).
type oldestOutbox interface {
	OldestPendingOutbox(ctx context.Context) (time.Time, error)
}

// outboxAgeTimeout bounds the store read behind one scrape.
const outboxAgeTimeout = 2 * time.Second

// registerOutboxAge exports baton_outbox_oldest_pending_seconds: how long
// the oldest spec change not yet acknowledged by its agent has waited (0
// with none pending, -1 when the store cannot be read). Every replica
// reports the same value: the outbox is shared.
//
// spec_controller_event_oldest_unreconciled_age_seconds is the same value
// under Maestro's name (its spec controller's oldest event not yet handled).
func registerOutboxAge(reg prometheus.Registerer, st oldestOutbox, clk clock.PassiveClock) error {
	age := func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), outboxAgeTimeout)
		defer cancel()
		t, err := st.OldestPendingOutbox(ctx)
		switch {
		case err != nil:
			return -1
		case t.IsZero():
			return 0
		}
		return max(0, clk.Since(t).Seconds())
	}
	if err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "baton_outbox_oldest_pending_seconds",
		Help: "Age of the oldest spec delivery not yet acknowledged by its agent (0: none pending; -1: store unreadable).",
	}, age)); err != nil {
		return err
	}
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "spec_controller_event_oldest_unreconciled_age_seconds",
		Help: "Maestro's name of baton_outbox_oldest_pending_seconds: age of the oldest spec change not yet acknowledged by its agent.",
	}, age))
}
