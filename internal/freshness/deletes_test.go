package freshness

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
)

// Pending deletes per consumer and the age of the oldest, from each pass;
// a consumer whose deletes all ended is no longer listed.
func TestPendingDeleteMetrics(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		for _, c := range []string{"a", "b"} {
			if _, err := st.CreateConsumer(ctx, store.Consumer{Name: c}); err != nil {
				t.Fatal(err)
			}
		}
		var first store.Bundle
		for i, id := range []string{"a1", "a2", "b1"} {
			b, err := st.CreateBundle(ctx, store.Bundle{ID: id, ConsumerName: id[:1]})
			if err == nil && id != "b1" {
				b, err = st.DeleteBundle(ctx, id)
			}
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = b
			}
		}
		clk := clocktesting.NewFakeClock(first.DeletedAt.Add(90 * time.Second))
		tr, err := NewTracker(st, prometheus.NewRegistry(), WithClock(clk))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		if n := testutil.ToFloat64(tr.deletes.WithLabelValues("a")); n != 2 {
			t.Errorf("deletes pending of a = %v; want 2", n)
		}
		if age := testutil.ToFloat64(tr.deleteOldest.WithLabelValues("a")); age < 89 || age > 91 {
			t.Errorf("oldest pending delete of a = %v s; want 90", age)
		}
		if n := testutil.CollectAndCount(tr.deletes); n != 1 {
			t.Errorf("%d consumers listed; want only a (b deletes nothing)", n)
		}
		if _, err := st.OrphanBundle(ctx, "a1"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.OrphanBundle(ctx, "a2"); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		if n := testutil.CollectAndCount(tr.deletes); n != 0 {
			t.Errorf("%d consumers listed after every delete ended; want none", n)
		}
	})
}
