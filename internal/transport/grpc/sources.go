package grpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	ggrpc "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/baton-dev/baton/internal/auth"
	"github.com/baton-dev/baton/internal/bundlewrite"
	"github.com/baton-dev/baton/internal/store"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
	"github.com/baton-dev/baton/internal/transport/grpc/pb"
	"github.com/baton-dev/baton/pkg/api"
)

// sourceService serves the source listener: source clients write bundles
// with Publish and receive their bundles' status on Subscribe.
type sourceService struct {
	pb.UnimplementedCloudEventServiceServer
	s      *Server
	ctx    context.Context
	writer *bundlewrite.Writer

	mu   sync.Mutex
	subs map[string]map[*sourceSub]struct{} // by source
}

// feedRetry is the pause before subscribing to the change feed again.
const feedRetry = 100 * time.Millisecond

// sourceSub is one source client's Subscribe stream.
type sourceSub struct {
	source   string
	consumer string // "" for every consumer
	out      *outStream

	mu   sync.Mutex
	sent map[string]string      // bundle id → sequence id last sent by the live feed
	seen map[string]sourceKnown // bundle id → the bundle as last seen
}

// sourceKnown is what a source stream remembers of a bundle it reported,
// so that the Deleted status it sends after the bundle is purged still
// carries the bundle's version, metadata and spec (as Maestro sends them).
type sourceKnown struct {
	gen  int64
	meta api.ObjectMeta
	spec api.BundleSpec
}

func (sub *sourceSub) remember(b *store.Bundle) {
	sub.seen[b.ID] = sourceKnown{gen: sourceVersion(b), meta: b.Meta.WithTimestamps(b.CreatedAt, b.DeletedAt), spec: b.Spec}
}

func (s *sourceService) Subscribe(req *pb.SubscriptionRequest, stream ggrpc.ServerStreamingServer[pb.CloudEvent]) error {
	if req.GetSource() == "" {
		return status.Error(codes.InvalidArgument, "subscribe: source is required on the source endpoint")
	}
	if dt := req.GetDataType(); dt != "" && dt != ce.DataType {
		return status.Errorf(codes.InvalidArgument, "subscribe: data type %q: unsupported", dt)
	}
	if err := auth.FromContext(stream.Context()).AuthorizeSource(stream.Context(), req.GetSource(), auth.VerbSub); err != nil {
		return denied(err)
	}
	sub := &sourceSub{source: req.GetSource(), consumer: req.GetClusterName(), out: newOutStream(),
		sent: map[string]string{}, seen: map[string]sourceKnown{}}
	// Follow the change feed and register before the client learns it is
	// subscribed (the header), so the resync it sends next is answered on
	// this stream and live changes after it leave no gap.
	ch, unsubscribe := s.s.cfg.Changes.Subscribe(sub.wants, FromNow)
	s.register(sub)
	defer s.unregister(sub)
	g := s.s.metrics.sources.WithLabelValues(sub.source)
	g.Inc()
	defer g.Dec()
	ctx, cancel, id, err := openStream(s.ctx, stream, "")
	if err != nil {
		unsubscribe()
		return err
	}
	defer cancel()
	log := s.s.log.With("source", sub.source, "subscription", id)
	feedDone := make(chan struct{})
	go func() { defer close(feedDone); s.follow(ctx, sub, ch, unsubscribe) }()
	log.Info("source subscribed")
	err = s.s.sendLoop(ctx, sub.out, stream)
	cancel()
	<-feedDone
	log.Info("source unsubscribed", "err", err)
	return err
}

func (s *sourceService) register(sub *sourceSub) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs[sub.source] == nil {
		s.subs[sub.source] = map[*sourceSub]struct{}{}
	}
	s.subs[sub.source][sub] = struct{}{}
}

func (s *sourceService) unregister(sub *sourceSub) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.subs[sub.source], sub)
	if len(s.subs[sub.source]) == 0 {
		delete(s.subs, sub.source)
	}
}

// subscribers returns the streams of a source that want consumer's events.
func (s *sourceService) subscribers(source, consumer string) []*sourceSub {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*sourceSub
	for sub := range s.subs[source] {
		if sub.consumer == "" || consumer == "" || sub.consumer == consumer {
			out = append(out, sub)
		}
	}
	return out
}

