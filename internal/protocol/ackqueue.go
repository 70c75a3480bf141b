package protocol

import (
	"context"
	"sync"
)

// AckQueue holds the acknowledgements one end of a link owes, at most one
// per key (bundle id), for a sender goroutine to send.
//
// The goroutine that reads a link must never wait on sending over it: while
// it waits it stops reading, the peer's sends back up, and a peer that waits
// on those sends before reading deadlocks with it. So readers Add their acks
// here and Run sends them. Only the newest ack of a bundle matters (an ack
// settles everything up to it), so the queue stays bounded by the number of
// bundles whatever the peer does.
type AckQueue[T any] struct {
	mu       sync.Mutex
	pending  map[string]T
	kick     chan struct{}
	replaces func(queued, next T) bool
}

// NewAckQueue returns a queue in which an unsent ack is replaced by the next
// ack of the same key when replaces(queued, next) is true.
func NewAckQueue[T any](replaces func(queued, next T) bool) *AckQueue[T] {
	return &AckQueue[T]{pending: map[string]T{}, kick: make(chan struct{}, 1), replaces: replaces}
}

// Add queues ack under key without blocking.
func (q *AckQueue[T]) Add(key string, ack T) {
	q.mu.Lock()
	if old, ok := q.pending[key]; !ok || q.replaces(old, ack) {
		q.pending[key] = ack
	}
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// Pending returns a copy of the queued acks by key.
func (q *AckQueue[T]) Pending() map[string]T {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make(map[string]T, len(q.pending))
	for k, v := range q.pending {
		out[k] = v
	}
	return out
}

// Run calls send for every queued ack until ctx ends. send owns failures:
// an ack that could not be sent is not queued again (the peer repeats what
// it wants acknowledged).
func (q *AckQueue[T]) Run(ctx context.Context, send func(context.Context, T)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.kick:
		}
		q.mu.Lock()
		batch := q.pending
		q.pending = make(map[string]T, len(batch))
		q.mu.Unlock()
		for _, ack := range batch {
			if ctx.Err() != nil {
				return
			}
			send(ctx, ack)
		}
	}
}
