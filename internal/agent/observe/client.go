package observe

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// DirectClient returns a dynamic client for the cluster of cfg whose reads
// are not retried by client-go (it retries a GET up to 10 times, a second
// apart, when a connection is reset: a cut link would go unnoticed for
// 10 s). Options.Direct takes it: probes and direct reads try twice at
// once, then report the failure.
func DirectClient(cfg *rest.Config) (dynamic.Interface, error) {
	c := dynamic.ConfigFor(cfg)
	hc, err := rest.HTTPClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("observe: http client: %w", err)
	}
	rc, err := rest.UnversionedRESTClientForConfigAndClient(c, hc)
	if err != nil {
		return nil, fmt.Errorf("observe: rest client: %w", err)
	}
	return dynamic.New(noRetry{rc}), nil
}

// noRetry makes every GET (get, list, watch) fail at its first error.
type noRetry struct{ rest.Interface }

func (n noRetry) Get() *rest.Request { return n.Interface.Get().MaxRetries(0) }

// twice runs f again at once when it fails, unless ctx ended: a single
// reset connection is not an outage.
func twice(ctx context.Context, f func() error) error {
	err := f()
	if err != nil && ctx.Err() == nil {
		err = f()
	}
	return err
}

// endNotifier is a watch that calls ended when its result channel closes
// without the informer having stopped it: the API server or the link
// ended the watch, which may mean the link is gone.
type endNotifier struct {
	watch.Interface
	ch      chan watch.Event
	stopped chan struct{}
}

func notifyEnd(w watch.Interface, ended func()) watch.Interface {
	n := &endNotifier{Interface: w, ch: make(chan watch.Event), stopped: make(chan struct{})}
	go func() {
		defer close(n.ch)
		for ev := range w.ResultChan() {
			select {
			case n.ch <- ev:
			case <-n.stopped:
				return
			}
		}
		select {
		case <-n.stopped:
		default:
			ended()
		}
	}()
	return n
}

func (n *endNotifier) ResultChan() <-chan watch.Event { return n.ch }

func (n *endNotifier) Stop() {
	select {
	case <-n.stopped:
	default:
		close(n.stopped)
	}
	n.Interface.Stop()
}
