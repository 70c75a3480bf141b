package protocol

import (
	"context"
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-dev/baton/pkg/api"
)

func TestHashStatus(t *testing.T) {
	at := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	st := func(uid string) api.ReportedStatus {
		return api.ReportedStatus{
			Conditions: []metav1.Condition{{Type: api.ConditionApplied, Status: metav1.ConditionTrue}},
			ResourceStatus: []api.ResourceStatus{{
				Observed: api.Observed{UID: uid, ResourceVersion: "7", Exists: true, ObservedAt: at},
			}},
		}
	}
	a, b := HashStatus(st("u1")), HashStatus(st("u1"))
	if a != b || len(a) != 64 {
		t.Fatalf("equal statuses hash to %q and %q; want one 64-hex digest", a, b)
	}
	if c := HashStatus(st("u2")); c == a {
		t.Fatalf("a new uid must change the hash (I2): both %s", a)
	}
	if d := HashStatus(api.ReportedStatus{}); d == a {
		t.Fatalf("an empty status hashes like a full one")
	}
}

func TestPipeDeliversInOrder(t *testing.T) {
	p := NewPipe(8)
	ctx := context.Background()
	<-p.Agent().Up()
	<-p.Server().Up()
	for i := range 3 {
		if err := p.Agent().Send(ctx, Message{Type: TypeStatus, Status: &Status{Revision: int64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		m := <-p.Server().Recv()
		if m.Status.Revision != int64(i) {
			t.Fatalf("message %d has revision %d", i, m.Status.Revision)
		}
	}
}

func TestPipeDownAndDrop(t *testing.T) {
	p := NewPipe(8)
	ctx := context.Background()
	<-p.Agent().Up()
	<-p.Server().Up()
	p.SetUp(false)
	if err := p.Server().Send(ctx, Message{Type: TypeSpec}); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("send on a down link: %v; want ErrDisconnected", err)
	}
	p.SetUp(true)
	select {
	case <-p.Agent().Up():
	case <-time.After(time.Second):
		t.Fatal("no Up after the link came back")
	}
	p.SetDropFromAgent(func(m Message) bool { return m.Type == TypeStatus })
	if err := p.Agent().Send(ctx, Message{Type: TypeStatus}); err != nil {
		t.Fatalf("a dropped message reports success like a lossy network: %v", err)
	}
	if err := p.Agent().Send(ctx, Message{Type: TypeHeartbeat}); err != nil {
		t.Fatal(err)
	}
	if m := <-p.Server().Recv(); m.Type != TypeHeartbeat {
		t.Fatalf("got %s; want the heartbeat, the status was dropped", m.Type)
	}
}

func TestAckQueueKeepsNewestPerKeyAndNeverBlocks(t *testing.T) {
	q := NewAckQueue(func(queued, next SpecAck) bool { return next.Generation >= queued.Generation })
	// Nobody runs the queue yet: Add must not block however many acks come.
	for g := int64(1); g <= 1000; g++ {
		q.Add("a", SpecAck{BundleID: "a", Generation: g})
	}
	q.Add("a", SpecAck{BundleID: "a", Generation: 3}) // older: ignored
	q.Add("b", SpecAck{BundleID: "b", Generation: 1})
	if p := q.Pending(); len(p) != 2 || p["a"].Generation != 1000 || p["b"].Generation != 1 {
		t.Fatalf("pending = %+v; want a@1000 and b@1", p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan SpecAck, 4)
	done := make(chan struct{})
	go func() { q.Run(ctx, func(_ context.Context, a SpecAck) { got <- a }); close(done) }()
	seen := map[string]int64{}
	for range 2 {
		select {
		case a := <-got:
			seen[a.BundleID] = a.Generation
		case <-time.After(time.Second):
			t.Fatal("Run sent nothing")
		}
	}
	if seen["a"] != 1000 || seen["b"] != 1 {
		t.Fatalf("sent %v; want a@1000 and b@1", seen)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Run did not return when its context ended")
	}
}
