package mqtt

import (
	"context"
	"net/url"
	"sync"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
)

// brokerLink is one autopaho connection to the broker, shared by the agent's
// Client and the Server. It counts as live once its subscription to filter
// is granted. Every (re)connect is a new generation: a subscriber of an
// older generation never marks the link live, and a link that went down is
// not live until its new subscription is granted.
type brokerLink struct {
	opts   Options
	filter string
	name   []any // logging attributes naming the link's owner
	// onUp runs (outside the lock) each time a generation's subscription is
	// granted; gen 1 is the first connection.
	onUp func(gen uint64)

	mu   sync.RWMutex
	cm   *autopaho.ConnectionManager
	live bool
	gen  uint64
}

// connect starts the connection; received handles every publish and must
// not block. The link stays until ctx ends.
func (l *brokerLink) connect(ctx context.Context, u *url.URL, received func(paho.PublishReceived) (bool, error)) (*autopaho.ConnectionManager, error) {
	cfg := l.opts.clientConfig(u)
	cfg.OnConnectionUp = func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
		l.mu.Lock()
		l.gen++
		gen := l.gen
		l.mu.Unlock()
		go l.subscribe(ctx, cm, gen)
	}
	cfg.OnConnectionDown = func() bool {
		l.mu.Lock()
		l.gen++
		l.live = false
		l.mu.Unlock()
		l.opts.Logger.Warn("mqtt: broker link down", l.name...)
		return true
	}
	cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){received}
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.cm = cm
	l.mu.Unlock()
	go func() {
		<-cm.Done()
		l.mu.Lock()
		l.live = false
		l.mu.Unlock()
	}()
	return cm, nil
}

// subscribe subscribes to filter, retrying while connection gen is current,
// then marks the link live and calls onUp.
func (l *brokerLink) subscribe(ctx context.Context, cm *autopaho.ConnectionManager, gen uint64) {
	for attempt := 1; ; attempt++ {
		err := subscribe(ctx, cm, l.filter, l.opts.ConnectTimeout)
		l.mu.Lock()
		current := l.gen == gen
		if err == nil && current {
			l.live = true
		}
		l.mu.Unlock()
		if !current || ctx.Err() != nil {
			return
		}
		if err == nil {
			l.opts.Logger.Info("mqtt: broker link up", append([]any{"topic", l.filter}, l.name...)...)
			l.onUp(gen)
			return
		}
		wait := l.opts.Backoff.Delay(attempt)
		l.opts.Logger.Warn("mqtt: subscribe failed", "topic", l.filter, "err", err, "retry", wait)
		select {
		case <-ctx.Done():
			return
		case <-l.opts.Clock.After(wait):
		}
	}
}

// conn returns the connection manager and whether the link is live.
func (l *brokerLink) conn() (*autopaho.ConnectionManager, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cm, l.live && l.cm != nil
}
