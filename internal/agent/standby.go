package agent

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
)

// Standing by: the server serves one agent session per consumer. When it
// answers Hello with Session{Active: false}, another agent (a rolling
// update's other pod, a copied deployment) serves the consumer: this one
// applies nothing, logs and shows it (/readyz body, baton_agent_standby),
// and says Hello again after the server's retry interval, so it takes over
// as soon as the other one is gone. Session{Active: true} ends it.

// standbyRetryDefault is the retry interval when the server names none.
const standbyRetryDefault = time.Second

// onSession handles the server's answer to a Hello.
func (a *Agent) onSession(ctx context.Context, m *protocol.Session) {
	if m.Agent != "" && m.Agent != a.ID() {
		return // for another agent on the same link
	}
	if m.Active {
		if a.standby.Swap(false) {
			a.log.Info("agent: serving the consumer now (the other agent is gone)")
			a.setHolder("")
			a.reporter.Resume()
			a.requeueAll()
		}
		return
	}
	if !a.standby.Swap(true) || a.holder() != m.Holder {
		a.log.Warn("agent: standing down: another agent serves this consumer; retrying",
			"active", m.Holder, "agent", a.ID(), "retry", m.RetryAfter)
	}
	a.setHolder(m.Holder)
	retry := m.RetryAfter
	if retry <= 0 {
		retry = standbyRetryDefault
	}
	if !a.retrying.CompareAndSwap(false, true) {
		return // a retry is scheduled
	}
	go func() {
		defer a.retrying.Store(false)
		select {
		case <-ctx.Done():
			return
		case <-a.opts.Clock.After(retry/2 + rand.N(retry/2+1)):
		}
		if a.standby.Load() {
			if err := a.sendHello(ctx); err != nil {
				a.log.Debug("agent: hello while standing by", "err", err)
			}
		}
	}()
}

// ID is the agent's identity in Hello (Options.ID, else its epoch).
func (a *Agent) ID() string {
	if a.opts.ID != "" {
		return a.opts.ID
	}
	return a.opts.Epoch
}

// Standby reports whether the agent stands down, and the agent serving the
// consumer instead.
func (a *Agent) Standby() (bool, string) { return a.standby.Load(), a.holder() }

func (a *Agent) holder() string {
	a.standbyMu.Lock()
	defer a.standbyMu.Unlock()
	return a.activeAgent
}

func (a *Agent) setHolder(h string) {
	a.standbyMu.Lock()
	a.activeAgent = h
	a.standbyMu.Unlock()
}

// requeueAll queues every held bundle, so that what was skipped while
// standing by is applied and reported now.
func (a *Agent) requeueAll() {
	a.mu.Lock()
	ids := make([]string, 0, len(a.bundles))
	for id := range a.bundles {
		ids = append(ids, id)
	}
	a.mu.Unlock()
	for _, id := range ids {
		a.queue.Add(id)
	}
}
