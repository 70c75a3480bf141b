package grpc

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/baton-dev/baton/internal/backoff"
	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
	"github.com/baton-dev/baton/internal/transport/grpc/pb"
	"github.com/baton-dev/baton/pkg/api"
)

func serverConfig(hub AgentHandler) Config {
	feed := newFakeFeed()
	return Config{Agents: hub, Bundles: newFakeStore(feed, "c1"), Changes: feed}
}

func dialOpts() DialOptions {
	return DialOptions{Backoff: backoff.Policy{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, Factor: 2, Jitter: 0.25}, Logger: quiet}
}

func waitUp(t *testing.T, c protocol.Conn) {
	t.Helper()
	select {
	case <-c.Up():
	case <-time.After(wait):
		t.Fatal("Up did not fire")
	}
}

func recvMsg(t *testing.T, c protocol.Conn) protocol.Message {
	t.Helper()
	select {
	case m, ok := <-c.Recv():
		if !ok {
			t.Fatal("Recv closed")
		}
		return m
	case <-time.After(wait):
		t.Fatal("no message")
	}
	return protocol.Message{}
}

// sendRetry sends until the link accepts the message (sessions come up
// asynchronously on both ends).
func sendRetry(t *testing.T, c protocol.Conn, m protocol.Message) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := c.Send(context.Background(), m)
		if err == nil {
			return
		}
		if !errors.Is(err, protocol.ErrDisconnected) || time.Now().After(deadline) {
			t.Fatalf("Send: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hello(epoch string) protocol.Message {
	return protocol.Message{Type: protocol.TypeHello, Hello: &protocol.Hello{Epoch: epoch, Held: map[string]int64{"b-1": 2}, Batches: 1}}
}

func TestAgentSessionBothWaysAndReconnect(t *testing.T) {
	hub := newFakeHub()
	srv, stop := startServer(t, serverConfig(hub))
	addr := srv.AgentAddr()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl, err := Dial(ctx, addr, "c1", dialOpts())
	if err != nil {
		t.Fatal(err)
	}
	waitUp(t, cl)
	sendRetry(t, cl, hello("e1"))
	a := hub.next(t)
	if a.consumer != "c1" {
		t.Fatalf("attached consumer %q; want c1", a.consumer)
	}
	waitUp(t, a.conn)
	got := recvMsg(t, a.conn)
	if got.Type != protocol.TypeHello || got.Consumer != "c1" || got.Hello.Epoch != "e1" || got.Hello.Held["b-1"] != 2 {
		t.Fatalf("server got %+v", got)
	}

	// Server → agent.
	spec := protocol.Message{Type: protocol.TypeSpec, Spec: &protocol.Spec{BundleID: "b-1", Generation: 3,
		Body: api.BundleSpec{}}}
	if err := a.conn.Send(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if m := recvMsg(t, cl); m.Type != protocol.TypeSpec || m.Spec.BundleID != "b-1" || m.Spec.Generation != 3 {
		t.Fatalf("agent got %+v", m)
	}
	// Agent → server, in order.
	for rev := int64(1); rev <= 5; rev++ {
		st := protocol.Message{Type: protocol.TypeStatus, Status: &protocol.Status{BundleID: "b-1", Generation: 3,
			Epoch: "e1", Revision: rev, Hash: "h"}}
		if err := cl.Send(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	for rev := int64(1); rev <= 5; rev++ {
		if m := recvMsg(t, a.conn); m.Type != protocol.TypeStatus || m.Status.Revision != rev {
			t.Fatalf("server got %+v; want status revision %d", m, rev)
		}
	}

	// Server restart: the session ends, Send fails, the client comes back.
	stop()
	select {
	case _, ok := <-a.conn.Recv():
		if ok {
			t.Fatal("unexpected message on the old session")
		}
	case <-time.After(wait):
		t.Fatal("old session's Recv did not close")
	}
	if err := a.conn.Send(ctx, spec); !errors.Is(err, protocol.ErrDisconnected) {
		t.Errorf("Send on an ended session = %v; want ErrDisconnected", err)
	}
	deadline := time.Now().Add(wait)
	for cl.Send(ctx, hello("e1")) == nil {
		if time.Now().After(deadline) {
			t.Fatal("client Send still succeeds with the server down")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cfg := serverConfig(hub)
	cfg.AgentAddr = addr
	startServer(t, cfg)
	waitUp(t, cl)
	sendRetry(t, cl, hello("e1"))
	a2 := hub.next(t)
	if m := recvMsg(t, a2.conn); m.Type != protocol.TypeHello {
		t.Fatalf("after restart server got %+v", m)
	}
	if err := a2.conn.Send(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if m := recvMsg(t, cl); m.Type != protocol.TypeSpec {
		t.Fatalf("after restart agent got %+v", m)
	}

	cancel()
	select {
	case _, ok := <-cl.Recv():
		if ok {
			t.Fatal("unexpected message after cancel")
		}
	case <-time.After(wait):
		t.Fatal("client Recv did not close after its context ended")
	}
}

func TestAgentDropHook(t *testing.T) {
	hub := newFakeHub()
	srv, _ := startServer(t, serverConfig(hub))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := dialOpts()
	opts.Drop = func(m protocol.Message) bool { return m.Type == protocol.TypeStatus }
	cl, err := Dial(ctx, srv.AgentAddr(), "c1", opts)
	if err != nil {
		t.Fatal(err)
	}
	waitUp(t, cl)
	if err := cl.Send(ctx, protocol.Message{Type: protocol.TypeStatus, Status: &protocol.Status{BundleID: "b", Hash: "h"}}); err != nil {
		t.Fatalf("dropped Send = %v; want nil", err)
	}
	sendRetry(t, cl, hello("e1"))
	a := hub.next(t)
	if m := recvMsg(t, a.conn); m.Type != protocol.TypeHello {
		t.Fatalf("server got %s first; the status should have been dropped", m.Type)
	}
}

// TestAgentSessionsOfOneConsumerRouted: two agents of one consumer each
// have their own stream; the transport ends neither (the hub decides which
// serves) and routes each one's messages to its own session.
func TestAgentSessionsOfOneConsumerRouted(t *testing.T) {
	hub := newFakeHub()
	srv, _ := startServer(t, serverConfig(hub))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl1, _ := Dial(ctx, srv.AgentAddr(), "c1", dialOpts())
	waitUp(t, cl1)
	a1 := hub.next(t)
	cl2, _ := Dial(ctx, srv.AgentAddr(), "c1", dialOpts())
	waitUp(t, cl2)
	a2 := hub.next(t)
	sendRetry(t, cl2, hello("e2"))
	sendRetry(t, cl1, hello("e1"))
	if m := recvMsg(t, a2.conn); m.Hello == nil || m.Hello.Epoch != "e2" {
		t.Fatalf("second session got %+v", m)
	}
	if m := recvMsg(t, a1.conn); m.Hello == nil || m.Hello.Epoch != "e1" {
		t.Fatalf("first session got %+v", m)
	}
	if a1.ctx.Err() != nil {
		t.Fatal("the transport ended the older session")
	}
}

func TestAgentPublishWithoutSession(t *testing.T) {
	srv, _ := startServer(t, serverConfig(newFakeHub()))
	rpc := rawClient(t, srv.AgentAddr())
	e, _ := ce.Encode(protocol.Message{Type: protocol.TypeSpecAck, Consumer: "nobody",
		SpecAck: &protocol.SpecAck{BundleID: "b", Generation: 1}}, "a", time.Now())
	ev, _ := ToPB(e)
	_, err := rpc.Publish(context.Background(), &pb.PublishRequest{Event: ev})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("Publish without a session = %v; want Unavailable", err)
	}
	e, _ = ce.Encode(protocol.Message{Type: protocol.TypeStatusRequest, Consumer: "c1",
		StatusRequest: &protocol.StatusRequest{}}, "a", time.Now())
	ev, _ = ToPB(e)
	_, err = rpc.Publish(context.Background(), &pb.PublishRequest{Event: ev})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("Publish of a server-only message = %v; want InvalidArgument", err)
	}
	_, err = rpc.Publish(context.Background(), &pb.PublishRequest{Event: &pb.CloudEvent{Type: "bogus"}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("Publish of a bogus event = %v; want InvalidArgument", err)
	}
	stream, err := rpc.Subscribe(context.Background(), &pb.SubscriptionRequest{Source: "cs"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("agent Subscribe without cluster_name = %v; want InvalidArgument", err)
	}
}

func TestHeartbeatOnAgentStream(t *testing.T) {
	cfg := serverConfig(newFakeHub())
	cfg.HeartbeatInterval = 30 * time.Millisecond
	srv, _ := startServer(t, cfg)
	rpc := rawClient(t, srv.AgentAddr())
	stream, err := rpc.Subscribe(context.Background(), &pb.SubscriptionRequest{ClusterName: "c1", DataType: ce.DataType})
	if err != nil {
		t.Fatal(err)
	}
	es := readStream(stream)
	for i := 0; i < 2; i++ {
		select {
		case ev := <-es.events:
			if ev.GetType() != ce.TypeHeartbeat || ev.GetId() == "" || ev.GetSpecVersion() != "1.0" {
				t.Fatalf("event %v; want a heartbeat", ev)
			}
		case err := <-es.err:
			t.Fatal(err)
		case <-time.After(wait):
			t.Fatal("no heartbeat")
		}
	}
}

// With heartbeats slower than the client's server timeout, the client
// gives the session up and opens a new one.
func TestClientWatchdogReconnects(t *testing.T) {
	hub := newFakeHub()
	cfg := serverConfig(hub)
	cfg.HeartbeatInterval = time.Hour
	srv, _ := startServer(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := dialOpts()
	opts.ServerTimeout = 100 * time.Millisecond
	cl, _ := Dial(ctx, srv.AgentAddr(), "c1", opts)
	waitUp(t, cl)
	hub.next(t)
	waitUp(t, cl)
	hub.next(t)
}

// The agent may publish as soon as it sees the subscription header.
func TestAgentPublishRightAfterHeader(t *testing.T) {
	hub := newFakeHub()
	srv, _ := startServer(t, serverConfig(hub))
	rpc := rawClient(t, srv.AgentAddr())
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		stream, err := rpc.Subscribe(ctx, &pb.SubscriptionRequest{ClusterName: "c1", DataType: ce.DataType})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Header(); err != nil {
			t.Fatal(err)
		}
		e, _ := ce.Encode(hello("e1"), "a", time.Now())
		e.Ext[ce.ExtClusterName] = "c1"
		ev, _ := ToPB(e)
		if _, err := rpc.Publish(ctx, &pb.PublishRequest{Event: ev}); err != nil {
			t.Fatalf("attempt %d: Publish right after the header: %v", i, err)
		}
		a := hub.next(t)
		if m := recvMsg(t, a.conn); m.Type != protocol.TypeHello {
			t.Fatalf("got %+v", m)
		}
		cancel()
	}
}

type hubFunc func(ctx context.Context, consumer string, conn protocol.Conn) error

func (f hubFunc) Attach(ctx context.Context, consumer string, conn protocol.Conn) error {
	return f(ctx, consumer, conn)
}

// A session the handler refuses ends the stream with the handler's reason.
func TestAgentRefusedSession(t *testing.T) {
	refuse := hubFunc(func(context.Context, string, protocol.Conn) error {
		return fmt.Errorf("consumer ghost: %w", store.ErrNotFound)
	})
	srv, _ := startServer(t, serverConfig(refuse))
	stream, err := rawClient(t, srv.AgentAddr()).Subscribe(context.Background(),
		&pb.SubscriptionRequest{ClusterName: "ghost", DataType: ce.DataType})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.NotFound {
		t.Errorf("refused session ended with %v; want NotFound", err)
	}
}
