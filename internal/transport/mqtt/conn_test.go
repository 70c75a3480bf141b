package mqtt

import (
	"github.com/eclipse/paho.golang/autopaho"

	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/internal/protocol"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
	"github.com/baton-dev/baton/pkg/api"
)

// Every message type crosses the broker both ways and arrives as the
// codec makes it; the session starts with the agent's Hello.
func TestExchangeEveryMessageType(t *testing.T) {
	broker, source := brokerAddr(t), uniqueSource()
	h := newFakeHandler()
	startServer(t, ServerConfig{Broker: broker, Source: source, Agents: h})
	agent := dial(t, broker, source, "c1", testOptions())

	msgs := everyMessage("c1")
	send(t, agent, msgs[6]) // Hello opens the session
	a := h.next(t)
	if a.consumer != "c1" {
		t.Fatalf("Attach consumer: got %q; want c1", a.consumer)
	}
	waitUp(t, a.conn, "server conn of a new session")
	if got, want := recv(t, a.conn, "hello"), viaCodec(t, msgs[6]); !reflect.DeepEqual(got, want) {
		t.Errorf("hello: got %+v; want %+v", got, want)
	}
	for _, m := range msgs {
		switch m.Type {
		case protocol.TypeSpecAck, protocol.TypeStatus, protocol.TypeHello, protocol.TypeHeartbeat:
			send(t, agent, m)
			if got, want := recv(t, a.conn, string(m.Type)), viaCodec(t, m); !reflect.DeepEqual(got, want) {
				t.Errorf("agent → server %s:\n got %+v\nwant %+v", m.Type, got, want)
			}
		default:
			send(t, a.conn, m)
			if got, want := recv(t, agent, string(m.Type)), viaCodec(t, m); !reflect.DeepEqual(got, want) {
				t.Errorf("server → agent %s:\n got %+v\nwant %+v", m.Type, got, want)
			}
		}
	}
	h.none(t, 200*time.Millisecond) // later Hellos stay in the session
}

// Messages of one consumer never reach another's session or agent.
func TestConsumersAreSeparate(t *testing.T) {
	broker, source := brokerAddr(t), uniqueSource()
	h := newFakeHandler()
	startServer(t, ServerConfig{Broker: broker, Source: source, Agents: h})
	c1 := dial(t, broker, source, "c1", testOptions())
	c2 := dial(t, broker, source, "c2", testOptions())
	send(t, c1, hello("e1"))
	a1 := h.next(t)
	send(t, c2, hello("e2"))
	a2 := h.next(t)
	if a1.consumer != "c1" || a2.consumer != "c2" {
		t.Fatalf("Attach consumers: got %s, %s; want c1, c2", a1.consumer, a2.consumer)
	}
	recv(t, a1.conn, "hello c1")
	recv(t, a2.conn, "hello c2")
	ack := protocol.Message{Type: protocol.TypeStatusAck, StatusAck: &protocol.StatusAck{Epoch: "e2", BundleID: "b", Revision: 1}}
	send(t, a2.conn, ack)
	if m := recv(t, c2, "ack for c2"); m.Consumer != "c2" || m.StatusAck == nil || m.StatusAck.Epoch != "e2" {
		t.Errorf("c2 got %+v; want the status ack", m)
	}
	select {
	case m := <-c1.Recv():
		t.Errorf("c1 got %+v meant for c2", m)
	case m := <-a1.conn.Recv():
		t.Errorf("c1's session got %+v", m)
	case <-time.After(200 * time.Millisecond):
	}
}

// An agent the server has no session for is asked for a Hello (its Conn
// signals Up), as is an agent whose epoch changed without a Hello arriving.
func TestServerAsksForHello(t *testing.T) {
	broker, source := brokerAddr(t), uniqueSource()
	h := newFakeHandler()
	startServer(t, ServerConfig{Broker: broker, Source: source, Agents: h, HelloInterval: 100 * time.Millisecond})
	agent := dial(t, broker, source, "c1", testOptions())

	send(t, agent, heartbeat("e1"))
	waitUp(t, agent, "hello request after a heartbeat without session")
	h.none(t, 100*time.Millisecond)

	send(t, agent, hello("e1"))
	a := h.next(t)
	recv(t, a.conn, "hello")
	send(t, agent, heartbeat("e1"))
	recv(t, a.conn, "heartbeat")
	noUp(t, agent, 300*time.Millisecond, "heartbeat of the session's epoch")

	send(t, agent, heartbeat("e2")) // the agent restarted; its Hello was lost
	if m := recv(t, a.conn, "heartbeat e2"); m.Heartbeat == nil || m.Heartbeat.Epoch != "e2" {
		t.Errorf("got %+v; want the heartbeat of e2 delivered", m)
	}
	waitUp(t, agent, "hello request after an epoch change")
}

