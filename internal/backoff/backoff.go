// Package backoff is baton's one retry-delay mechanism: exponential,
// capped and jittered, computed by client-go's wait.Backoff. The agent's
// reconnects (gRPC and MQTT), the REST client's watch resumes and the
// hub's spec resends all wait by a Policy.
//
// Jitter only lengthens a wait (up to Jitter × the step), so Max × (1 +
// Jitter) bounds every wait: with Reconnect that is 1 s, the time within
// which an agent finds a server that became reachable, while thousands of
// agents spread their attempts instead of arriving in one instant.
package backoff

import (
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Policy describes a backoff: the first wait is Initial, each next one
// Factor times longer, at most Max, each lengthened by a random share of
// up to Jitter of itself.
type Policy struct {
	Initial time.Duration
	Max     time.Duration
	// Factor ≤ 1 keeps the wait at Initial.
	Factor float64
	// Jitter 0 makes the waits exact (the hub's resends, tests).
	Jitter float64
}

// Reconnect is the policy of the agent's link to the server: 100 ms,
// doubling, at most 800 ms, plus up to 25 % — never more than 1 s between
// attempts.
var Reconnect = Policy{Initial: 100 * time.Millisecond, Max: 800 * time.Millisecond, Factor: 2, Jitter: 0.25}

// Bound is the longest wait p ever gives.
func (p Policy) Bound() time.Duration {
	return max(p.Initial, p.Max) + time.Duration(float64(max(p.Initial, p.Max))*p.Jitter)
}

func (p Policy) wait() wait.Backoff {
	b := wait.Backoff{Duration: p.Initial, Jitter: p.Jitter, Cap: p.Max}
	if p.Factor > 1 && p.Max > p.Initial {
		b.Factor, b.Steps = p.Factor, 1<<30
	}
	return b
}

// Delay is the wait before retry number attempt (from 1) for callers that
// count their attempts; attempt ≤ 0 waits nothing.
func (p Policy) Delay(attempt int) time.Duration {
	if attempt <= 0 {
		return 0
	}
	b := p.wait()
	var d time.Duration
	// The wait stops growing at Max within a few dozen steps.
	for range min(attempt, 64) {
		d = b.Step()
	}
	return d
}

// Start returns a fresh Backoff of p.
func (p Policy) Start() *Backoff { return &Backoff{p: p, b: p.wait()} }

// Backoff is one retry loop's state. It is not safe for concurrent use.
type Backoff struct {
	p Policy
	b wait.Backoff
}

// Next returns the wait before the next attempt and advances.
func (b *Backoff) Next() time.Duration { return b.b.Step() }

// Reset starts over from Initial (after a success).
func (b *Backoff) Reset() { b.b = b.p.wait() }
