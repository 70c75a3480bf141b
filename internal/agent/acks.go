package agent

import (
	"context"

	"github.com/baton-dev/baton/internal/protocol"
)

// newSpecAcks returns the queue of SpecAcks the receive loop owes (see
// protocol.AckQueue): an ack of a newer generation replaces an unsent older one.
func newSpecAcks() *protocol.AckQueue[protocol.SpecAck] {
	return protocol.NewAckQueue(func(queued, next protocol.SpecAck) bool { return next.Generation >= queued.Generation })
}

// ackLater queues ack; sendAcks sends it.
func (a *Agent) ackLater(ack protocol.SpecAck) { a.acks.Add(ack.BundleID, ack) }

// sendAcks sends queued acks until ctx ends.
func (a *Agent) sendAcks(ctx context.Context) { a.acks.Run(ctx, a.ack) }
