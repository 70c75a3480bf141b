package server

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/baton-dev/baton/internal/store"
)

// instrumentedStore is a store.Store that records the latency and outcome
// of every operation in a histogram labelled by operation and result
// (ok, not_found, conflict, invalid, error).
type instrumentedStore struct {
	s   store.Store
	dur *prometheus.HistogramVec
}

var _ store.Store = (*instrumentedStore)(nil)

// InstrumentStore wraps s so that every call is measured in
// baton_store_operation_duration_seconds registered on reg.
func InstrumentStore(s store.Store, reg prometheus.Registerer) (store.Store, error) {
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "baton_store_operation_duration_seconds",
		Help:    "Latency of store operations by operation and result.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"op", "result"})
	if err := reg.Register(dur); err != nil {
		return nil, err
	}
	return &instrumentedStore{s: s, dur: dur}, nil
}

func (m *instrumentedStore) observe(op string, start time.Time, err error) {
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		result = "not_found"
	case errors.Is(err, store.ErrConflict):
		result = "conflict"
	case errors.Is(err, store.ErrInvalid):
		result = "invalid"
	default:
		result = "error"
	}
	m.dur.WithLabelValues(op, result).Observe(time.Since(start).Seconds())
}

func (m *instrumentedStore) CreateConsumer(ctx context.Context, c store.Consumer) (_ store.Consumer, err error) {
	defer func(t time.Time) { m.observe("CreateConsumer", t, err) }(time.Now())
	return m.s.CreateConsumer(ctx, c)
}

func (m *instrumentedStore) GetConsumer(ctx context.Context, idOrName string) (_ store.Consumer, err error) {
	defer func(t time.Time) { m.observe("GetConsumer", t, err) }(time.Now())
	return m.s.GetConsumer(ctx, idOrName)
}

func (m *instrumentedStore) ListConsumers(ctx context.Context, opts store.ListOptions) (_ store.Page[store.Consumer], err error) {
	defer func(t time.Time) { m.observe("ListConsumers", t, err) }(time.Now())
	return m.s.ListConsumers(ctx, opts)
}

func (m *instrumentedStore) UpdateConsumerLabels(ctx context.Context, id string, labels map[string]string) (_ store.Consumer, err error) {
	defer func(t time.Time) { m.observe("UpdateConsumerLabels", t, err) }(time.Now())
	return m.s.UpdateConsumerLabels(ctx, id, labels)
}

func (m *instrumentedStore) DeleteConsumer(ctx context.Context, id string) (err error) {
	defer func(t time.Time) { m.observe("DeleteConsumer", t, err) }(time.Now())
	return m.s.DeleteConsumer(ctx, id)
}

func (m *instrumentedStore) CreateBundle(ctx context.Context, b store.Bundle) (_ store.Bundle, err error) {
	defer func(t time.Time) { m.observe("CreateBundle", t, err) }(time.Now())
	return m.s.CreateBundle(ctx, b)
}

func (m *instrumentedStore) UpdateBundle(ctx context.Context, b store.Bundle, expectedGeneration int64) (_ store.Bundle, err error) {
	defer func(t time.Time) { m.observe("UpdateBundle", t, err) }(time.Now())
	return m.s.UpdateBundle(ctx, b, expectedGeneration)
}

func (m *instrumentedStore) GetBundle(ctx context.Context, id string) (_ store.Bundle, err error) {
	defer func(t time.Time) { m.observe("GetBundle", t, err) }(time.Now())
	return m.s.GetBundle(ctx, id)
}

func (m *instrumentedStore) ListBundles(ctx context.Context, opts store.ListOptions) (_ store.Page[store.Bundle], err error) {
	defer func(t time.Time) { m.observe("ListBundles", t, err) }(time.Now())
	return m.s.ListBundles(ctx, opts)
}

// StreamBundles is observed from the call to the last row, the time spent
// writing to the client included; an error of the caller's callbacks (a
// client that went away) is not counted as a store error.
func (m *instrumentedStore) StreamBundles(ctx context.Context, opts store.ListOptions, start func(total, n int) error, each func(*store.Bundle) error) error {
	return observeStream(m, "StreamBundles", start, each, func(start func(int, int) error, each func(*store.Bundle) error) error {
		return m.s.StreamBundles(ctx, opts, start, each)
	})
}

// StreamConsumers is observed as StreamBundles.
func (m *instrumentedStore) StreamConsumers(ctx context.Context, opts store.ListOptions, start func(total, n int) error, each func(*store.Consumer) error) error {
	return observeStream(m, "StreamConsumers", start, each, func(start func(int, int) error, each func(*store.Consumer) error) error {
		return m.s.StreamConsumers(ctx, opts, start, each)
	})
}

func observeStream[T any](m *instrumentedStore, op string, start func(int, int) error, each func(*T) error,
	call func(func(int, int) error, func(*T) error) error) error {
	var calleeErr error
	t := time.Now()
	err := call(func(total, n int) error {
		calleeErr = start(total, n)
		return calleeErr
	}, func(v *T) error {
		calleeErr = each(v)
		return calleeErr
	})
	if calleeErr != nil {
		m.observe(op, t, nil)
	} else {
		m.observe(op, t, err)
	}
	return err
}

func (m *instrumentedStore) ListBundlesByConsumer(ctx context.Context, consumer string) (_ []store.Bundle, err error) {
	defer func(t time.Time) { m.observe("ListBundlesByConsumer", t, err) }(time.Now())
	return m.s.ListBundlesByConsumer(ctx, consumer)
}

