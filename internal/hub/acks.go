package hub

import (
	"context"
	"sync"

	"github.com/baton-dev/baton/internal/protocol"
)

// statusAcks holds the StatusAcks the session's reader owes. The reader
// must never wait on the link: an agent that stops reading would otherwise
// stall the handling of its own messages (and, over a transport with flow
// control, deadlock with an agent that waits on its sends before reading).
// So the reader queues its acks here and sendStatusAcks sends them. Only
// the highest revision acked per bundle matters to the agent (an ack
// settles every revision up to its own), so the queue holds at most one
// ack per bundle.
type statusAcks struct {
	mu      sync.Mutex
	pending map[string]protocol.StatusAck // bundle id → ack owed
	kick    chan struct{}
}

func newStatusAcks() statusAcks {
	return statusAcks{pending: map[string]protocol.StatusAck{}, kick: make(chan struct{}, 1)}
}

// ackLater queues ack. An unsent ack of the same bundle is superseded by a
// higher revision of the same epoch, or by any ack of another epoch (the
// agent restarted; it ignores acks of an epoch not its own).
func (s *session) ackLater(ack protocol.StatusAck) {
	q := &s.acks
	q.mu.Lock()
	if old, ok := q.pending[ack.BundleID]; !ok || old.Epoch != ack.Epoch || ack.Revision >= old.Revision {
		q.pending[ack.BundleID] = ack
	}
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// sendStatusAcks sends queued acks until ctx ends. An ack that fails to
// send is dropped: the agent re-sends the status and it is acked again.
func (s *session) sendStatusAcks(ctx context.Context) {
	q := &s.acks
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.kick:
		}
		q.mu.Lock()
		batch := q.pending
		q.pending = make(map[string]protocol.StatusAck, len(batch))
		q.mu.Unlock()
		for _, ack := range batch {
			err := s.send(ctx, protocol.Message{Type: protocol.TypeStatusAck, StatusAck: &ack})
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				s.h.log.Debug("hub: send status ack", "consumer", s.consumer, "bundle", ack.BundleID, "err", err)
			}
		}
	}
}
