package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/pkg/api"
)

// fakeAgent plays the agent end of a pipe: it takes specs, acks them,
// reports a status per generation, answers StatusRequest, and records
// everything the server sends.
type fakeAgent struct {
	t     *testing.T
	epoch string
	// id is the agent's identity in Hello: "agent" unless set, so a new
	// epoch is the same agent restarted.
	id string

	// Switches, set before run.
	goneOnDelete bool // ack a deletion with Gone instead of Status{Deleted}
	noStatus     bool // never report status unasked
	// stuckDeletes: deletions are neither acknowledged nor reported (an
	// agent busy with a delete backlog, objects held by finalizers).
	stuckDeletes bool

	mu       sync.Mutex
	conn     protocol.Conn
	held     map[string]int64
	incs     map[string]string // incarnation of a held generation
	inc      string            // incarnation of held entries missing from incs
	rev      int64
	reported map[string]api.ReportedStatus

	specs    chan protocol.Spec
	acks     chan protocol.StatusAck
	requests chan protocol.StatusRequest
	sessions chan protocol.Session
}

func newFakeAgent(t *testing.T, epoch string) *fakeAgent {
	return &fakeAgent{
		t: t, epoch: epoch, held: map[string]int64{}, incs: map[string]string{}, reported: map[string]api.ReportedStatus{},
		specs: make(chan protocol.Spec, 1000), acks: make(chan protocol.StatusAck, 1000),
		requests: make(chan protocol.StatusRequest, 1000), sessions: make(chan protocol.Session, 1000),
		id: "agent",
	}
}

// run makes conn the agent's link and handles its messages until ctx ends.
func (a *fakeAgent) run(ctx context.Context, conn protocol.Conn) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-conn.Recv():
			a.handle(ctx, m)
		}
	}
}

func (a *fakeAgent) handle(ctx context.Context, m protocol.Message) {
	switch m.Type {
	case protocol.TypeSpec:
		a.specs <- *m.Spec
		a.onSpec(ctx, *m.Spec)
	case protocol.TypeSession:
		a.sessions <- *m.Session
	case protocol.TypeStatusAck:
		a.acks <- *m.StatusAck
	case protocol.TypeStatusRequest:
		a.requests <- *m.StatusRequest
		for _, id := range m.StatusRequest.BundleIDs {
			a.mu.Lock()
			gen, ok := a.held[id]
			a.mu.Unlock()
			if ok {
				a.report(ctx, id, gen, false)
			}
		}
	}
}

func (a *fakeAgent) onSpec(ctx context.Context, s protocol.Spec) {
	if s.Deleting && a.stuckDeletes {
		return
	}
	a.mu.Lock()
	had, ok := a.held[s.BundleID]
	ok = ok && a.incarnation(s.BundleID) == s.Incarnation
	if s.Deleting {
		delete(a.held, s.BundleID)
		delete(a.incs, s.BundleID)
	} else {
		a.held[s.BundleID] = s.Generation
		a.incs[s.BundleID] = s.Incarnation
	}
	a.mu.Unlock()
	if ok && had == s.Generation && !s.Deleting {
		// A repeat of what the agent holds: ack it, nothing to report.
		a.send(ctx, protocol.Message{Type: protocol.TypeSpecAck,
			SpecAck: &protocol.SpecAck{BundleID: s.BundleID, Generation: s.Generation}})
		return
	}
	gone := s.Deleting && a.goneOnDelete
	a.send(ctx, protocol.Message{Type: protocol.TypeSpecAck,
		SpecAck: &protocol.SpecAck{BundleID: s.BundleID, Generation: s.Generation, Gone: gone}})
	if s.Deleting && !gone {
		a.report(ctx, s.BundleID, s.Generation, true)
	} else if !s.Deleting && !a.noStatus {
		a.report(ctx, s.BundleID, s.Generation, false)
	}
}

