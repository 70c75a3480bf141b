package grpc

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"testing"
	"time"

	ggrpc "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/transport/grpc/pb"
	"github.com/baton-dev/baton/pkg/api"
)

const wait = 5 * time.Second

var quiet = slog.New(slog.DiscardHandler)

// fakeHub records every session the server attaches.
type fakeHub struct{ attached chan attached }

type attached struct {
	consumer string
	conn     protocol.Conn
	ctx      context.Context
}

func newFakeHub() *fakeHub { return &fakeHub{attached: make(chan attached, 16)} }

func (h *fakeHub) Attach(ctx context.Context, consumer string, conn protocol.Conn) error {
	h.attached <- attached{consumer, conn, ctx}
	<-ctx.Done()
	return ctx.Err()
}

func (h *fakeHub) next(t *testing.T) attached {
	t.Helper()
	select {
	case a := <-h.attached:
		return a
	case <-time.After(wait):
		t.Fatal("no agent session attached")
	}
	return attached{}
}

// fakeStore is an in-memory BundleStore that publishes to a fakeFeed.
type fakeStore struct {
	mu        sync.Mutex
	consumers map[string]bool
	bundles   map[string]store.Bundle
	hwm       map[string]int64
	expected  []int64 // expectedGeneration of every UpdateBundle
	feed      *fakeFeed
	seq       int64
}

func newFakeStore(feed *fakeFeed, consumers ...string) *fakeStore {
	s := &fakeStore{consumers: map[string]bool{}, bundles: map[string]store.Bundle{}, hwm: map[string]int64{}, feed: feed}
	for _, c := range consumers {
		s.consumers[c] = true
	}
	return s
}

func (s *fakeStore) change(b store.Bundle, t store.ChangeType) {
	s.seq++
	s.feed.publish(store.Change{Seq: s.seq, BundleID: b.ID, Consumer: b.ConsumerName, Source: b.Source, Type: t})
}

func (s *fakeStore) CreateBundle(_ context.Context, b store.Bundle) (store.Bundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.consumers[b.ConsumerName] {
		return b, fmt.Errorf("consumer %q: %w", b.ConsumerName, store.ErrNotFound)
	}
	if _, ok := s.bundles[b.ID]; ok {
		return b, fmt.Errorf("bundle %s: %w", b.ID, store.ErrConflict)
	}
	s.hwm[b.ID]++
	b.Generation = s.hwm[b.ID]
	s.bundles[b.ID] = b
	s.change(b, store.ChangeCreated)
	return b, nil
}

func (s *fakeStore) UpdateBundle(_ context.Context, b store.Bundle, expected int64) (store.Bundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expected = append(s.expected, expected)
	cur, ok := s.bundles[b.ID]
	if !ok {
		return b, fmt.Errorf("bundle %s: %w", b.ID, store.ErrNotFound)
	}
	if expected != 0 && expected != cur.Generation {
		return b, fmt.Errorf("bundle %s: generation %d: %w", b.ID, cur.Generation, store.ErrConflict)
	}
	s.hwm[b.ID]++
	cur.Meta, cur.Spec, cur.Generation = b.Meta, b.Spec, s.hwm[b.ID]
	s.bundles[b.ID] = cur
	s.change(cur, store.ChangeUpdated)
	return cur, nil
}

func (s *fakeStore) DeleteBundle(_ context.Context, id string) (store.Bundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.bundles[id]
	if !ok {
		return cur, fmt.Errorf("bundle %s: %w", id, store.ErrNotFound)
	}
	if cur.DeletedAt == nil {
		now := time.Now()
		s.hwm[id]++
		cur.DeletedAt, cur.Generation = &now, s.hwm[id]
		s.bundles[id] = cur
		s.change(cur, store.ChangeUpdated)
	}
	return cur, nil
}

func (s *fakeStore) GetBundle(_ context.Context, id string) (store.Bundle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.bundles[id]
	if !ok {
		return b, fmt.Errorf("bundle %s: %w", id, store.ErrNotFound)
	}
	return b, nil
}

