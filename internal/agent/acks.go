package agent

import (
	"context"
	"sync"

	"github.com/baton-dev/baton/internal/protocol"
)

// ackQueue holds the SpecAcks the receive loop owes. The receive loop must
// never wait on the link: while it waits, the transport stops reading the
// server's messages, the server's sends back up, and a server that waits on
// those sends before reading the agent's messages deadlocks with it. So the
// receive loop queues its acks here and sendAcks sends them.
type ackQueue struct {
	mu      sync.Mutex
	pending map[string]protocol.SpecAck // bundle id → ack owed (highest generation)
	kick    chan struct{}
}

func newAckQueue() ackQueue {
	return ackQueue{pending: map[string]protocol.SpecAck{}, kick: make(chan struct{}, 1)}
}

// ackLater queues ack for sendAcks; an ack of an older generation of the
// same bundle still unsent is superseded.
func (a *Agent) ackLater(ack protocol.SpecAck) {
	q := &a.acks
	q.mu.Lock()
	if old, ok := q.pending[ack.BundleID]; !ok || ack.Generation >= old.Generation {
		q.pending[ack.BundleID] = ack
	}
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// sendAcks sends queued acks until ctx ends.
func (a *Agent) sendAcks(ctx context.Context) {
	q := &a.acks
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.kick:
		}
		q.mu.Lock()
		batch := q.pending
		q.pending = map[string]protocol.SpecAck{}
		q.mu.Unlock()
		for _, ack := range batch {
			a.ack(ctx, ack)
		}
	}
}
