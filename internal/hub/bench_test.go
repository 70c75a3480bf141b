package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/pkg/api"
)

// BenchmarkResync measures a reconnecting agent that holds nothing: per
// bundle, the server sends the spec, takes the ack, stores the first
// status and acks it (SQLite, in-process pipe).
func BenchmarkResync(b *testing.B) {
	st := storetest.NewSQLite(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := st.CreateConsumer(ctx, store.Consumer{Name: consumer}); err != nil {
		b.Fatal(err)
	}
	spec := api.BundleSpec{Manifests: []json.RawMessage{manifest("x")}}
	for i := range b.N {
		if _, err := st.CreateBundle(ctx, store.Bundle{ID: fmt.Sprintf("b%d", i), ConsumerName: consumer, Spec: spec}); err != nil {
			b.Fatal(err)
		}
	}
	h, err := New(st, WithRegisterer(prometheus.NewRegistry()), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	a := newFakeAgent(nil, "e1")
	p := protocol.NewPipe(4096)
	a.conn = p.Agent()
	b.ResetTimer()
	start := time.Now()
	go func() { _ = h.Attach(ctx, consumer, p.Server()) }()
	go a.run(ctx, p.Agent())
	go func() { // the fake agent records specs; keep its queue from filling
		for {
			select {
			case <-a.specs:
			case <-ctx.Done():
				return
			}
		}
	}()
	a.hello(ctx)
	for acks := 0; acks < b.N; acks++ {
		select {
		case <-a.acks:
		case <-time.After(time.Minute):
			b.Fatalf("%d of %d statuses acked", acks, b.N)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "bundles/s")
}

// BenchmarkDigest measures checking one heartbeat digest of 500 bundles,
// all matching (SQLite): one ConfirmStatuses for the digest, plus one
// listing.
func BenchmarkDigest(b *testing.B) {
	const n = 500
	st := storetest.NewSQLite(b)
	ctx := context.Background()
	if _, err := st.CreateConsumer(ctx, store.Consumer{Name: consumer}); err != nil {
		b.Fatal(err)
	}
	spec := api.BundleSpec{Manifests: []json.RawMessage{manifest("x")}}
	digest := map[string]string{}
	rs := statusFor(1)
	hash := protocol.HashStatus(rs)
	for i := range n {
		id := fmt.Sprintf("b%d", i)
		if _, err := st.CreateBundle(ctx, store.Bundle{ID: id, ConsumerName: consumer, Spec: spec}); err != nil {
			b.Fatal(err)
		}
		if err := st.AckOutbox(ctx, consumer, id, 1); err != nil {
			b.Fatal(err)
		}
		if _, _, err := st.ApplyStatus(ctx, store.StatusUpdate{ConsumerName: consumer, BundleID: id, AgentEpoch: "e1",
			AgentRevision: int64(i + 1), ObservedGeneration: 1, Reported: rs, Hash: hash}); err != nil {
			b.Fatal(err)
		}
		digest[id] = hash
	}
	h, err := New(st, WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		b.Fatal(err)
	}
	s := newSession(h, consumer, protocol.NewPipe(1).Server(), func() {})
	for b.Loop() {
		if err := s.checkDigest(ctx, digest); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/bundle")
}
