package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/watch"
	"github.com/baton-dev/baton/pkg/api"
)

// maxBatch bounds the changes recorded in one transaction.
const maxBatch = 256

// generator turns changes into queued events (see the package doc).
type generator struct {
	m      *Manager
	cursor int64
	snaps  map[string]*snapshot
}

func (g *generator) init(ctx context.Context) error {
	cursor, err := g.m.st.WebhookCursor(ctx)
	if err != nil {
		return err
	}
	if cursor < 0 { // first start: from now on, and remember where that was
		if cursor, err = g.m.st.LatestChange(ctx); err != nil {
			return err
		}
		if _, err := g.m.st.RecordWebhookBatch(ctx, store.WebhookBatch{Cursor: cursor}); err != nil {
			return err
		}
	}
	raw, err := g.m.st.BundleSnapshots(ctx)
	if err != nil {
		return err
	}
	g.cursor, g.snaps = cursor, make(map[string]*snapshot, len(raw))
	for id, s := range raw {
		var snap snapshot
		if err := json.Unmarshal([]byte(s), &snap); err != nil {
			return fmt.Errorf("bundle %s: snapshot: %w", id, err)
		}
		g.snaps[id] = &snap
	}
	return nil
}

// run processes changes until ctx ends or reading them fails.
func (g *generator) run(ctx context.Context) error {
	ch, cancel := g.m.changes.Subscribe(nil, g.cursor)
	defer cancel()
	for {
		var batch []store.Change
		select {
		case <-ctx.Done():
			return nil
		case c, ok := <-ch:
			if !ok {
				return errors.New("change feed closed (fell behind, or reading the log failed)")
			}
			batch = append(batch, c)
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case c, ok := <-ch:
				if !ok {
					break drain
				}
				batch = append(batch, c)
			default:
				break drain
			}
		}
		if err := g.process(ctx, batch); err != nil {
			return err
		}
	}
}

// process records the events of batch; snapshots change in memory only
// once the batch is committed.
func (g *generator) process(ctx context.Context, batch []store.Change) error {
	// Read the subscriptions for every batch: one created before a change
	// was logged must see that change.
	subs, err := g.m.loadSubscriptions(ctx)
	if err != nil {
		return err
	}
	b := store.WebhookBatch{Cursor: batch[len(batch)-1].Seq, Snapshots: map[string]string{}, MaxBacklog: g.m.o.MaxBacklog}
	next := map[string]*snapshot{}
	notify := map[string]bool{}
	for _, c := range batch {
		old, seen := next[c.BundleID]
		if !seen {
			old = g.snaps[c.BundleID]
		}
		evs, snap, err := g.change(ctx, c, old, subs)
		if err != nil {
			return err
		}
		next[c.BundleID] = snap
		if snap == nil {
			b.Snapshots[c.BundleID] = ""
		} else {
			raw, _ := json.Marshal(snap)
			b.Snapshots[c.BundleID] = string(raw)
		}
		for _, ev := range evs {
			notify[ev.SubscriptionID] = true
		}
		b.Events = append(b.Events, evs...)
	}
	dropped, err := g.m.st.RecordWebhookBatch(ctx, b)
	if err != nil {
		return err
	}
	if dropped > 0 {
		g.m.log.Warn("webhook: backlog bound reached, oldest events dropped", "dropped", dropped, "maxBacklog", g.m.o.MaxBacklog)
	}
	for id, s := range next {
		if s == nil {
			delete(g.snaps, id)
		} else {
			g.snaps[id] = s
		}
	}
	g.cursor = b.Cursor
	for id := range notify {
		g.m.kick(id)
	}
	return nil
}

// change returns the events of one change and the bundle's new snapshot
// (nil once it is gone).
func (g *generator) change(ctx context.Context, c store.Change, old *snapshot, subs []*subscription) ([]store.SubscriptionEvent, *snapshot, error) {
	if c.Type == store.ChangeDeleted {
		stub := store.Bundle{ID: c.BundleID, ConsumerName: c.Consumer, Source: c.Source}
		if old != nil {
			stub.Name, stub.Meta.Labels = old.Name, old.Labels
		}
		data, _ := json.Marshal(deletedData(c.Seq, c, old))
		var evs []store.SubscriptionEvent
		for _, s := range subs {
			if s.wants([]string{api.EventDeleted}) && s.matches(stub) {
				evs = append(evs, store.SubscriptionEvent{SubscriptionID: s.ID, BundleID: c.BundleID, Type: api.CloudEventBundleDeleted, Data: data})
			}
		}
		return evs, nil, nil
	}
	b, err := g.m.st.GetBundle(ctx, c.BundleID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, old, nil // purged since; its DELETED change follows
	}
	if err != nil {
		return nil, nil, fmt.Errorf("bundle %s: %w", c.BundleID, err)
	}
	f := g.m.fresh.Freshness(ctx, b)
	snap := takeSnapshot(&b, f)
	ks := kinds(old, snap)
	if len(ks) == 0 {
		return nil, &snap, nil
	}
	var data []byte
	var evs []store.SubscriptionEvent
	for _, s := range subs {
		if !s.wants(ks) || !s.matches(b) {
			continue
		}
		if data == nil {
			data, _ = json.Marshal(eventData(c.Seq, ks, &b, f, old, snap))
		}
		evs = append(evs, store.SubscriptionEvent{SubscriptionID: s.ID, BundleID: b.ID, Type: api.CloudEventBundleChanged, Data: data})
	}
	return evs, &snap, nil
}

// subscription is a stored subscription with its parsed filter.
type subscription struct {
	store.Subscription
	filter store.Filter
}

func (s *subscription) wants(ks []string) bool {
	if len(s.Events) == 0 {
		return true
	}
	for _, k := range ks {
		if slices.Contains(s.Events, k) {
			return true
		}
	}
	return false
}

func (s *subscription) matches(b store.Bundle) bool {
	ok, _ := watch.Match(s.filter, b)
	return ok
}
