package mqtt

import (
	"testing"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store/storetest"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
)

// BenchmarkMarshalEvent encodes a ~1 KB status event to its payload.
func BenchmarkMarshalEvent(b *testing.B) {
	m := statusMessage(1)
	m.Consumer = "c1"
	e, err := ce.Encode(m, "baton-agent-c1", t0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MarshalEvent(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStatusRoundTrip measures one ~1 KB status from agent to server
// and its acknowledgement back, through the broker (QoS 1 both ways).
func BenchmarkStatusRoundTrip(b *testing.B) {
	broker, source := brokerAddr(b), uniqueSource()
	h := newFakeHandler()
	startServer(b, ServerConfig{Broker: broker, Source: source, Agents: h})
	agent := dial(b, broker, source, "c1", testOptions())
	send(b, agent, hello("e1"))
	a := h.next(b)
	recv(b, a.conn, "hello")
	m := statusMessage(0)
	for i := 0; b.Loop(); i++ {
		m.Status.Revision = int64(i + 1)
		send(b, agent, m)
		got := recv(b, a.conn, "status")
		send(b, a.conn, protocol.Message{Type: protocol.TypeStatusAck, StatusAck: &protocol.StatusAck{Epoch: "e1",
			BundleID: "b1", Revision: got.Status.Revision}})
		recv(b, agent, "status ack")
	}
}

func statusMessage(rev int64) protocol.Message {
	reported := storetest.RealisticStatus(1)
	return protocol.Message{Type: protocol.TypeStatus, Status: &protocol.Status{BundleID: "b1", Generation: 1,
		Epoch: "e1", Revision: rev, Reported: reported, Hash: protocol.HashStatus(reported), At: t0}}
}

// BenchmarkSend measures one ~1 KB status published by the agent and
// acknowledged by the broker (the server receives it too).
func BenchmarkSend(b *testing.B) {
	broker, source := brokerAddr(b), uniqueSource()
	h := newFakeHandler()
	startServer(b, ServerConfig{Broker: broker, Source: source, Agents: h})
	agent := dial(b, broker, source, "c1", testOptions())
	send(b, agent, hello("e1"))
	a := h.next(b)
	recv(b, a.conn, "hello")
	go func() {
		for range a.conn.Recv() {
		}
	}()
	m := statusMessage(0)
	for i := 0; b.Loop(); i++ {
		m.Status.Revision = int64(i + 1)
		send(b, agent, m)
	}
}