func (m *instrumentedStore) DeleteBundle(ctx context.Context, id string) (_ store.Bundle, err error) {
	defer func(t time.Time) { m.observe("DeleteBundle", t, err) }(time.Now())
	return m.s.DeleteBundle(ctx, id)
}

func (m *instrumentedStore) PurgeBundle(ctx context.Context, id string, generation int64) (err error) {
	defer func(t time.Time) { m.observe("PurgeBundle", t, err) }(time.Now())
	return m.s.PurgeBundle(ctx, id, generation)
}

func (m *instrumentedStore) ConfirmStatuses(ctx context.Context, consumer string, digest map[string]string, at time.Time) (_ []string, err error) {
	defer func(t time.Time) { m.observe("ConfirmStatuses", t, err) }(time.Now())
	return m.s.ConfirmStatuses(ctx, consumer, digest, at)
}

func (m *instrumentedStore) ConfirmStatus(ctx context.Context, consumer, bundleID, hash string, at time.Time) (_ bool, err error) {
	defer func(t time.Time) { m.observe("ConfirmStatus", t, err) }(time.Now())
	return m.s.ConfirmStatus(ctx, consumer, bundleID, hash, at)
}

func (m *instrumentedStore) PendingOutbox(ctx context.Context, consumer string, limit int) (_ []store.OutboxEvent, err error) {
	defer func(t time.Time) { m.observe("PendingOutbox", t, err) }(time.Now())
	return m.s.PendingOutbox(ctx, consumer, limit)
}

func (m *instrumentedStore) MarkSent(ctx context.Context, seqs []int64, at time.Time) (err error) {
	defer func(t time.Time) { m.observe("MarkSent", t, err) }(time.Now())
	return m.s.MarkSent(ctx, seqs, at)
}

func (m *instrumentedStore) AckOutbox(ctx context.Context, consumer, bundleID string, generation int64) (err error) {
	defer func(t time.Time) { m.observe("AckOutbox", t, err) }(time.Now())
	return m.s.AckOutbox(ctx, consumer, bundleID, generation)
}

func (m *instrumentedStore) ConsumersWithPending(ctx context.Context) (_ []string, err error) {
	defer func(t time.Time) { m.observe("ConsumersWithPending", t, err) }(time.Now())
	return m.s.ConsumersWithPending(ctx)
}

func (m *instrumentedStore) SetAgentState(ctx context.Context, consumer string, s store.AgentState) (err error) {
	defer func(t time.Time) { m.observe("SetAgentState", t, err) }(time.Now())
	return m.s.SetAgentState(ctx, consumer, s)
}

func (m *instrumentedStore) ChangesSince(ctx context.Context, seq int64, limit int) (_ []store.Change, err error) {
	defer func(t time.Time) { m.observe("ChangesSince", t, err) }(time.Now())
	return m.s.ChangesSince(ctx, seq, limit)
}

func (m *instrumentedStore) LatestChange(ctx context.Context) (_ int64, err error) {
	defer func(t time.Time) { m.observe("LatestChange", t, err) }(time.Now())
	return m.s.LatestChange(ctx)
}

func (m *instrumentedStore) Ping(ctx context.Context) (err error) {
	defer func(t time.Time) { m.observe("Ping", t, err) }(time.Now())
	return m.s.Ping(ctx)
}

func (m *instrumentedStore) ApplyStatus(ctx context.Context, u store.StatusUpdate) (_ store.StatusResult, _ store.Bundle, err error) {
	defer func(t time.Time) { m.observe("ApplyStatus", t, err) }(time.Now())
	return m.s.ApplyStatus(ctx, u)
}

// Close closes the wrapped store.
func (m *instrumentedStore) Close() error { return m.s.Close() }

func (m *instrumentedStore) PendingOutboxQuery(ctx context.Context, q store.OutboxQuery) (_ []store.OutboxEvent, err error) {
	defer func(t time.Time) { m.observe("PendingOutboxQuery", t, err) }(time.Now())
	return m.s.PendingOutboxQuery(ctx, q)
}

func (m *instrumentedStore) OrphanBundle(ctx context.Context, id string) (_ store.Bundle, err error) {
	defer func(t time.Time) { m.observe("OrphanBundle", t, err) }(time.Now())
	return m.s.OrphanBundle(ctx, id)
}

func (m *instrumentedStore) DecommissionConsumer(ctx context.Context, idOrName string) (_ store.Decommission, err error) {
	defer func(t time.Time) { m.observe("DecommissionConsumer", t, err) }(time.Now())
	return m.s.DecommissionConsumer(ctx, idOrName)
}

func (m *instrumentedStore) Decommissioned(ctx context.Context, name string) (_ store.Decommission, err error) {
	defer func(t time.Time) { m.observe("Decommissioned", t, err) }(time.Now())
	return m.s.Decommissioned(ctx, name)
}

func (m *instrumentedStore) Orphans(ctx context.Context, consumer string) (_ []store.Orphan, err error) {
	defer func(t time.Time) { m.observe("Orphans", t, err) }(time.Now())
	return m.s.Orphans(ctx, consumer)
}

func (m *instrumentedStore) ForgetOrphan(ctx context.Context, consumer, bundleID string, gen int64) (err error) {
	defer func(t time.Time) { m.observe("ForgetOrphan", t, err) }(time.Now())
	return m.s.ForgetOrphan(ctx, consumer, bundleID, gen)
}
