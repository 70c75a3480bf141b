package hub

import (
	"context"

	"github.com/baton-dev/baton/internal/protocol"
)

// newStatusAcks returns the queue of StatusAcks the session's reader owes
// (see protocol.AckQueue). An unsent ack of a bundle is replaced by a higher
// revision of the same epoch, or by any ack of another epoch (the agent
// restarted; it ignores acks of an epoch not its own).
func newStatusAcks() *protocol.AckQueue[protocol.StatusAck] {
	return protocol.NewAckQueue(func(queued, next protocol.StatusAck) bool {
		return queued.Epoch != next.Epoch || next.Revision >= queued.Revision
	})
}

// ackLater queues ack; sendStatusAcks sends it.
func (s *session) ackLater(ack protocol.StatusAck) { s.acks.Add(ack.BundleID, ack) }

// sendStatusAcks sends queued acks until ctx ends. An ack that fails to
// send is dropped: the agent re-sends the status and it is acked again.
func (s *session) sendStatusAcks(ctx context.Context) {
	s.acks.Run(ctx, func(ctx context.Context, ack protocol.StatusAck) {
		err := s.send(ctx, protocol.Message{Type: protocol.TypeStatusAck, StatusAck: &ack})
		if err != nil && ctx.Err() == nil {
			s.h.log.Debug("hub: send status ack", "consumer", s.consumer, "bundle", ack.BundleID, "err", err)
		}
	})
}