// A silent agent's session ends (Recv closes); its next Hello starts a new
// one.
func TestSessionTimeout(t *testing.T) {
	broker, source := brokerAddr(t), uniqueSource()
	h := newFakeHandler()
	s := startServer(t, ServerConfig{Broker: broker, Source: source, Agents: h, SessionTimeout: 300 * time.Millisecond})
	agent := dial(t, broker, source, "c1", testOptions())
	send(t, agent, hello("e1"))
	a := h.next(t)
	recv(t, a.conn, "hello")
	select {
	case _, ok := <-a.conn.Recv():
		if ok {
			t.Fatal("got a message; want Recv closed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Recv still open 5s after the agent fell silent")
	}
	if err := a.conn.Send(context.Background(), heartbeat("e1")); !errors.Is(err, protocol.ErrDisconnected) {
		t.Errorf("Send on an ended session: got %v; want ErrDisconnected", err)
	}
	if s.Connected("c1") {
		t.Error("Connected(c1) after the session ended")
	}
	close(a.end)
	send(t, agent, hello("e2"))
	a2 := h.next(t)
	if m := recv(t, a2.conn, "hello of the new session"); m.Hello == nil || m.Hello.Epoch != "e2" {
		t.Errorf("new session got %+v; want hello e2", m)
	}
}

// When the handler refuses a session (an unknown consumer), the session
// ends and the agent is not pestered for Hellos.
func TestAttachErrorEndsSession(t *testing.T) {
	broker, source := brokerAddr(t), uniqueSource()
	h := newFakeHandler()
	h.err = errors.New("consumer unknown")
	s := startServer(t, ServerConfig{Broker: broker, Source: source, Agents: h, HelloInterval: 100 * time.Millisecond})
	agent := dial(t, broker, source, "nope", testOptions())
	send(t, agent, hello("e1"))
	eventually(t, "the refused session ended", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		_, asked := s.asked["nope"]
		return asked && s.sessions["nope"] == nil
	})
	send(t, agent, heartbeat("e1"))
	noUp(t, agent, 500*time.Millisecond, "hello request soon after a refused session")
}

func TestSendLimits(t *testing.T) {
	broker, source := brokerAddr(t), uniqueSource()
	agent := dial(t, broker, source, "c1", testOptions())
	big := api.ReportedStatus{}
	big.Conditions = append(big.Conditions, metav1.Condition{Type: "Big", Message: strings.Repeat("x", limits.MQTTMessageBytes)})
	err := agent.Send(context.Background(), protocol.Message{Type: protocol.TypeStatus,
		Status: &protocol.Status{BundleID: "b", Epoch: "e", Reported: big, Hash: "h", At: time.Now()}})
	if !errors.Is(err, protocol.ErrTooLarge) || errors.Is(err, protocol.ErrDisconnected) || !strings.Contains(err.Error(), "512 KiB") {
		t.Errorf("Send of a message over the MQTT limit: got %v; want ErrTooLarge naming 512 KiB", err)
	}
}

func TestDialValidates(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ broker, source, consumer string }{
		{"", "s", "c"}, {"http://h:1", "s", "c"}, {"tcp://h:1", "a/b", "c"}, {"tcp://h:1", "s", "c/+"}, {"tcp://h:1", "s", ""},
	} {
		if _, err := Dial(ctx, tc.broker, tc.source, tc.consumer, Options{}); err == nil {
			t.Errorf("Dial(%q, %q, %q): want an error", tc.broker, tc.source, tc.consumer)
		}
	}
	if u, err := ParseBroker("localhost"); err != nil || u.String() != "tcp://localhost:1883" {
		t.Errorf("ParseBroker(localhost): got %v, %v; want tcp://localhost:1883", u, err)
	}
}

// The topic decides the consumer: an event naming another consumer, or one
// only the server may send, is dropped.
func TestServerDropsForeignEvents(t *testing.T) {
	broker, source := brokerAddr(t), uniqueSource()
	h := newFakeHandler()
	startServer(t, ServerConfig{Broker: broker, Source: source, Agents: h})
	agent := dial(t, broker, source, "c1", testOptions())
	publishAs := func(m protocol.Message) {
		t.Helper()
		e, err := ce.Encode(m, "intruder", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := publishEvent(context.Background(), agentConn(agent), agent.opts, AgentEventsTopic(source, "c1"), e, "raw"); err != nil {
			t.Fatal(err)
		}
	}
	m := hello("e1")
	m.Consumer = "c2"
	publishAs(m) // c2's Hello on c1's topic
	h.none(t, 300*time.Millisecond)

	send(t, agent, hello("e1"))
	a := h.next(t)
	recv(t, a.conn, "hello")
	spec := everyMessage("c1")[0]
	publishAs(spec) // a Spec from an agent
	send(t, agent, heartbeat("e1"))
	if m := recv(t, a.conn, "heartbeat"); m.Type != protocol.TypeHeartbeat {
		t.Errorf("session got %s; want only the heartbeat", m.Type)
	}
}

// agentConn is the agent's connection manager, for publishing raw events.
func agentConn(c *Client) *autopaho.ConnectionManager { cm, _ := c.link.conn(); return cm }
