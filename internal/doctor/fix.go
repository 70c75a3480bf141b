package doctor

import (
	"context"
	"fmt"
	"time"

	"k8s.io/utils/clock"

	"github.com/baton-dev/baton/pkg/api"
)

// Server is the part of the REST API Fix needs (internal/client.Client has it).
type Server interface {
	ResyncBundle(ctx context.Context, id string) error
	GetBundle(ctx context.Context, id string) (*api.ResourceBundle, error)
}

// FixOptions tune Fix.
type FixOptions struct {
	// Interval between re-checks; DefaultFixOptions uses 500ms.
	Interval time.Duration
	// Clock measures elapsed time and paces re-checks.
	Clock clock.Clock
	// Progress, if set, is called after every re-check with the number of
	// bundles that agree so far out of total.
	Progress func(agree, total int, elapsed time.Duration)
	// Retryable, if set, tells resync errors worth retrying (the agent is
	// not connected right now) from fatal ones; a retryable failure is
	// reported to Warn and the request repeated before every re-check.
	Retryable func(error) bool
	// Warn receives retryable resync failures.
	Warn func(bundleID string, err error)
}

// DefaultFixOptions returns options with a 500ms interval and the real clock.
func DefaultFixOptions() FixOptions {
	return FixOptions{Interval: 500 * time.Millisecond, Clock: clock.RealClock{}}
}

// Fix asks the server to resync each bundle with a mismatch in initial (a
// Check result), then re-checks them against the cluster until all agree or
// ctx ends. It returns the last check of the bundles that still disagree
// (empty when all agree) and an error when ctx ended first or a resync
// request failed. A re-check whose reads failed does not replace an earlier
// one that showed mismatches.
func Fix(ctx context.Context, srv Server, g Getter, initial Result, o FixOptions) (Result, error) {
	ids := initial.BundleIDs()
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Interval <= 0 {
		o.Interval = DefaultFixOptions().Interval
	}
	start := o.Clock.Now()
	unsent := append([]string(nil), ids...)
	pending := append([]string(nil), ids...)
	last := initial
	for {
		var err error
		if unsent, err = resync(ctx, srv, unsent, pending, o); err != nil {
			return last, err
		}
		still, cur, err := recheck(ctx, srv, g, pending)
		if err != nil {
			if ctx.Err() != nil {
				return last, fmt.Errorf("waiting for %d of %d bundles to agree with the cluster: %w", len(pending), len(ids), ctx.Err())
			}
			return last, err
		}
		pending = still
		if len(cur.Errors) == 0 || len(last.Mismatches) == 0 {
			last = cur
		}
		if o.Progress != nil {
			o.Progress(len(ids)-len(pending), len(ids), o.Clock.Since(start))
		}
		if len(pending) == 0 {
			return last, nil
		}
		t := o.Clock.NewTimer(o.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return last, fmt.Errorf("waiting for %d of %d bundles to agree with the cluster: %w", len(pending), len(ids), ctx.Err())
		case <-t.C():
		}
	}
}

// resync requests a resync of each bundle of unsent that is still pending
// and returns those whose request failed retryably.
func resync(ctx context.Context, srv Server, unsent, pending []string, o FixOptions) ([]string, error) {
	isPending := map[string]bool{}
	for _, id := range pending {
		isPending[id] = true
	}
	var failed []string
	for _, id := range unsent {
		if !isPending[id] {
			continue
		}
		err := srv.ResyncBundle(ctx, id)
		switch {
		case err == nil:
		case ctx.Err() == nil && o.Retryable != nil && o.Retryable(err):
			if o.Warn != nil {
				o.Warn(id, err)
			}
			failed = append(failed, id)
		default:
			return nil, fmt.Errorf("bundle %s: resync: %w", id, err)
		}
	}
	return failed, nil
}

// recheck fetches the pending bundles and checks them together (so that a
// Prefetcher can list their objects); it returns those that still disagree
// or could not be verified, and the result.
func recheck(ctx context.Context, srv Server, g Getter, ids []string) ([]string, Result, error) {
	bundles := make([]api.ResourceBundle, 0, len(ids))
	for _, id := range ids {
		b, err := srv.GetBundle(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return ids, Result{}, fmt.Errorf("bundle %s: %w", id, ctx.Err())
			}
			return ids, Result{}, fmt.Errorf("bundle %s: get: %w", id, err)
		}
		bundles = append(bundles, *b)
	}
	r := Check(ctx, g, bundles)
	if ctx.Err() != nil {
		// Reads cut short by the deadline prove nothing either way.
		return ids, r, ctx.Err()
	}
	bad := r.unverified()
	var still []string
	for _, id := range ids {
		if bad[id] {
			still = append(still, id)
		}
	}
	return still, r, nil
}
