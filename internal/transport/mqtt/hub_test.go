package mqtt

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-dev/baton/internal/hub"
	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store"
	"github.com/baton-dev/baton/internal/store/storetest"
	"github.com/baton-dev/baton/pkg/api"
)

// miniAgent is the protocol side of an agent without Kubernetes: Hello on
// every Up, SpecAck and an Applied status for every Spec, status re-sent
// on StatusRequest.
type miniAgent struct {
	conn  protocol.Conn
	epoch string

	mu    sync.Mutex
	held  map[string]int64
	rev   int64
	acked map[string]int64 // bundle id → acknowledged status revision
}

func (a *miniAgent) run(ctx context.Context, t *testing.T) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.conn.Up():
			a.mu.Lock()
			held := make(map[string]int64, len(a.held))
			for id, g := range a.held {
				held[id] = g
			}
			a.mu.Unlock()
			a.send(ctx, t, protocol.Message{Type: protocol.TypeHello, Hello: &protocol.Hello{Epoch: a.epoch, Held: held, Batches: 1}})
		case m, ok := <-a.conn.Recv():
			if !ok {
				return
			}
			switch m.Type {
			case protocol.TypeSpec:
				a.mu.Lock()
				a.held[m.Spec.BundleID] = m.Spec.Generation
				a.mu.Unlock()
				a.send(ctx, t, protocol.Message{Type: protocol.TypeSpecAck, SpecAck: &protocol.SpecAck{
					BundleID: m.Spec.BundleID, Generation: m.Spec.Generation}})
				a.report(ctx, t, m.Spec.BundleID, m.Spec.Generation)
			case protocol.TypeStatusAck:
				a.mu.Lock()
				a.acked[m.StatusAck.BundleID] = m.StatusAck.Revision
				a.mu.Unlock()
			case protocol.TypeStatusRequest:
				a.mu.Lock()
				held := a.held
				a.mu.Unlock()
				for id, g := range held {
					a.report(ctx, t, id, g)
				}
			}
		}
	}
}

func (a *miniAgent) report(ctx context.Context, t *testing.T, id string, gen int64) {
	reported := api.ReportedStatus{Conditions: []metav1.Condition{{Type: "Applied", Status: metav1.ConditionTrue,
		Reason: "Applied", LastTransitionTime: metav1.NewTime(time.Now().UTC().Truncate(time.Second))}}}
	a.mu.Lock()
	a.rev++
	rev := a.rev
	a.mu.Unlock()
	a.send(ctx, t, protocol.Message{Type: protocol.TypeStatus, Status: &protocol.Status{BundleID: id, Generation: gen,
		Epoch: a.epoch, Revision: rev, Reported: reported, Hash: protocol.HashStatus(reported), At: time.Now().UTC()}})
}

func (a *miniAgent) send(ctx context.Context, t *testing.T, m protocol.Message) {
	if err := a.conn.Send(ctx, m); err != nil && ctx.Err() == nil {
		t.Logf("mini agent: send %s: %v", m.Type, err)
	}
}

func (a *miniAgent) ackedRevision(id string) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.acked[id]
}

// The hub serves an agent through the broker: a bundle's spec is delivered
// and acknowledged (the outbox empties), and the agent's status is stored
// and acknowledged.
func TestHubThroughBroker(t *testing.T) {
	broker, source := brokerAddr(t), uniqueSource()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := storetest.NewSQLite(t)
	if _, err := st.CreateConsumer(ctx, store.Consumer{Name: "c1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateBundle(ctx, store.Bundle{ID: "b1", ConsumerName: "c1", Spec: api.BundleSpec{
		Manifests: []json.RawMessage{json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b1","namespace":"default"}}`)}}}); err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(st, hub.WithLogger(discardLogger()), hub.WithRegisterer(prometheus.NewRegistry()),
		hub.WithResendTimeout(time.Second), hub.WithPollInterval(100*time.Millisecond), hub.WithServerID("s1"))
	if err != nil {
		t.Fatal(err)
	}
	hubDone := make(chan error, 1)
	go func() { hubDone <- h.Start(ctx) }()
	defer func() { cancel(); <-hubDone }()
	startServer(t, ServerConfig{Broker: broker, Source: source, Agents: h})

	conn, err := Dial(ctx, broker, source, "c1", testOptions())
	if err != nil {
		t.Fatal(err)
	}
	a := &miniAgent{conn: conn, epoch: "e1", held: map[string]int64{}, acked: map[string]int64{}}
	go a.run(ctx, t)

	eventually(t, "the agent acknowledged generation 1 (the outbox is empty)", func() bool {
		ev, err := st.PendingOutbox(ctx, "c1", 10)
		return err == nil && len(ev) == 0
	})
	eventually(t, "the status is stored", func() bool {
		b, err := st.GetBundle(ctx, "b1")
		return err == nil && b.Status.Revision >= 1 && b.Status.ObservedGeneration == 1 && len(b.Status.Reported.Conditions) == 1
	})
	eventually(t, "the agent got the status acknowledged", func() bool { return a.ackedRevision("b1") >= 1 })
	c, err := st.GetConsumer(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Agent.Connected || c.Agent.Epoch != "e1" || c.Agent.ServerID != "s1" {
		t.Errorf("agent state: got %+v; want connected under epoch e1 by s1", c.Agent)
	}

	// An update is delivered in the same session.
	b, err := st.GetBundle(ctx, "b1")
	if err != nil {
		t.Fatal(err)
	}
	b.Spec.Manifests = append(b.Spec.Manifests, json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b1-2","namespace":"default"}}`))
	if _, err := st.UpdateBundle(ctx, b, 0); err != nil {
		t.Fatal(err)
	}
	h.Notify("c1")
	eventually(t, "the status of generation 2 is stored", func() bool {
		b, err := st.GetBundle(ctx, "b1")
		return err == nil && b.Status.ObservedGeneration == 2
	})
}
