package hub

import (
	"context"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store"
)

// One agent session per consumer (DESIGN.md I9). The rule lives in the
// store, as the lease consumer/<name>, so it is the same whether the two
// sessions are on one replica or on two:
//
//   - A complete Hello claims the lease for the agent's identity
//     (Hello.Agent) and this session. It is granted when the lease is
//     free or expired, or already the same agent's (a reconnect, through
//     this replica or another: the newer session takes over and the older
//     one ends).
//   - Any other agent is refused: it is told to stand down (Session with
//     Active false, naming the holder) and is recorded as the lease's
//     contender, which the consumer shows as agent.conflict. It says Hello
//     again after the retry interval, so it takes over once the holder is
//     gone; a standing-by session on the replica where the holder's
//     session ends is promoted at once.
//   - The holder renews the lease with every heartbeat; the lease lasts
//     the heartbeat timeout, like the agent's liveness itself.
//   - A session that ends releases the lease. When an agent stands by
//     (a rolling update) or the replica is draining (its agents reconnect
//     to another one), the consumer is not marked disconnected: the next
//     session takes over within seconds, without a Stale flip.

// DefaultStandbyRetry is how long a standing-by agent waits before it says
// Hello again.
const DefaultStandbyRetry = time.Second

// WithStandbyRetry sets the retry interval told to standing-by agents.
func WithStandbyRetry(d time.Duration) Option { return func(h *Hub) { h.standbyRetry = d } }

// SessionLeasePrefix starts the name of every consumer's session lease;
// the lease's Session is "<server id>/<uuid>", naming the replica whose
// session holds it (replica.Ownership reads both).
const SessionLeasePrefix = "consumer/"

func leaseName(consumer string) string { return SessionLeasePrefix + consumer }

// claim takes the consumer's session lease for the agent of hs. On success
// this session becomes the consumer's current one, the agent is told it is
// active and true is returned; otherwise the agent is told to stand down.
func (s *session) claim(ctx context.Context, hs helloState) bool {
	l, ok, err := s.h.leases.AcquireLease(ctx, store.LeaseRequest{
		Name: leaseName(s.consumer), Holder: hs.agent, Session: s.lease, TTL: s.h.heartbeatTimeout})
	if err != nil {
		if ctx.Err() == nil {
			s.h.log.Warn("hub: claim consumer session", "consumer", s.consumer, "agent", hs.agent, "err", err)
		}
		s.cancel() // the agent reconnects and says Hello again
		return false
	}
	if !ok {
		s.refuse(ctx, hs, l.Holder)
		return false
	}
	s.mu.Lock()
	prev := s.agent
	s.agent, s.active, s.standby = hs.agent, true, nil
	s.mu.Unlock()
	if prev != "" && prev != hs.agent {
		// One link carries several agents (MQTT): the previous one lost.
		s.tell(ctx, prev, false, hs.agent)
	}
	s.h.activate(s)
	s.tell(ctx, hs.agent, true, hs.agent)
	return true
}

// refuse tells the agent of hs to stand down in favour of holder. A session
// that serves another agent (MQTT) keeps doing so; one that serves none
// keeps the Hello to be promoted when the holder's session here ends.
func (s *session) refuse(ctx context.Context, hs helloState, holder string) {
	s.mu.Lock()
	first := s.standby == nil
	if !s.active {
		s.standby = &hs
	}
	s.mu.Unlock()
	if first {
		s.h.log.Warn("hub: second agent for a consumer told to stand down",
			"consumer", s.consumer, "agent", hs.agent, "active", holder)
	}
	s.h.metrics.standDowns.Inc()
	s.h.addStandby(s)
	s.tell(ctx, hs.agent, false, holder)
}