// statusFor is the status the fake agent computes for a generation.
func statusFor(gen int64) api.ReportedStatus {
	return api.ReportedStatus{Conditions: []metav1.Condition{{
		Type: api.ConditionApplied, Status: metav1.ConditionTrue, Reason: "Applied",
		Message: fmt.Sprintf("generation %d", gen), LastTransitionTime: metav1.Unix(1700000000, 0),
	}}}
}

// report sends a new status revision of bundle id.
func (a *fakeAgent) report(ctx context.Context, id string, gen int64, deleted bool) protocol.Status {
	a.mu.Lock()
	a.rev++
	rs := statusFor(gen)
	a.reported[id] = rs
	st := protocol.Status{BundleID: id, Generation: gen, Epoch: a.epoch, Revision: a.rev,
		Reported: rs, Hash: protocol.HashStatus(rs), Deleted: deleted, At: time.Now()}
	a.mu.Unlock()
	a.send(ctx, protocol.Message{Type: protocol.TypeStatus, Status: &st})
	return st
}

func (a *fakeAgent) send(ctx context.Context, m protocol.Message) {
	a.mu.Lock()
	conn := a.conn
	a.mu.Unlock()
	if err := conn.Send(ctx, m); err != nil && ctx.Err() == nil {
		a.t.Logf("agent send %s: %v", m.Type, err)
	}
}

// hello opens the session with what the agent holds.
func (a *fakeAgent) hello(ctx context.Context) {
	a.mu.Lock()
	held := make(map[string]int64, len(a.held))
	incs := make(map[string]string, len(a.held))
	for k, v := range a.held {
		held[k] = v
		incs[k] = a.incarnation(k)
	}
	a.mu.Unlock()
	a.send(ctx, protocol.Message{Type: protocol.TypeHello, Hello: &protocol.Hello{Agent: a.id, Epoch: a.epoch, Held: held,
		Incarnations: incs, Batches: 1}})
}

// incarnation is the incarnation a held generation of id was taken under
// (a.mu held).
func (a *fakeAgent) incarnation(id string) string {
	if inc, ok := a.incs[id]; ok {
		return inc
	}
	return a.inc
}

// heartbeat sends a digest of every held bundle's reported status.
func (a *fakeAgent) heartbeat(ctx context.Context) {
	a.mu.Lock()
	d := map[string]string{}
	for id := range a.held {
		d[id] = protocol.HashStatus(a.reported[id])
	}
	a.mu.Unlock()
	a.send(ctx, protocol.Message{Type: protocol.TypeHeartbeat,
		Heartbeat: &protocol.Heartbeat{Epoch: a.epoch, Digest: d, Batches: 1, At: time.Now()}})
}

func (a *fakeAgent) holds(id string) (int64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g, ok := a.held[id]
	return g, ok
}

// next receives from ch or fails the test after a few seconds.
func next[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// drain empties ch.
func drain[T any](ch <-chan T) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// none asserts nothing arrives on ch for d.
func none[T any](t *testing.T, ch <-chan T, d time.Duration, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %+v", what, v)
	case <-time.After(d):
	}
}

// eventually polls cond until it holds or fails the test after a few seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func manifest(name string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"namespace":"default"}}`, name))
}

func createBundle(t *testing.T, st store.Store, consumer, id string) store.Bundle {
	t.Helper()
	b, err := st.CreateBundle(context.Background(), store.Bundle{ID: id, ConsumerName: consumer,
		Spec: api.BundleSpec{Manifests: []json.RawMessage{manifest(id)}}})
	if err != nil {
		t.Fatalf("create bundle %s: %v", id, err)
	}
	return b
}

func updateBundle(t *testing.T, st store.Store, id string) store.Bundle {
	t.Helper()
	b, err := st.GetBundle(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	b.Spec.Manifests = append(b.Spec.Manifests, manifest(fmt.Sprintf("%s-%d", id, b.Generation+1)))
	b, err = st.UpdateBundle(context.Background(), b, 0)
	if err != nil {
		t.Fatalf("update bundle %s: %v", id, err)
	}
	return b
}