func (sub *sourceSub) wants(c store.Change) bool {
	return c.Source == sub.source && (sub.consumer == "" || c.Consumer == sub.consumer)
}

// follow streams the status of the subscription's bundles as they change,
// resubscribing from the last sequence seen when the feed drops it.
func (s *sourceService) follow(ctx context.Context, sub *sourceSub, ch <-chan store.Change, unsubscribe func()) {
	since := FromNow
	for {
		for open := true; open; {
			select {
			case <-ctx.Done():
				open = false
			case c, ok := <-ch:
				if !ok {
					open = false
					break
				}
				since = c.Seq
				if err := s.onChange(ctx, sub, c); err != nil && ctx.Err() == nil {
					s.s.log.Warn("source status", "source", sub.source, "bundle", c.BundleID, "err", err)
				}
			}
		}
		unsubscribe()
		select { // a feed that keeps closing must not spin
		case <-ctx.Done():
			return
		case <-s.s.cfg.Clock.After(feedRetry):
		}
		ch, unsubscribe = s.s.cfg.Changes.Subscribe(sub.wants, since)
	}
}

func (s *sourceService) onChange(ctx context.Context, sub *sourceSub, c store.Change) error {
	if c.Type == store.ChangeDeleted {
		sub.mu.Lock()
		k, ok := sub.seen[c.BundleID]
		delete(sub.seen, c.BundleID)
		delete(sub.sent, c.BundleID)
		sub.mu.Unlock()
		if !ok {
			return s.sendDeleted(ctx, sub, c.BundleID, c.Consumer, nil)
		}
		return s.sendDeleted(ctx, sub, c.BundleID, c.Consumer, &k)
	}
	b, err := s.s.cfg.Bundles.GetBundle(ctx, c.BundleID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // purged meanwhile; its DELETED change follows
	}
	if err != nil {
		return err
	}
	sub.mu.Lock()
	sub.remember(&b)
	seq := b.Status.SequenceID
	dup := seq == "" || sub.sent[b.ID] == seq
	if !dup {
		sub.sent[b.ID] = seq
	}
	sub.mu.Unlock()
	if dup {
		return nil
	}
	return s.sendStatus(ctx, sub, b)
}

func (s *sourceService) sendStatus(ctx context.Context, sub *sourceSub, b store.Bundle) error {
	spec := b.Spec
	e, err := ce.EncodeSourceStatus(ce.SourceStatus{BundleID: b.ID, Consumer: b.ConsumerName,
		Generation: sourceVersion(&b), SequenceID: b.Status.SequenceID, Meta: b.Meta.WithTimestamps(b.CreatedAt, b.DeletedAt),
		Reported: b.Status.Reported, Spec: &spec},
		s.s.cfg.SourceID, s.s.cfg.Clock.Now())
	if err != nil {
		return err
	}
	return s.enqueue(ctx, sub, e)
}

// sendDeleted tells the client a bundle is gone, which completes its
// delete. k, when the stream knew the bundle, gives the event the
// bundle's version, metadata (with its deletion time) and spec.
func (s *sourceService) sendDeleted(ctx context.Context, sub *sourceSub, id, consumer string, k *sourceKnown) error {
	now := s.s.cfg.Clock.Now()
	st := ce.SourceStatus{BundleID: id, Consumer: consumer, SequenceID: s.s.cfg.SequenceID(), Reported: ce.DeletedStatus(now)}
	if k != nil {
		st.Generation, st.Meta = k.gen, k.meta
		if st.Meta.DeletionTimestamp == nil {
			st.Meta = st.Meta.WithTimestamps(st.Meta.CreationTimestamp.Time, &now)
		}
		spec := k.spec
		st.Spec = &spec
	}
	e, err := ce.EncodeSourceStatus(st, s.s.cfg.SourceID, now)
	if err != nil {
		return err
	}
	return s.enqueue(ctx, sub, e)
}

