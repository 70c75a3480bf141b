package freshness

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/pkg/api"
)

func TestTracker(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		t0 := time.Now().UTC().Truncate(time.Second)
		clk := clocktesting.NewFakeClock(t0)
		for _, c := range []string{"up", "down"} {
			if _, err := st.CreateConsumer(ctx, store.Consumer{Name: c}); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.SetAgentState(ctx, "up", store.AgentState{Connected: true, Epoch: "e", LastHeartbeat: t0}); err != nil {
			t.Fatal(err)
		}
		spec := api.BundleSpec{Manifests: []json.RawMessage{json.RawMessage(`{"kind":"ConfigMap"}`)}}
		var ids = map[string]string{}
		for _, b := range []struct{ id, consumer string }{{"fresh", "up"}, {"undelivered", "up"}, {"far", "down"}} {
			got, err := st.CreateBundle(ctx, store.Bundle{ID: b.id, ConsumerName: b.consumer, Spec: spec})
			if err != nil {
				t.Fatal(err)
			}
			ids[b.id] = got.ID
		}
		rs := api.ReportedStatus{}
		if res, _, err := st.ApplyStatus(ctx, store.StatusUpdate{ConsumerName: "up", BundleID: "fresh", AgentEpoch: "e",
			AgentRevision: 1, ObservedGeneration: 1, Reported: rs, Hash: "h", SequenceID: "1", At: t0}); err != nil || res != store.StatusAccepted {
			t.Fatalf("apply status: %v %v", res, err)
		}

		reg := prometheus.NewRegistry()
		tr, err := NewTracker(st, reg, WithClock(clk), WithHeartbeatTimeout(30*time.Second), WithCacheTTL(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		verdict := func(id string) *api.Freshness {
			b, err := st.GetBundle(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return tr.Freshness(ctx, b)
		}
		clk.Step(2 * time.Second)
		if f := verdict("fresh"); f == nil || f.State != api.FreshnessFresh || f.AgeSeconds != 2 {
			t.Errorf("fresh: got %+v; want Fresh aged 2 s", f)
		}
		if f := verdict("undelivered"); f == nil || f.Reason != api.ReasonNotDelivered {
			t.Errorf("undelivered: got %+v; want NotDelivered", f)
		}
		if f := verdict("far"); f == nil || f.Reason != api.ReasonAgentDisconnected {
			t.Errorf("far: got %+v; want AgentDisconnected", f)
		}
		if f := tr.Freshness(ctx, store.Bundle{ID: "x", ConsumerName: "ghost"}); f != nil {
			t.Errorf("unknown consumer: got %+v; want nil", f)
		}

		// The non-blocking source agrees, and refreshes its cache in the
		// background once the entry is older than the TTL.
		src := tr.Source()
		b, _ := st.GetBundle(ctx, "far")
		if f := src.Freshness(&b); f == nil || f.Reason != api.ReasonAgentDisconnected {
			t.Errorf("source: far: got %+v; want AgentDisconnected", f)
		}
		later := clk.Now().Add(time.Minute + time.Second) // past the cache TTL
		if err := st.SetAgentState(ctx, "down", store.AgentState{Connected: true, Epoch: "e", LastHeartbeat: later}); err != nil {
			t.Fatal(err)
		}
		clk.SetTime(later)
		if f := src.Freshness(&b); f == nil || f.Reason != api.ReasonAgentDisconnected {
			t.Errorf("source: far, cached entry: got %+v; want AgentDisconnected", f)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			if f := src.Freshness(&b); f != nil && f.Reason == api.ReasonNotDelivered {
				break // refreshed: connected now, never reported
			}
			if time.Now().After(deadline) {
				t.Fatal("source: cached consumer state never refreshed")
			}
			time.Sleep(10 * time.Millisecond)
		}
		// Forget (the hub recorded a disconnect): the next read sees it,
		// whatever the TTL.
		if err := st.SetAgentState(ctx, "down", store.AgentState{Connected: false, LastHeartbeat: later}); err != nil {
			t.Fatal(err)
		}
		tr.Forget("down")
		if f := src.Freshness(&b); f == nil || f.Reason != api.ReasonAgentDisconnected {
			t.Errorf("source: far after Forget: got %+v; want AgentDisconnected at once", f)
		}
		if err := st.SetAgentState(ctx, "up", store.AgentState{Connected: true, Epoch: "e", LastHeartbeat: clk.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := st.SetAgentState(ctx, "down", store.AgentState{Connected: false, LastHeartbeat: clk.Now()}); err != nil {
			t.Fatal(err)
		}
		b, _ = st.GetBundle(ctx, "fresh")
		if _, _, err := st.ApplyStatus(ctx, store.StatusUpdate{ConsumerName: "up", BundleID: "fresh", AgentEpoch: "e",
			AgentRevision: 2, ObservedGeneration: 1, Reported: rs, Hash: "h", At: clk.Now()}); err != nil {
			t.Fatal(err)
		}
		clk.Step(2 * time.Second)

		counts, err := tr.Pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{api.ReasonNotDelivered: 1, api.ReasonAgentDisconnected: 1}
		if len(counts) != len(want) || counts[api.ReasonNotDelivered] != 1 || counts[api.ReasonAgentDisconnected] != 1 {
			t.Errorf("Pass: got %v; want %v", counts, want)
		}
		got := gather(t, reg)
		if got["baton_bundles_stale/NotDelivered"] != 1 || got["baton_bundles_stale/NoReportSince"] != 0 ||
			got["baton_bundles_tracked"] != 3 || got["baton_bundle_freshness_age_seconds_count"] != 3 {
			t.Errorf("metrics: got %v", got)
		}

		// Time passes without heartbeats: the consumer's agent times out.
		clk.Step(40 * time.Second)
		counts, _ = tr.Pass(ctx)
		if counts[api.ReasonAgentDisconnected] != 3 {
			t.Errorf("after the heartbeat timeout: got %v; want 3 AgentDisconnected", counts)
		}
	})
}

// gather flattens gauges (name/label) and histogram counts (name_count).
func gather(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			switch mf.GetType() {
			case dto.MetricType_GAUGE:
				out[name] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[name+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}
