package grpc

import (
	"context"
	"testing"

	"github.com/baton-dev/baton/internal/protocol"
)

// BenchmarkAgentStatusPublish measures one agent status report over a real
// loopback gRPC link, from Send on the agent to Recv in the server's session.
func BenchmarkAgentStatusPublish(b *testing.B) {
	hub := newFakeHub()
	srv, stop := startServer(b, serverConfig(hub))
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl, err := Dial(ctx, srv.AgentAddr(), "c1", dialOpts())
	if err != nil {
		b.Fatal(err)
	}
	<-cl.Up()
	a := <-hub.attached
	m := protocol.Message{Type: protocol.TypeStatus, Status: &protocol.Status{BundleID: "b-1", Epoch: "e", Hash: "h"}}
	b.ReportAllocs()
	for b.Loop() {
		if err := cl.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
		<-a.conn.Recv()
	}
}
