// Package freshness decides whether a bundle's status is current (DESIGN.md
// I6) and exports how stale the fleet is.
//
// Verdict is a pure function of the consumer's agent state, the bundle and
// its delivery state. Tracker applies it for the REST layer (with a short
// cache of consumers and pending deliveries) and periodically for the
// Prometheus gauges.
package freshness

import (
	"time"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

// DeliveryGrace is how long a new generation may wait for the agent's first
// status on it before the bundle counts as NotDelivered.
const DeliveryGrace = 10 * time.Second

// Verdict returns the freshness of bundle b of consumer c at now.
// pendingSince is when the bundle's current generation started waiting for
// delivery (its oldest unacknowledged outbox event); nil means the
// bundle's UpdatedAt. The first rule that holds wins:
//
//  1. AgentDisconnected: the agent is not connected or its last heartbeat
//     is older than heartbeatTimeout.
//  2. NotDelivered: the agent never reported a status, or its status is for
//     an older generation and the current one has waited longer than
//     DeliveryGrace.
//  3. ObservationFailed: the stored status has entries the agent could
//     not confirm (it cannot observe their objects: DESIGN.md I8).
//  4. DigestMismatch: the agent's last digest disagreed with the stored status.
//  5. NoReportSince: the agent has not confirmed the status within
//     heartbeatTimeout.
//  6. StatusTooLarge: the status is current but is the agent's fallback
//     for one its transport could not carry (no feedback values), so it
//     does not say what the objects hold.
//  7. Fresh.
//
// ConfirmedAt is the last confirmation (nil if never); AgeSeconds is the
// time since then, or since the bundle was created if never confirmed.
func Verdict(now time.Time, c store.Consumer, b store.Bundle, pendingSince *time.Time, heartbeatTimeout time.Duration) api.Freshness {
	st := b.Status
	f := api.Freshness{State: api.FreshnessFresh}
	if st.ConfirmedAt.IsZero() {
		f.AgeSeconds = seconds(now.Sub(b.CreatedAt))
	} else {
		t := st.ConfirmedAt
		f.ConfirmedAt = &t
		f.AgeSeconds = seconds(now.Sub(t))
	}
	since := b.UpdatedAt
	if pendingSince != nil {
		since = *pendingSince
	}
	reason := ""
	switch {
	case !c.Agent.Connected || now.Sub(c.Agent.LastHeartbeat) > heartbeatTimeout:
		reason = api.ReasonAgentDisconnected
	case st.Revision == 0 || (b.Generation > st.ObservedGeneration && now.Sub(since) > DeliveryGrace):
		reason = api.ReasonNotDelivered
	case st.Reported.Unconfirmed() > 0:
		reason = api.ReasonObservationFailed
	case st.DigestMismatch:
		reason = api.ReasonDigestMismatch
	case now.Sub(st.ConfirmedAt) > heartbeatTimeout:
		reason = api.ReasonNoReportSince
	case st.Reported.TooLarge():
		reason = api.ReasonStatusTooLarge
	}
	if reason != "" {
		f.State, f.Reason = api.FreshnessStale, reason
	}
	return f
}

func seconds(d time.Duration) float64 { return max(d, 0).Seconds() }
