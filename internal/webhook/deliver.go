package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/baton-dev/baton/internal/client"
	"github.com/baton-dev/baton/internal/store"
)

// EventSource is the CloudEvent source of every delivery.
const EventSource = "baton"

// worker delivers one subscription's events in order.
type worker struct {
	m      *Manager
	cancel context.CancelFunc
	wake   chan struct{}

	mu  sync.Mutex
	sub store.Subscription
}

func newWorker(m *Manager, sub store.Subscription, cancel context.CancelFunc) *worker {
	return &worker{m: m, cancel: cancel, wake: make(chan struct{}, 1), sub: sub}
}

func (w *worker) set(s store.Subscription) {
	w.mu.Lock()
	w.sub = s
	w.mu.Unlock()
}

func (w *worker) current() store.Subscription {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sub
}

func (w *worker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run sends queued events until ctx ends. An event is retried, with
// backoff, until the receiver accepts it; later events wait behind it.
func (w *worker) run(ctx context.Context) {
	o := w.m.o
	bo := o.backoff()
	idle := o.Clock.NewTicker(o.Resync)
	defer idle.Stop()
	sleep := func(ch <-chan struct{}) bool {
		select {
		case <-ctx.Done():
			return false
		case <-ch:
			return true
		}
	}
	after := func() <-chan struct{} {
		ch := make(chan struct{})
		t := o.Clock.After(bo.Step())
		go func() {
			select {
			case <-t:
			case <-ctx.Done():
			}
			close(ch)
		}()
		return ch
	}
	for ctx.Err() == nil {
		sub := w.current()
		evs, err := w.m.st.PendingSubscriptionEvents(ctx, sub.ID, 0, 64)
		if err != nil {
			if ctx.Err() == nil {
				w.m.log.Warn("webhook: read queued events", "subscription", sub.Name, "err", err)
			}
			sleep(after())
			continue
		}
		if len(evs) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			case <-idle.C():
			}
			continue
		}
		for _, ev := range evs {
			for {
				err := w.deliver(ctx, sub, ev)
				if ctx.Err() != nil {
					return
				}
				now := o.Clock.Now()
				if err == nil {
					bo = o.backoff()
					w.m.metrics.deliveries.WithLabelValues(sub.Name, "success").Inc()
					if err := w.m.st.AckSubscriptionEvent(ctx, sub.ID, ev.Seq, now); err != nil && ctx.Err() == nil {
						w.m.log.Warn("webhook: record delivery", "subscription", sub.Name, "err", err)
					}
					break
				}
				w.m.metrics.deliveries.WithLabelValues(sub.Name, "failure").Inc()
				w.m.log.Info("webhook: delivery failed, retrying", "subscription", sub.Name, "seq", ev.Seq, "err", err)
				if err := w.m.st.RecordSubscriptionFailure(ctx, sub.ID, err.Error(), now); err != nil && ctx.Err() == nil {
					w.m.log.Warn("webhook: record failure", "subscription", sub.Name, "err", err)
				}
				if !sleep(after()) {
					return
				}
			}
		}
	}
}

// deliver sends one event and returns nil when the receiver answered 2xx.
// Errors never contain the secret, and name the URL without credentials.
func (w *worker) deliver(ctx context.Context, sub store.Subscription, ev store.SubscriptionEvent) error {
	body, err := Encode(sub, ev)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, w.m.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("request: %w", unwrapURL(err))
	}
	for k, v := range sub.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", cloudevents.ApplicationCloudEventsJSON+"; charset=utf-8")
	req.Header.Set("X-Baton-Signature", client.SignWebhook(sub.Secret, body, w.m.o.Clock.Now()))
	resp, err := w.m.o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", redactURL(sub.URL), unwrapURL(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: HTTP %d", redactURL(sub.URL), resp.StatusCode)
	}
	return nil
}

// Encode renders a queued event as a structured-mode CloudEvent (JSON).
// Its id is "<subscription id>:<seq>"; extension sequence carries seq (a
// decimal string: compare as integers) and subscription the name.
func Encode(sub store.Subscription, ev store.SubscriptionEvent) ([]byte, error) {
	e := cloudevents.NewEvent()
	e.SetID(sub.ID + ":" + strconv.FormatInt(ev.Seq, 10))
	e.SetSource(EventSource)
	e.SetType(ev.Type)
	e.SetSubject(ev.BundleID)
	e.SetTime(ev.CreatedAt)
	e.SetExtension("sequence", strconv.FormatInt(ev.Seq, 10))
	e.SetExtension("subscription", sub.Name)
	if err := e.SetData(cloudevents.ApplicationJSON, json.RawMessage(ev.Data)); err != nil {
		return nil, fmt.Errorf("event %d: data: %w", ev.Seq, err)
	}
	return json.Marshal(e)
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.RawQuery = ""
	return u.Redacted()
}
