package hub

import (
	"context"
	"fmt"

	"github.com/baton-dev/baton/internal/protocol"
)

// RequestStatus asks the agent of consumer to re-report bundleIDs now (every
// bundle it holds when none are given), as a new revision even when nothing
// changed. It fails with protocol.ErrDisconnected when this hub holds no
// session of the consumer.
func (h *Hub) RequestStatus(ctx context.Context, consumer string, bundleIDs []string) error {
	s := h.session(consumer)
	if s == nil {
		return fmt.Errorf("consumer %s: no agent session: %w", consumer, protocol.ErrDisconnected)
	}
	if len(bundleIDs) == 0 {
		return s.send(ctx, protocol.Message{Type: protocol.TypeStatusRequest, StatusRequest: &protocol.StatusRequest{}})
	}
	return s.requestStatus(ctx, append([]string(nil), bundleIDs...))
}
