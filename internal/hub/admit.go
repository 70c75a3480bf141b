package hub

import (
	"context"

	"golang.org/x/time/rate"
)

// Hello admission. After a server restart every agent of the fleet
// reconnects within about a second (backoff.Reconnect), and each Hello
// costs a resync: the consumer's bundles read from the store, specs and
// status requests sent. The hub takes Hellos at a steady rate instead of
// all at once: a Hello beyond the rate waits in its session (the stream
// stays open, the transport's keepalives keep it alive), so no agent times
// out and retries; the fleet is resynchronised in order, at HelloRate per
// second after a first HelloBurst.
const (
	DefaultHelloRate  = 200
	DefaultHelloBurst = 200
)

// WithHelloRate sets how many Hellos per second the hub resynchronises
// after the first burst (rate ≤ 0: no limit).
func WithHelloRate(perSecond float64, burst int) Option {
	return func(h *Hub) {
		if perSecond <= 0 {
			h.hellos = rate.NewLimiter(rate.Inf, 0)
			return
		}
		h.hellos = rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))
	}
}

// admit waits for the Hello's turn; an error means ctx ended first.
func (s *session) admit(ctx context.Context) error {
	s.h.metrics.hellosWaiting.Inc()
	defer s.h.metrics.hellosWaiting.Dec()
	start := s.h.clock.Now()
	if err := s.h.hellos.Wait(ctx); err != nil {
		return err
	}
	s.h.metrics.helloWait.Observe(s.h.clock.Since(start).Seconds())
	return nil
}
