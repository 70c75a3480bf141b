package hub

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/baton-dev/baton/internal/backoff"
	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store"
)

// session is the server side of one agent connection.
type session struct {
	h        *Hub
	consumer string
	conn     protocol.Conn
	cancel   context.CancelFunc
	done     chan struct{}
	kick     chan struct{}
	sendMu   sync.Mutex
	// incarnation is the consumer's record id: the generation space of its
	// bundles, set on every Spec sent (protocol.Spec.Incarnation).
	incarnation string

	// lease is this session's name in the consumer's session lease.
	lease string
	// promote asks the reader to claim the consumer again with standby's Hello.
	promote chan struct{}

	mu       sync.Mutex
	agent    string      // identity of the agent this session serves, once active
	active   bool        // holds the consumer's session lease
	standby  *helloState // the refused Hello of a standing-by agent
	epoch    string      // from the last complete Hello
	ready    bool        // a Hello completed
	beat     time.Time
	inflight map[string]inflight // bundle id → last spec sent, not yet acked
	acked    map[string]int64    // bundle id → generation the agent is known to hold
	missing  map[string]int      // bundle id → consecutive digests lacking it
	hello    batches[int64]
	helloInc batches[string] // Hello.Incarnations, split like Hello.Held
	// restored holds the bundles the agent held at a newer generation
	// than the store's, in the consumer's incarnation: only a store
	// restored to an older state does this. Their specs are sent under
	// restoredIncarnation until the next Hello.
	restored map[string]bool
	// undeliverable: bundle id → generation the transport refused as too
	// large (dispatch.go tooLarge).
	undeliverable map[string]int64
	digest        batches[string]
	// msgSeq numbers the Status and Heartbeat messages handled; statusSeq
	// is the msgSeq of each bundle's last Status, so that a digest checked
	// after it (asynchronously) does not judge a newer status by an older hash.
	msgSeq    int64
	statusSeq map[string]int64
	digests   chan digestJob // the latest complete digest waiting to be checked
	// unconfirmed holds the bundles whose last stored status has entries
	// the agent could not observe: a digest does not confirm them (their
	// confirmedAt stays when observation failed).
	unconfirmed map[string]bool

	acks *protocol.AckQueue[protocol.StatusAck] // StatusAcks owed, sent by sendStatusAcks

	// cursor is, per outbox operation, the last event the dispatcher read
	// (dispatch.go pending); only the dispatcher goroutine uses it.
	cursor map[store.OutboxOp]int64
}

// inflight is a spec sent and not yet acknowledged.
type inflight struct {
	spec  protocol.Spec
	at    time.Time
	sends int // sends of this generation in this session
}

// resendPolicy is the resend backoff: a spec waits timeout, then twice,
// four and at most eight times as long for its ack. An agent acks a spec
// once it has applied it, so a backlog of hundreds would otherwise have
// every queued spec re-sent every timeout.
func resendPolicy(timeout time.Duration) backoff.Policy {
	return backoff.Policy{Initial: timeout, Max: 8 * timeout, Factor: 2}
}

// overdue reports whether the spec has waited for its ack too long at now.
func (f inflight) overdue(now time.Time, timeout time.Duration) bool {
	return now.Sub(f.at) >= resendPolicy(timeout).Delay(max(f.sends, 1))
}

func newSession(h *Hub, consumer string, conn protocol.Conn, cancel context.CancelFunc) *session {
	return &session{
		h: h, consumer: consumer, conn: conn, cancel: cancel,
		done: make(chan struct{}), kick: make(chan struct{}, 1), promote: make(chan struct{}, 1),
		lease: h.serverID + "/" + uuid.NewString(),
		beat:  h.clock.Now(), inflight: map[string]inflight{}, acked: map[string]int64{}, missing: map[string]int{},
		statusSeq: map[string]int64{}, digests: make(chan digestJob, 1), acks: newStatusAcks(),
		undeliverable: map[string]int64{}, unconfirmed: map[string]bool{}, cursor: map[store.OutboxOp]int64{},
	}
}

// run reads and handles messages until ctx ends or the conn closes.
func (s *session) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); s.dispatch(ctx) }()
	go func() { defer wg.Done(); s.checkDigests(ctx) }()
	go func() { defer wg.Done(); s.sendStatusAcks(ctx) }()
	defer wg.Wait()
	defer s.cancel()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-s.conn.Recv():
			if !ok {
				return
			}
			s.handle(ctx, m)
		case <-s.promote:
			s.mu.Lock()
			hs := s.standby
			s.mu.Unlock()
			if hs != nil {
				s.start(ctx, *hs)
			}
		}
	}
}

func (s *session) handle(ctx context.Context, m protocol.Message) {
	switch {
	case m.Type == protocol.TypeHello && m.Hello != nil:
		s.onHello(ctx, m.Hello)
	case m.Type == protocol.TypeHeartbeat && m.Heartbeat != nil:
		s.onHeartbeat(ctx, m.Heartbeat)
	case m.Type == protocol.TypeSpecAck && m.SpecAck != nil:
		s.onSpecAck(ctx, m.SpecAck)
	case m.Type == protocol.TypeStatus && m.Status != nil:
		s.onStatus(ctx, m.Status)
	default:
		s.h.log.Debug("hub: ignoring message", "consumer", s.consumer, "type", m.Type)
	}
}

