package grpc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	ggrpc "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/baton-dev/baton/internal/protocol"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
	"github.com/baton-dev/baton/internal/transport/grpc/pb"
)

const rolesConfig = `tokens:
- {token: a-tok, subject: svc-a, role: source, source: a}
- {token: b-tok, subject: svc-b, role: source, source: b}
- {token: reader-tok, subject: reader, role: reader}
- {token: agent1-tok, subject: agent-c1, role: agent, consumer: c1}
`

func withToken(tok string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
}

// subscribeErr opens a Subscribe stream and returns the error it ends with
// (nil when it delivers its header: the subscription was accepted).
func subscribeErr(t *testing.T, rpc pb.CloudEventServiceClient, tok string, req *pb.SubscriptionRequest) error {
	t.Helper()
	ctx, cancel := context.WithCancel(withToken(tok))
	t.Cleanup(cancel)
	stream, err := rpc.Subscribe(ctx, req)
	if err != nil {
		return err
	}
	if _, err := stream.Header(); err != nil {
		return err
	}
	if hdr, _ := stream.Header(); len(hdr.Get(SubscriptionIDHeader)) == 1 {
		return nil
	}
	_, err = stream.Recv()
	return err
}

func publishErr(t *testing.T, rpc pb.CloudEventServiceClient, tok string, e ce.Event) error {
	t.Helper()
	ev, err := ToPB(e)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rpc.Publish(withToken(tok), &pb.PublishRequest{Event: ev})
	return err
}

func spec(t *testing.T, action, id, source string) ce.Event {
	t.Helper()
	e, err := ce.EncodeSpecRequest(ce.SpecRequest{Action: action, BundleID: id, Consumer: "c1", Source: source, Spec: manifests()}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestGRPCSourceRoles: on the source port a caller is the source its
// identity names, whatever the events say.
func TestGRPCSourceRoles(t *testing.T) {
	feed := newFakeFeed()
	st := newFakeStore(feed, "c1")
	srv, _ := startServer(t, Config{Agents: newFakeHub(), Bundles: st, Changes: feed, Auth: newAuth(t, rolesConfig)})
	rpc := rawClient(t, srv.SourceAddr())

	if err := subscribeErr(t, rpc, "", &pb.SubscriptionRequest{Source: "a", DataType: ce.DataType}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no token: %v; want Unauthenticated", err)
	}
	if err := subscribeErr(t, rpc, "forged", &pb.SubscriptionRequest{Source: "a", DataType: ce.DataType}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("forged token: %v; want Unauthenticated", err)
	}
	if err := subscribeErr(t, rpc, "a-tok", &pb.SubscriptionRequest{Source: "b", DataType: ce.DataType}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a subscribing to b's status: %v; want PermissionDenied", err)
	}
	if err := subscribeErr(t, rpc, "a-tok", &pb.SubscriptionRequest{Source: "a", DataType: ce.DataType}); err != nil {
		t.Errorf("a subscribing to its own status: %v", err)
	}
	if err := publishErr(t, rpc, "b-tok", spec(t, ce.ActionCreate, "wb", "b")); err != nil {
		t.Fatalf("b creating its bundle: %v", err)
	}
	for _, c := range []struct {
		what string
		e    ce.Event
	}{
		{"a creating as b", spec(t, ce.ActionCreate, "wa", "b")},
		{"a updating b's bundle as b", spec(t, ce.ActionUpdate, "wb", "b")},
		{"a deleting b's bundle as b", spec(t, ce.ActionDelete, "wb", "b")},
		{"a asking b's status resync", ce.EncodeStatusResync(ce.StatusResync{Source: "b", Consumer: "c1"}, time.Now())},
	} {
		if err := publishErr(t, rpc, "a-tok", c.e); status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s: %v; want PermissionDenied", c.what, err)
		}
	}
	// As itself, a still cannot touch b's bundle: it belongs to b.
	if err := publishErr(t, rpc, "a-tok", spec(t, ce.ActionDelete, "wb", "a")); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a deleting b's bundle as a: %v; want PermissionDenied", err)
	}
	if b, err := st.GetBundle(context.Background(), "wb"); err != nil || b.DeletedAt != nil || b.Source != "b" {
		t.Errorf("b's bundle after a's attempts: %+v, %v; want it untouched", b, err)
	}
	// Readers and agents have no business on the source port.
	for _, tok := range []string{"reader-tok", "agent1-tok"} {
		if err := publishErr(t, rpc, tok, spec(t, ce.ActionCreate, "wx", "a")); status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s publishing on the source port: %v; want PermissionDenied", tok, err)
		}
	}
}