// tell sends the Session answer to agent.
func (s *session) tell(ctx context.Context, agent string, active bool, holder string) {
	m := &protocol.Session{Agent: agent, Active: active, Holder: holder}
	if !active {
		m.RetryAfter = s.h.standbyRetry
	}
	if err := s.send(ctx, protocol.Message{Type: protocol.TypeSession, Session: m}); err != nil && ctx.Err() == nil {
		s.h.log.Debug("hub: send session state", "consumer", s.consumer, "err", err)
	}
}

// renew extends the lease on a heartbeat. A session that lost it ends: the
// same agent moved to another session, or another agent took the expired
// lease (this one is told to stand down first).
func (s *session) renew(ctx context.Context) {
	s.mu.Lock()
	agent, active := s.agent, s.active
	s.mu.Unlock()
	if !active {
		return
	}
	l, ok, err := s.h.leases.AcquireLease(ctx, store.LeaseRequest{
		Name: leaseName(s.consumer), Holder: agent, Session: s.lease, TTL: s.h.heartbeatTimeout, Renew: true})
	if err != nil || ok {
		if err != nil && ctx.Err() == nil {
			s.h.log.Warn("hub: renew consumer session", "consumer", s.consumer, "err", err)
		}
		return
	}
	s.h.log.Info("hub: agent session taken over", "consumer", s.consumer, "agent", agent, "by", l.Holder, "session", l.Session)
	if l.Holder != agent {
		s.tell(ctx, agent, false, l.Holder)
	}
	s.cancel()
}

// activate makes s the consumer's current session. An older session of
// the consumer on this hub ends (the same agent reconnected, or another
// agent took over an expired lease: that one is told to stand down).
func (h *Hub) activate(s *session) {
	h.mu.Lock()
	old := h.sessions[s.consumer]
	h.sessions[s.consumer] = s
	delete(h.standby[s.consumer], s)
	h.mu.Unlock()
	if old == nil || old == s {
		return
	}
	old.mu.Lock()
	oldAgent := old.agent
	old.active = false
	old.mu.Unlock()
	if oldAgent != s.agentID() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		old.tell(ctx, oldAgent, false, s.agentID())
		cancel()
	}
	old.cancel()
	select {
	case <-old.done:
	case <-time.After(5 * time.Second):
		h.log.Warn("hub: superseded session did not end", "consumer", s.consumer)
	}
}

func (s *session) agentID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.agent
}

func (h *Hub) addStandby(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions[s.consumer] == s {
		return
	}
	if h.standby[s.consumer] == nil {
		h.standby[s.consumer] = map[*session]bool{}
	}
	h.standby[s.consumer][s] = true
}

// release ends s's hold on the consumer: the lease is given up, a session
// standing by here is promoted, and it reports whether the consumer is
// being handed over (an agent stands by, or this replica drains), in which
// case the caller does not record the agent disconnected.
func (h *Hub) release(ctx context.Context, s *session) (handover bool) {
	s.mu.Lock()
	agent := s.agent
	s.active = false
	s.mu.Unlock()
	name := leaseName(s.consumer)
	ls, err := h.leases.ListLeases(ctx, name)
	if err == nil {
		for _, l := range ls {
			if l.Name == name && l.Contender != "" && l.Contender != agent &&
				h.clock.Since(l.ContendedAt) < 2*h.standbyRetry+time.Second {
				handover = true
			}
		}
	}
	if err := h.leases.ReleaseLease(ctx, name, agent, s.lease); err != nil {
		h.log.Warn("hub: release consumer session", "consumer", s.consumer, "err", err)
	}
	h.mu.Lock()
	var next *session
	for o := range h.standby[s.consumer] {
		next = o
		break
	}
	h.mu.Unlock()
	if next != nil {
		select {
		case next.promote <- struct{}{}:
		default:
		}
	}
	return handover || h.draining.Load()
}

// forgetStandby drops s from the standing-by sessions.
func (h *Hub) forgetStandby(s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.standby[s.consumer], s)
	if len(h.standby[s.consumer]) == 0 {
		delete(h.standby, s.consumer)
	}
}
