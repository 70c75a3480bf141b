package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
)

// Conn is one end of a server–agent link as the agent or the server sees it.
// Implementations: the gRPC transport, and Pipe for tests.
//
// Send returns ErrDisconnected while the link is down; callers keep their
// own retry queues (the protocol is at-least-once, not the transport).
// Recv's channel is owned by the implementation and closes when the Conn is
// closed for good. Up receives a value each time a new session starts, so the
// agent can send Hello (and the server can start a resync).
type Conn interface {
	Send(ctx context.Context, m Message) error
	Recv() <-chan Message
	Up() <-chan struct{}
}

// ErrDisconnected is returned by Send while no session is up.
var ErrDisconnected = errors.New("link disconnected")

// ErrDecommissioned: the server refuses every session of the consumer (it
// was decommissioned). Transports answer it with a permanent error that
// the agent logs; it is not re-registered by connecting.
var ErrDecommissioned = errors.New("consumer decommissioned")

// Pipe is an in-process Conn pair for tests. Messages sent on one end arrive
// on the other in order. SetUp toggles the link; while it is down, Send fails
// with ErrDisconnected, as a broken network link would.
type Pipe struct {
	mu       sync.Mutex
	down     bool
	maxBytes int // 0: no limit
	a, b     *pipeEnd
}

// SetMaxBytes makes Send refuse, with ErrTooLarge, a message whose JSON
// encoding is over n bytes, as a transport's message limit would (0: no
// limit).
func (p *Pipe) SetMaxBytes(n int) { p.mu.Lock(); p.maxBytes = n; p.mu.Unlock() }

type pipeEnd struct {
	p    *Pipe
	in   chan Message
	up   chan struct{}
	peer *pipeEnd
	// Drop, when set, is consulted for every message this end sends; a true
	// result drops the message silently (fault injection).
	Drop func(Message) bool
}

// NewPipe returns a connected pair: the agent's end and the server's end.
func NewPipe(buffer int) *Pipe {
	p := &Pipe{}
	p.a = &pipeEnd{p: p, in: make(chan Message, buffer), up: make(chan struct{}, 1)}
	p.b = &pipeEnd{p: p, in: make(chan Message, buffer), up: make(chan struct{}, 1)}
	p.a.peer, p.b.peer = p.b, p.a
	p.a.up <- struct{}{}
	p.b.up <- struct{}{}
	return p
}

// Agent returns the agent's end.
func (p *Pipe) Agent() Conn { return p.a }

// Server returns the server's end.
func (p *Pipe) Server() Conn { return p.b }

// SetDropFromAgent installs a filter for messages the agent sends.
func (p *Pipe) SetDropFromAgent(f func(Message) bool) { p.mu.Lock(); p.a.Drop = f; p.mu.Unlock() }

// SetDropFromServer installs a filter for messages the server sends.
func (p *Pipe) SetDropFromServer(f func(Message) bool) { p.mu.Lock(); p.b.Drop = f; p.mu.Unlock() }

// SetUp brings the link down or up; going up signals Up on both ends.
func (p *Pipe) SetUp(up bool) {
	p.mu.Lock()
	was := !p.down
	p.down = !up
	p.mu.Unlock()
	if up && !was {
		for _, e := range []*pipeEnd{p.a, p.b} {
			select {
			case e.up <- struct{}{}:
			default:
			}
		}
	}
}

func (e *pipeEnd) Send(ctx context.Context, m Message) error {
	e.p.mu.Lock()
	down, drop, maxBytes := e.p.down, e.Drop, e.p.maxBytes
	e.p.mu.Unlock()
	if down {
		return ErrDisconnected
	}
	if maxBytes > 0 {
		if b, err := json.Marshal(m); err != nil || len(b) > maxBytes {
			return TooLarge("pipe "+string(m.Type), len(b), maxBytes)
		}
	}
	if drop != nil && drop(m) {
		return nil
	}
	select {
	case e.peer.in <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *pipeEnd) Recv() <-chan Message { return e.in }
func (e *pipeEnd) Up() <-chan struct{}  { return e.up }