// ListBundles understands the And of "=" comparisons the server sends.
func (s *fakeStore) ListBundles(_ context.Context, o store.ListOptions) (store.Page[store.Bundle], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []store.Bundle
	for _, b := range s.bundles {
		if matches(o.Filter, b) {
			all = append(all, b)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	p := store.Page[store.Bundle]{Total: len(all)}
	lo := min((o.Page-1)*o.Size, len(all))
	p.Items = all[lo:min(lo+o.Size, len(all))]
	return p, nil
}

func matches(f store.Filter, b store.Bundle) bool {
	and, _ := f.(store.And)
	for _, t := range and {
		c := t.(store.Cmp)
		v := map[string]string{"source": b.Source, "consumer_name": b.ConsumerName}[c.Field]
		if v != c.Values[0] {
			return false
		}
	}
	return true
}

// setStatus stores a reported status with a sequence id and publishes the change.
func (s *fakeStore) setStatus(id string, r api.ReportedStatus, seq string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bundles[id]
	b.Status.Reported, b.Status.SequenceID = r, seq
	s.bundles[id] = b
	s.change(b, store.ChangeUpdated)
}

// purge removes a bundle as a confirmed deletion does.
func (s *fakeStore) purge(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bundles[id]
	delete(s.bundles, id)
	s.change(b, store.ChangeDeleted)
}

// fakeFeed is a ChangeFeed that forwards published changes to subscribers.
type fakeFeed struct {
	mu    sync.Mutex
	subs  map[*feedSub]struct{}
	since []int64 // since of every Subscribe
}

type feedSub struct {
	filter func(store.Change) bool
	ch     chan store.Change
}

func newFakeFeed() *fakeFeed { return &fakeFeed{subs: map[*feedSub]struct{}{}} }

func (f *fakeFeed) Subscribe(filter func(store.Change) bool, since int64) (<-chan store.Change, func()) {
	s := &feedSub{filter: filter, ch: make(chan store.Change, 100)}
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.since = append(f.since, since)
	f.mu.Unlock()
	return s.ch, func() { f.mu.Lock(); delete(f.subs, s); f.mu.Unlock() }
}

// dropAll closes every subscriber's channel, as a broker does to a
// subscriber that fell behind.
func (f *fakeFeed) dropAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		close(s.ch)
		delete(f.subs, s)
	}
}

func (f *fakeFeed) sinces() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.since...)
}

func (f *fakeFeed) publish(c store.Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		if s.filter(c) {
			s.ch <- c
		}
	}
}

func (f *fakeFeed) count() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.subs) }

// startServer runs a server on loopback ports until the test ends or stop
// is called.
func startServer(t testing.TB, cfg Config) (s *Server, stop func()) {
	t.Helper()
	if cfg.SourceAddr == "" {
		cfg.SourceAddr = "127.0.0.1:0"
	}
	if cfg.AgentAddr == "" {
		cfg.AgentAddr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Start: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Start returned %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return s, stop
}

func rawClient(t *testing.T, addr string) pb.CloudEventServiceClient {
	t.Helper()
	cc, err := ggrpc.NewClient(addr, ggrpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return pb.NewCloudEventServiceClient(cc)
}

// eventStream reads a Subscribe stream in the background.
type eventStream struct {
	events chan *pb.CloudEvent
	err    chan error
}

func readStream(stream ggrpc.ServerStreamingClient[pb.CloudEvent]) *eventStream {
	es := &eventStream{events: make(chan *pb.CloudEvent, 100), err: make(chan error, 1)}
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				es.err <- err
				return
			}
			es.events <- ev
		}
	}()
	return es
}

// next returns the next event that is not a heartbeat.
func (es *eventStream) next(t *testing.T) *pb.CloudEvent {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ev := <-es.events:
			if ev.GetType() != "io.open-cluster-management.cloudevents.heartbeat" {
				return ev
			}
		case err := <-es.err:
			t.Fatalf("stream ended: %v", err)
		case <-timeout:
			t.Fatal("no event")
		}
	}
}

// none asserts that no event other than heartbeats arrives within d.
func (es *eventStream) none(t *testing.T, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev := <-es.events:
			if ev.GetType() != "io.open-cluster-management.cloudevents.heartbeat" {
				t.Fatalf("unexpected event %s %v", ev.GetType(), ev.GetAttributes())
			}
		case <-timeout:
			return
		}
	}
}

func bundleOf(id, source string) store.Bundle {
	return store.Bundle{ID: id, Name: id, ConsumerName: "c1", Source: source,
		Spec: api.BundleSpec{Manifests: nil}}
}