func (s *session) lastBeat() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.beat
}

func (s *session) kickDispatch() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// send sends one message; sends of the reader and the dispatcher do not interleave.
func (s *session) send(ctx context.Context, m protocol.Message) error {
	m.Consumer = s.consumer
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.conn.Send(ctx, m)
}

// sendSpec sends spec, in the consumer's incarnation, and remembers it
// until acknowledged.
func (s *session) sendSpec(ctx context.Context, spec protocol.Spec) error {
	s.mu.Lock()
	spec.Incarnation = s.incarnation
	if s.restored[spec.BundleID] {
		spec.Incarnation = restoredIncarnation(s.incarnation)
	}
	prev, resend := s.inflight[spec.BundleID]
	resend = resend && prev.spec.Generation == spec.Generation
	sends := 1
	if resend {
		sends = prev.sends + 1
	}
	s.mu.Unlock()
	if err := s.send(ctx, protocol.Message{Type: protocol.TypeSpec, Spec: &spec}); err != nil {
		return err
	}
	s.mu.Lock()
	s.inflight[spec.BundleID] = inflight{spec: spec, at: s.h.clock.Now(), sends: sends}
	s.mu.Unlock()
	kind := "sent"
	if resend {
		kind = "resent"
	}
	s.h.metrics.specs.WithLabelValues(kind).Inc()
	return nil
}

// restoredIncarnation is the incarnation of the specs of a bundle the
// agent holds at a generation the store went back from: it differs from
// the consumer's, so the agent takes the store's older generation; the
// next Hello brings the bundle back to the consumer's incarnation.
func restoredIncarnation(inc string) string { return inc + "/restored" }

// specOf is the Spec message carrying bundle b's current generation.
func specOf(b store.Bundle) protocol.Spec {
	return protocol.Spec{
		BundleID: b.ID, Source: b.Source, Generation: b.Generation,
		Deleting: b.DeletedAt != nil, Meta: b.Meta, Body: b.Spec,
	}
}

// requestStatus asks the agent to re-report ids, split by protocol.Split.
func (s *session) requestStatus(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	for _, part := range protocol.Split(ids, func(id string) int { return protocol.EntrySize(id) }) {
		req := &protocol.StatusRequest{BundleIDs: part}
		if err := s.send(ctx, protocol.Message{Type: protocol.TypeStatusRequest, StatusRequest: req}); err != nil {
			return err
		}
		s.h.metrics.requests.Add(float64(len(part)))
	}
	return nil
}

// onHello records the agent connected and resynchronises it: every bundle
// whose generation differs from what the agent holds is sent, bundles the
// agent holds that the store lacks are sent as deletions, and status is
// requested where the store has none for the generation the agent holds.
// A bundle held under another incarnation than the consumer's (or an
// unknown one) is not held at any generation of this one: it is sent.
//
// A complete Hello first claims the consumer's session lease (claim): an
// agent refused is told to stand down and nothing else happens.
func (s *session) onHello(ctx context.Context, m *protocol.Hello) {
	held, ok := s.hello.add(m.Epoch, m.Batch, m.Batches, m.Held)
	if s.hello.overflow {
		s.h.log.Warn("hub: split Hello over the bounds dropped", "consumer", s.consumer, "batches", m.Batches,
			"max_parts", MaxBatchParts, "max_bytes", MaxBatchBytes)
	}
	incs, _ := s.helloInc.add(m.Epoch, m.Batch, m.Batches, m.Incarnations)
	if !ok {
		return
	}
	if err := s.admit(ctx); err != nil {
		return // the session ends
	}
	s.start(ctx, helloState{agent: m.AgentID(), epoch: m.Epoch, held: held, incs: incs})
}

// helloState is a complete Hello, kept by a standing-by session so that it
// can take over without waiting for the agent's next Hello.
type helloState struct {
	agent, epoch string
	held         map[string]int64
	incs         map[string]string
}