// TestGRPCAgentRoles: an agent identity acts for its own consumer on the
// agent port only; a client certificate names its consumer.
func TestGRPCAgentRoles(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	c, k := ca.issue(t, "server", x509.ExtKeyUsageServerAuth)
	hub := newFakeHub()
	cfg := serverConfig(hub)
	cfg.TLS = TLSConfig{CertFile: writeFile(t, dir, "tls.crt", c), KeyFile: writeFile(t, dir, "tls.key", k)}
	cfg.Auth = newAuth(t, rolesConfig+"clientCA: "+writeFile(t, dir, "ca.crt", ca.pem)+"\n")
	srv, _ := startServer(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The token of c1 cannot subscribe as c2.
	opts := dialOpts()
	opts.TLS, opts.Token = ca.clientTLS(t, ""), "agent1-tok"
	if _, err := Dial(ctx, srv.AgentAddr(), "c2", opts); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-hub.attached:
		t.Fatalf("token of c1 attached as %s", a.consumer)
	case <-time.After(300 * time.Millisecond):
	}
	// As c1 it gets a session, but cannot publish for c2.
	cl, err := Dial(ctx, srv.AgentAddr(), "c1", opts)
	if err != nil {
		t.Fatal(err)
	}
	waitUp(t, cl)
	if a := hub.next(t); a.consumer != "c1" {
		t.Fatalf("attached %s", a.consumer)
	}
	e, err := ce.Encode(protocol.Message{Type: protocol.TypeStatus, Consumer: "c2",
		Status: &protocol.Status{BundleID: "b2", Generation: 1, Epoch: "e", Revision: 1}}, "agent", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := ToPB(e)
	if _, err := cl.rpc.Publish(ctx, &pb.PublishRequest{Event: ev}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("c1 publishing status for c2: %v; want PermissionDenied", err)
	}
	// The agent token cannot use the source port.
	if err := subscribeErr(t, rawTLSClient(t, srv.SourceAddr(), ca.clientTLS(t, "")), "agent1-tok",
		&pb.SubscriptionRequest{Source: "a", DataType: ce.DataType}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("agent token on the source port: %v; want PermissionDenied", err)
	}
	// A certificate for c1 cannot act for c2, nor use the source port.
	opts.Token = ""
	opts.TLS = ca.clientTLS(t, "c1")
	if _, err := Dial(ctx, srv.AgentAddr(), "c2", opts); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-hub.attached:
		t.Fatalf("certificate c1 attached as %s", a.consumer)
	case <-time.After(300 * time.Millisecond):
	}
	if err := subscribeErr(t, rawTLSClient(t, srv.SourceAddr(), ca.clientTLS(t, "c1")), "",
		&pb.SubscriptionRequest{Source: "a", DataType: ce.DataType}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("agent certificate on the source port: %v; want Unauthenticated", err)
	}
}

func rawTLSClient(t *testing.T, addr string, cfg *tls.Config) pb.CloudEventServiceClient {
	t.Helper()
	cc, err := ggrpc.NewClient(addr, ggrpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return pb.NewCloudEventServiceClient(cc)
}

// TestGRPCLimits: one identity holds at most MaxStreamsPerIdentity
// streams, and a source message larger than any valid bundle is refused.
func TestGRPCLimits(t *testing.T) {
	feed := newFakeFeed()
	srv, _ := startServer(t, Config{Agents: newFakeHub(), Bundles: newFakeStore(feed, "c1"), Changes: feed,
		Auth: newAuth(t, rolesConfig), MaxStreamsPerIdentity: 2})
	rpc := rawClient(t, srv.SourceAddr())
	for i := 0; i < 2; i++ {
		if err := subscribeErr(t, rpc, "a-tok", &pb.SubscriptionRequest{Source: "a", DataType: ce.DataType}); err != nil {
			t.Fatalf("stream %d: %v", i+1, err)
		}
	}
	if err := subscribeErr(t, rpc, "a-tok", &pb.SubscriptionRequest{Source: "a", DataType: ce.DataType}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("third stream of svc-a: %v; want ResourceExhausted", err)
	}
	if err := subscribeErr(t, rpc, "b-tok", &pb.SubscriptionRequest{Source: "b", DataType: ce.DataType}); err != nil {
		t.Errorf("another identity's stream: %v", err)
	}
	e := spec(t, ce.ActionCreate, "huge", "a")
	e.Data = make([]byte, MaxSourceMessage+1)
	if err := publishErr(t, rpc, "a-tok", e); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("oversized publish: %v; want ResourceExhausted", err)
	}
}
