package report

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
)

type nopSender struct{}

func (nopSender) Send(context.Context, protocol.Message) error { return nil }

// BenchmarkSetToSent measures the latency from Set of a changed status to
// the report leaving the Reporter, with the default coalesce window and
// with none.
func BenchmarkSetToSent(b *testing.B) {
	for _, window := range []time.Duration{0, DefaultCoalesce} {
		b.Run(fmt.Sprintf("coalesce=%v", window), func(b *testing.B) {
			sent := make(chan SentEvent, 1)
			r := New(nopSender{}, WithCoalesce(window), WithOnSent(func(e SentEvent) { sent <- e }))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { _ = r.Start(ctx) }()
			var total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				r.Set("b1", 1, status(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), "u1"))
				e := <-sent
				total += e.At.Sub(start)
				r.Ack(protocol.StatusAck{Epoch: r.Epoch(), BundleID: "b1", Revision: e.Revision})
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs/report")
		})
	}
}

// BenchmarkSetUnchanged measures the cost of re-evaluations that change
// nothing (hashing and comparing), the common case on resync.
func BenchmarkSetUnchanged(b *testing.B) {
	r := New(nopSender{})
	st := status("1.1.1.1", "u1")
	r.Set("b1", 1, st)
	r.RequestStatus(nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Set("b1", 1, st)
	}
}
