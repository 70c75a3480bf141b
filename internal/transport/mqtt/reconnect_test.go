package mqtt

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
)

// privateBroker runs a mosquitto of its own on a free port, so the test can
// stop and restart it.
type privateBroker struct {
	t    *testing.T
	bin  string
	port int
	cmd  *exec.Cmd
}

func newPrivateBroker(t *testing.T) *privateBroker {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a broker process")
	}
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Skip("no mosquitto binary to run a private broker")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	b := &privateBroker{t: t, bin: bin, port: port}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *privateBroker) addr() string { return "tcp://127.0.0.1:" + strconv.Itoa(b.port) }

func (b *privateBroker) start() {
	b.t.Helper()
	b.cmd = exec.Command(b.bin, "-p", strconv.Itoa(b.port))
	if err := b.cmd.Start(); err != nil {
		b.t.Fatalf("start mosquitto: %v", err)
	}
	eventually(b.t, "the private broker accepts connections", func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(b.port), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func (b *privateBroker) stop() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
	b.cmd = nil
}

// A broker restart: Send fails with ErrDisconnected while it is down; once
// it is back the agent's Conn signals Up, and both directions work again
// in the same server session.
func TestBrokerRestart(t *testing.T) {
	b := newPrivateBroker(t)
	source := uniqueSource()
	h := newFakeHandler()
	startServer(t, ServerConfig{Broker: b.addr(), Source: source, Agents: h})
	agent := dial(t, b.addr(), source, "c1", testOptions())
	send(t, agent, hello("e1"))
	a := h.next(t)
	recv(t, a.conn, "hello")

	b.stop()
	eventually(t, "Send reports the link down", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return errors.Is(agent.Send(ctx, heartbeat("e1")), protocol.ErrDisconnected)
	})
	eventually(t, "the server's Send reports the link down", func() bool {
		return errors.Is(a.conn.Send(context.Background(), heartbeat("e1")), protocol.ErrDisconnected)
	})

	b.start()
	// Like the agent: say Hello on every Up until the session has one.
	waitUp(t, agent, "reconnection")
	send(t, agent, hello("e1"))
	deadline := time.After(15 * time.Second)
	for got := false; !got; {
		select {
		case m := <-a.conn.Recv():
			got = m.Type == protocol.TypeHello
		case <-agent.Up():
			send(t, agent, hello("e1"))
		case <-deadline:
			t.Fatal("no Hello reached the session within 15s of the broker's restart")
		}
	}
	var m protocol.Message
	ack := protocol.Message{Type: protocol.TypeStatusAck, StatusAck: &protocol.StatusAck{Epoch: "e1", BundleID: "b", Revision: 3}}
	eventually(t, "the server publishes again", func() bool {
		return a.conn.Send(context.Background(), ack) == nil
	})
	for m = recv(t, agent, "ack after reconnect"); m.Type != protocol.TypeStatusAck; m = recv(t, agent, "ack after reconnect") {
	}
	if m.StatusAck.Revision != 3 {
		t.Errorf("agent got %+v; want the status ack of revision 3", m.StatusAck)
	}
	h.none(t, 100*time.Millisecond)
}
