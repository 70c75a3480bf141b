package mqtt

import (
	"sync"

	"github.com/baton-dev/baton/internal/protocol"
)

// mailbox decouples the MQTT client's receive callback, which must never
// block (it would stall acknowledgements and pings of the whole
// connection), from the reader of a Conn's Recv channel. It queues up to
// limit messages; beyond that push fails and the message is dropped (the
// protocol re-sends what is not acknowledged).
type mailbox struct {
	mu     sync.Mutex
	q      []protocol.Message
	limit  int
	closed bool
	wake   chan struct{}
	done   chan struct{}
	out    chan protocol.Message
}

func newMailbox(limit int) *mailbox {
	b := &mailbox{limit: limit, wake: make(chan struct{}, 1), done: make(chan struct{}),
		out: make(chan protocol.Message)}
	go b.pump()
	return b
}

// push queues m; false means the mailbox is full or closed.
func (b *mailbox) push(m protocol.Message) bool {
	b.mu.Lock()
	if b.closed || len(b.q) >= b.limit {
		b.mu.Unlock()
		return false
	}
	b.q = append(b.q, m)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return true
}

// close discards what is queued and closes the out channel.
func (b *mailbox) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		b.q = nil
		close(b.done)
	}
}

func (b *mailbox) pump() {
	defer close(b.out)
	for {
		b.mu.Lock()
		var m protocol.Message
		ok := len(b.q) > 0
		if ok {
			m = b.q[0]
			b.q[0] = protocol.Message{}
			b.q = b.q[1:]
			if len(b.q) == 0 {
				b.q = nil
			}
		}
		b.mu.Unlock()
		if !ok {
			select {
			case <-b.wake:
				continue
			case <-b.done:
				return
			}
		}
		select {
		case b.out <- m:
		case <-b.done:
			return
		}
	}
}
