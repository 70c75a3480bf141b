package hub

import (
	"context"
	"fmt"
	"time"

	workv1 "open-cluster-management.io/api/work/v1"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

// ErrDecommissioned is wrapped by Attach's error for a consumer removed with
// DELETE /consumers/{id}?cascade=orphan: its agent is refused (and not
// re-registered by connecting).
var ErrDecommissioned = protocol.ErrDecommissioned

// refuseDecommissioned returns the error Attach answers an agent of a
// consumer that is gone with, naming the decommission when there was one.
func (h *Hub) refuseDecommissioned(ctx context.Context, consumer string, cause error) error {
	d, err := h.st.Decommissioned(ctx, consumer)
	if err != nil {
		return fmt.Errorf("hub: consumer %q: %w", consumer, cause)
	}
	h.log.Warn("hub: agent of a decommissioned consumer refused", "consumer", consumer,
		"decommissioned_at", d.At.Format(time.RFC3339))
	return fmt.Errorf("consumer %q was decommissioned at %s with its %d resource bundles (DELETE %s/consumers/%s?cascade=orphan); "+
		"this agent is refused and applies nothing: uninstall it from the cluster, or create the consumer again to register the cluster anew: %w",
		consumer, d.At.Format(time.RFC3339), d.Bundles, api.BasePath, consumer, ErrDecommissioned)
}

// orphanSpec tells the agent to drop bundle id and its records at
// generation gen, leaving its objects in place: a delete with OCM's Orphan
// propagation policy, which the agent already honours.
func orphanSpec(id string, gen int64) protocol.Spec {
	return protocol.Spec{BundleID: id, Generation: gen, Deleting: true, Body: api.BundleSpec{
		DeleteOption: &workv1.DeleteOption{PropagationPolicy: workv1.DeletePropagationPolicyTypeOrphan}}}
}

// orphans returns the consumer's Orphans by bundle id.
func (s *session) orphans(ctx context.Context) (map[string]store.Orphan, error) {
	list, err := s.h.st.Orphans(ctx, s.consumer)
	if err != nil {
		return nil, err
	}
	out := make(map[string]store.Orphan, len(list))
	for _, o := range list {
		out[o.BundleID] = o
	}
	return out, nil
}

// resyncOrphans tells the agent to drop what it holds of bundles finalized
// without it, and forgets the Orphans of bundles it does not hold (a
// complete Hello lists everything it holds). known are the ids the store
// has; held the agent's Hello. It returns the held ids it handled.
func (s *session) resyncOrphans(ctx context.Context, held map[string]int64, known map[string]bool) (map[string]bool, error) {
	orph, err := s.orphans(ctx)
	if err != nil || len(orph) == 0 {
		return nil, err
	}
	done := map[string]bool{}
	for id, o := range orph {
		if known[id] {
			continue // created again: that bundle is the agent's now
		}
		g, ok := held[id]
		if !ok {
			if err := s.h.st.ForgetOrphan(ctx, s.consumer, id, o.Generation); err != nil {
				return done, err
			}
			continue
		}
		if err := s.sendSpec(ctx, orphanSpec(id, max(o.Generation, g))); err != nil {
			return done, err
		}
		done[id] = true
	}
	return done, nil
}