func (s *sourceService) enqueue(ctx context.Context, sub *sourceSub, e ce.Event) error {
	s.s.metrics.sent.WithLabelValues(sub.source, e.Type).Inc()
	ev, err := ToPB(e)
	if err != nil {
		return err
	}
	return sub.out.enqueue(ctx, ev)
}

// resync answers a status.resync_request: the status of every bundle of the
// source whose hash differs from the client's, and Deleted for bundles the
// client holds that no longer exist.
func (s *sourceService) resync(ctx context.Context, r ce.StatusResync) error {
	subs := s.subscribers(r.Source, r.Consumer)
	if len(subs) == 0 {
		return nil
	}
	f := store.And{store.Cmp{Field: "source", Op: "=", Values: []string{r.Source}}}
	if r.Consumer != "" {
		f = append(f, store.Cmp{Field: "consumer_name", Op: "=", Values: []string{r.Consumer}})
	}
	seen := map[string]bool{}
	const size = 500
	for page := 1; ; page++ {
		p, err := s.s.cfg.Bundles.ListBundles(ctx, store.ListOptions{Page: page, Size: size, Filter: f,
			OrderBy: []store.Order{{Field: "id"}}})
		if err != nil {
			return fmt.Errorf("source %s: resync: %w", r.Source, err)
		}
		for _, b := range p.Items {
			seen[b.ID] = true
			if err := s.resyncOne(ctx, subs, r, b); err != nil {
				return err
			}
		}
		if len(p.Items) < size || page*size >= p.Total {
			break
		}
	}
	for id := range r.Hashes {
		if seen[id] {
			continue
		}
		if _, err := s.s.cfg.Bundles.GetBundle(ctx, id); !errors.Is(err, store.ErrNotFound) {
			continue // exists (another source or consumer), or unknown error: leave it
		}
		for _, sub := range subs {
			if err := s.sendDeleted(ctx, sub, id, r.Consumer, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *sourceService) resyncOne(ctx context.Context, subs []*sourceSub, r ce.StatusResync, b store.Bundle) error {
	if b.Status.SequenceID == "" {
		return nil // no status reported yet
	}
	if have, ok := r.Hashes[b.ID]; ok && have != "" {
		h, err := ce.SourceStatusHash(b.Status.Reported)
		if err != nil {
			return err
		}
		if h == have {
			return nil
		}
	}
	for _, sub := range subs {
		sub.mu.Lock()
		sub.remember(&b)
		sub.mu.Unlock()
		if err := s.sendStatus(ctx, sub, b); err != nil {
			return err
		}
	}
	return nil
}

func (s *sourceService) Publish(ctx context.Context, req *pb.PublishRequest) (*emptypb.Empty, error) {
	e, err := FromPB(req.GetEvent())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if e.Source == "" {
		return nil, status.Error(codes.InvalidArgument, "publish: event source is required")
	}
	switch e.Type { // known types only: a label value per client-chosen string would be unbounded
	case ce.TypeSpecCreate, ce.TypeSpecUpdate, ce.TypeSpecDelete, ce.TypeStatusResync:
		s.s.metrics.received.WithLabelValues(e.Source, e.Type).Inc()
	}
	// The event's source is who the caller claims to be: it must be a
	// source the caller may act as.
	verb := auth.VerbPub
	if e.Type == ce.TypeStatusResync {
		verb = auth.VerbSub
	}
	if err := auth.FromContext(ctx).AuthorizeSource(ctx, e.Source, verb); err != nil {
		return nil, denied(err)
	}
	switch e.Type {
	case ce.TypeSpecCreate, ce.TypeSpecUpdate, ce.TypeSpecDelete:
		r, err := ce.DecodeSpecRequest(e)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		if err := s.write(ctx, r); err != nil {
			return nil, err
		}
	case ce.TypeStatusResync:
		r, err := ce.DecodeStatusResync(e)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		if err := s.resync(ctx, r); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
	default:
		return nil, status.Errorf(codes.InvalidArgument, "publish: event type %q: unsupported on the source endpoint", e.Type)
	}
	return &emptypb.Empty{}, nil
}

// sourceVersion is the resourceversion a source sees for b.
func sourceVersion(b *store.Bundle) int64 { return b.Version() }
