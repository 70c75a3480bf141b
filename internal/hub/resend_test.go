package hub

import (
	"testing"
	"time"
)

// TestResendBackoff: a spec waits the resend timeout for its first ack,
// then twice, four and at most eight times as long.
func TestResendBackoff(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const timeout = 2 * time.Second
	for _, c := range []struct {
		sends int
		wait  time.Duration
	}{{1, 2 * time.Second}, {2, 4 * time.Second}, {3, 8 * time.Second}, {4, 16 * time.Second}, {9, 16 * time.Second}} {
		f := inflight{at: t0, sends: c.sends}
		if f.overdue(t0.Add(c.wait-time.Millisecond), timeout) {
			t.Errorf("sends=%d: overdue before %v", c.sends, c.wait)
		}
		if !f.overdue(t0.Add(c.wait), timeout) {
			t.Errorf("sends=%d: not overdue after %v", c.sends, c.wait)
		}
	}
}