// start serves a complete Hello once the session holds the consumer.
func (s *session) start(ctx context.Context, hs helloState) {
	if !s.claim(ctx, hs) {
		return
	}
	held, incs, m := hs.held, hs.incs, struct{ Epoch string }{hs.epoch}
	current := make(map[string]int64, len(held)) // held in this incarnation
	for id, g := range held {
		if incs[id] == s.incarnation {
			current[id] = g
		}
	}
	now := s.h.clock.Now()
	state := store.AgentState{Connected: true, Epoch: m.Epoch, LastHeartbeat: now, ServerID: s.h.serverID}
	if err := s.h.st.SetAgentState(ctx, s.consumer, state); err != nil {
		// End the session: the agent reconnects and says Hello again.
		if ctx.Err() == nil {
			s.h.log.Warn("hub: record agent state", "consumer", s.consumer, "err", err)
		}
		s.cancel()
		return
	}
	s.h.onAgentState(s.consumer)
	s.mu.Lock()
	s.epoch, s.ready, s.beat = m.Epoch, false, now
	s.inflight = map[string]inflight{}
	s.restored = map[string]bool{}
	s.acked = make(map[string]int64, len(current))
	for id, g := range current {
		s.acked[id] = g
	}
	s.mu.Unlock()
	resyncStart := s.h.clock.Now()
	err := s.resync(ctx, held, current)
	s.h.metrics.resync.Observe(s.h.clock.Since(resyncStart).Seconds())
	if err != nil && ctx.Err() == nil {
		s.h.log.Warn("hub: resync agent", "consumer", s.consumer, "err", err)
	}
	// Only now may the dispatcher run: it skips what the resync sent.
	s.mu.Lock()
	s.ready = true
	s.mu.Unlock()
	s.kickDispatch()
}

// resync sends what differs from held; current is the part of held taken
// in the consumer's incarnation. Held bundles the store lacks are sent as
// deletions, or, when they were finalized without the agent (Orphans), as
// orphaning deletions that leave their objects in place.
func (s *session) resync(ctx context.Context, held, current map[string]int64) error {
	bundles, err := s.h.st.ListBundlesByConsumer(ctx, s.consumer)
	if err != nil {
		return err
	}
	known := make(map[string]bool, len(bundles))
	var request []string
	for _, b := range bundles {
		known[b.ID] = true
		g, ok := current[b.ID]
		if ok && g > b.Generation {
			// Only a store restored to an older state (same consumer
			// record) does this: the store's generation is sent under
			// another incarnation, which the agent takes.
			s.h.log.Warn("hub: agent holds a newer generation than the store; sending the store's",
				"consumer", s.consumer, "bundle", b.ID, "held", g, "stored", b.Generation)
			s.mu.Lock()
			s.restored[b.ID] = true
			delete(s.acked, b.ID)
			s.mu.Unlock()
		}
		if !ok || g != b.Generation {
			if err := s.sendSpec(ctx, specOf(b)); err != nil && !s.tooLarge(b.ID, b.Generation, err) {
				return err
			}
			continue
		}
		if b.Status.Revision == 0 || b.Status.ObservedGeneration < b.Generation {
			request = append(request, b.ID)
		}
	}
	orphaned, err := s.resyncOrphans(ctx, held, known)
	if err != nil {
		return err
	}
	for id, g := range held {
		if known[id] || orphaned[id] {
			continue
		}
		if err := s.sendSpec(ctx, protocol.Spec{BundleID: id, Generation: g, Deleting: true}); err != nil {
			return err
		}
	}
	return s.requestStatus(ctx, request)
}

// Bounds of one message being reassembled from parts: an agent cannot make
// the hub hold more than this per session and message kind.
const (
	// MaxBatchParts bounds Batches; a split message of more parts is refused.
	MaxBatchParts = 10000
	// MaxBatchBytes bounds the keys (bundle ids) and values held while the
	// parts arrive; a message growing past it is dropped (and logged).
	MaxBatchBytes = 64 << 20
)

// batches reassembles a message split in parts numbered Batch of Batches
// (0- or 1-based; only the count of distinct parts matters). A part with a
// new key, or a part number seen already (a new round after a lost part),
// starts over. A message of more than MaxBatchParts parts, or one whose
// parts hold more than MaxBatchBytes, is dropped: add reports it incomplete
// and overflow true, and the next part starts over.
type batches[V any] struct {
	key      string
	got      map[int]bool
	data     map[string]V
	bytes    int
	overflow bool // the last add dropped a message over the bounds
}

// batchBytesLimit is MaxBatchBytes; tests lower it.
var batchBytesLimit = MaxBatchBytes

// entryBytes is what one reassembled entry costs: its key and a value.
func entryBytes(k string) int { return len(k) + 16 }

func (b *batches[V]) add(key string, batch, total int, part map[string]V) (map[string]V, bool) {
	b.overflow = false
	if total <= 1 {
		b.got, b.data = nil, nil
		if part == nil {
			part = map[string]V{}
		}
		return part, true
	}
	if total > MaxBatchParts || batch < 0 || batch > total {
		b.got, b.data, b.overflow = nil, nil, true
		return nil, false
	}
	if b.got == nil || b.key != key || b.got[batch] {
		b.key, b.got, b.data, b.bytes = key, map[int]bool{}, map[string]V{}, 0
	}
	b.got[batch] = true
	for k, v := range part {
		if _, dup := b.data[k]; !dup {
			b.bytes += entryBytes(k)
		}
		b.data[k] = v
	}
	if b.bytes > batchBytesLimit {
		b.got, b.data, b.overflow = nil, nil, true
		return nil, false
	}
	if len(b.got) < total {
		return nil, false
	}
	out := b.data
	b.got, b.data = nil, nil
	return out, true
}

func isGone(err error) bool { return errors.Is(err, store.ErrNotFound) }
