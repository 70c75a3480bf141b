package agent

import (
	"context"
	"errors"

	"github.com/baton-dev/baton/internal/protocol"
)

// session sends Hello each time a new session starts, then lets the
// reporter re-send what the server has not acknowledged. The reporter
// starts after the first Hello, so that the first Status of an epoch
// follows its Hello.
func (a *Agent) session(ctx context.Context) {
	started := false
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-a.conn.Up():
			if !ok {
				return
			}
			a.metrics.sessions.Inc()
			if err := a.sendHello(ctx); err != nil {
				a.log.Warn("agent: hello not sent; waiting for the next session", "err", err)
				continue
			}
			if !started {
				started = true
				close(a.helloSent)
			}
			a.reporter.Resume()
		}
	}
}

// sendHello sends the held generations, split by protocol.Hellos.
func (a *Agent) sendHello(ctx context.Context) error {
	a.mu.Lock()
	// Held means durably recorded: a generation still being taken is not
	// claimed, so the server keeps re-sending it.
	held := make(map[string]int64, len(a.bundles))
	incs := map[string]string{}
	for id, b := range a.bundles {
		if b.ackedGen > 0 {
			held[id] = b.ackedGen
			if b.inc != "" {
				incs[id] = b.inc
			}
		}
	}
	a.mu.Unlock()
	for _, m := range protocol.Hellos(a.opts.Consumer, protocol.Hello{Agent: a.opts.ID, Epoch: a.opts.Epoch, Held: held, Incarnations: incs}) {
		if err := a.conn.Send(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// errLinkClosed: the Conn closed for good; the agent cannot take specs.
var errLinkClosed = errors.New("agent: server link closed")

// receive dispatches server messages until ctx ends (nil) or the Conn
// closes for good (errLinkClosed).
func (a *Agent) receive(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-a.conn.Recv():
			if !ok {
				return errLinkClosed
			}
			a.dispatch(ctx, m)
		}
	}
}

func (a *Agent) dispatch(ctx context.Context, m protocol.Message) {
	if m.Type == protocol.TypeSession && m.Session != nil {
		a.onSession(ctx, m.Session)
		return
	}
	if a.standby.Load() {
		return // another agent serves the consumer: nothing here is for this one
	}
	switch {
	case m.Type == protocol.TypeSpec && m.Spec != nil:
		a.metrics.specs.Inc()
		a.onSpec(ctx, m.Spec)
	case m.Type == protocol.TypeStatusAck && m.StatusAck != nil:
		a.reporter.Ack(*m.StatusAck)
	case m.Type == protocol.TypeStatusRequest && m.StatusRequest != nil:
		a.onStatusRequest(m.StatusRequest.BundleIDs)
	default:
		a.log.Debug("agent: ignoring message", "type", m.Type)
	}
}

// onSpec takes a new desired generation, or re-acknowledges an old one.
func (a *Agent) onSpec(ctx context.Context, s *protocol.Spec) {
	a.mu.Lock()
	b := a.bundles[s.BundleID]
	if b == nil && s.Deleting {
		a.mu.Unlock()
		// Nothing held: the removal is complete already.
		a.reporter.MarkDeleted(s.BundleID, s.Generation)
		a.ackLater(protocol.SpecAck{BundleID: s.BundleID, Generation: s.Generation, Gone: true})
		return
	}
	if b != nil && !b.accepts(s) {
		gen, acked := b.gen, b.ackedGen >= b.gen
		a.mu.Unlock()
		if acked {
			a.ackLater(protocol.SpecAck{BundleID: s.BundleID, Generation: gen})
		}
		return
	}
	if b == nil {
		b = newBundle(s.BundleID)
		b.revive = true
		a.bundles[s.BundleID] = b
	}
	b.takeIncarnation(s.Incarnation)
	if s.Deleting {
		// Keep the spec held: its objects are reported until they are gone.
		b.gen, b.deleting, b.deleteOpt, b.needApply = s.Generation, true, s.Body.DeleteOption, false
	} else {
		b.setDesired(s.Generation, false, nil, s.Meta, s.Body)
	}
	a.mu.Unlock()
	a.queue.Forget(s.BundleID) // a new generation starts without backoff
	a.queue.Add(s.BundleID)
}

// ack sends a SpecAck; a lost ack is repaired by the server re-sending the
// spec (and by Hello on the next session).
func (a *Agent) ack(ctx context.Context, ack protocol.SpecAck) {
	err := a.conn.Send(ctx, protocol.Message{Type: protocol.TypeSpecAck, Consumer: a.opts.Consumer, SpecAck: &ack})
	if err != nil && !errors.Is(err, protocol.ErrDisconnected) && ctx.Err() == nil {
		a.log.Warn("agent: spec ack not sent", "bundle", ack.BundleID, "generation", ack.Generation, "err", err)
	}
}

// onStatusRequest answers a StatusRequest (a digest mismatch, `baton
// resync`, `doctor --fix`). Resync means re-read (DESIGN.md I8): each named
// bundle the agent has applied (all when none are named) is read from the
// API server, not the cache, re-evaluated and reported as a new revision;
// a failed read reports the entry unconfirmed. Other bundles (not applied
// yet, being removed, or removed) are re-reported as they stand.
func (a *Agent) onStatusRequest(ids []string) {
	a.mu.Lock()
	if len(ids) == 0 {
		for id := range a.bundles {
			ids = append(ids, id)
		}
		ids = append(ids, a.reporter.IDs()...)
	}
	var reread, asIs []string
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if b := a.bundles[id]; b != nil && !b.deleting && b.results != nil {
			b.reread = true
			reread = append(reread, id)
		} else {
			asIs = append(asIs, id)
		}
	}
	a.mu.Unlock()
	if len(asIs) > 0 {
		a.reporter.RequestStatus(asIs)
	}
	for _, id := range reread {
		a.queue.Add(id)
	}
}
