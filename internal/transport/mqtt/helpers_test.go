package mqtt

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/backoff"
	"github.com/baton-dev/baton/internal/protocol"
)

// brokerAddr is the test broker ($BATON_TEST_MQTT, default 127.0.0.1:1883).
// Unreachable, it fails the test, or skips it under -short.
func brokerAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("BATON_TEST_MQTT")
	if addr == "" {
		addr = "127.0.0.1:1883"
	}
	u, err := ParseBroker(addr)
	if err != nil {
		t.Fatalf("BATON_TEST_MQTT: %v", err)
	}
	c, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		if testing.Short() {
			t.Skipf("no MQTT broker at %s: %v", u.Host, err)
		}
		t.Fatalf("no MQTT broker at %s (set BATON_TEST_MQTT): %v", u.Host, err)
	}
	c.Close()
	return u.String()
}

// uniqueSource is a source name no other test (or test run) uses, so
// topics of parallel runs on one broker never meet.
func uniqueSource() string { return fmt.Sprintf("test-%016x", rand.Uint64()) }

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testOptions() Options {
	return Options{Backoff: backoff.Policy{Initial: 50 * time.Millisecond, Max: 300 * time.Millisecond, Factor: 2, Jitter: 0.25},
		PublishTimeout: 5 * time.Second, Logger: discardLogger()}
}

// attachment is one Attach call of fakeHandler.
type attachment struct {
	consumer string
	conn     protocol.Conn
	end      chan struct{} // close to make Attach return
	done     chan struct{} // closed when Attach returned
}

// fakeHandler hands every session to the test; Attach returns when the
// test ends it, when ctx ends or when the conn's Recv channel closes and
// the test drained it.
type fakeHandler struct {
	err      error // returned at once when set
	attaches chan *attachment
}

func newFakeHandler() *fakeHandler { return &fakeHandler{attaches: make(chan *attachment, 16)} }

func (h *fakeHandler) Attach(ctx context.Context, consumer string, conn protocol.Conn) error {
	if h.err != nil {
		return h.err
	}
	a := &attachment{consumer: consumer, conn: conn, end: make(chan struct{}), done: make(chan struct{})}
	defer close(a.done)
	h.attaches <- a
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-a.end:
		return nil
	}
}

func (h *fakeHandler) next(t testing.TB) *attachment {
	t.Helper()
	select {
	case a := <-h.attaches:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no Attach within 10s")
		return nil
	}
}

func (h *fakeHandler) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case a := <-h.attaches:
		t.Fatalf("unexpected Attach of %s", a.consumer)
	case <-time.After(d):
	}
}

// startServer runs a server until the test ends and waits until it
// subscribed.
func startServer(t testing.TB, cfg ServerConfig) *Server {
	t.Helper()
	if cfg.Options.Logger == nil {
		cfg.Options = testOptions()
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server Start: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("server Start did not return within 10s of cancel")
		}
	})
	eventually(t, "the server subscribed", func() bool { _, live := s.link.conn(); return live })
	return s
}

// dial connects an agent until the test ends and waits for its first Up.
func dial(t testing.TB, broker, source, consumer string, opts Options) *Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := Dial(ctx, broker, source, consumer, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Error("agent link did not stop within 10s of cancel")
		}
	})
	waitUp(t, c, "first connection")
	return c
}

func waitUp(t testing.TB, c protocol.Conn, what string) {
	t.Helper()
	select {
	case <-c.Up():
	case <-time.After(10 * time.Second):
		t.Fatalf("no Up within 10s: %s", what)
	}
}

func noUp(t testing.TB, c protocol.Conn, d time.Duration, what string) {
	t.Helper()
	select {
	case <-c.Up():
		t.Fatalf("unexpected Up: %s", what)
	case <-time.After(d):
	}
}

func recv(t testing.TB, c protocol.Conn, what string) protocol.Message {
	t.Helper()
	select {
	case m, ok := <-c.Recv():
		if !ok {
			t.Fatalf("%s: Recv closed", what)
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: nothing received within 10s", what)
	}
	return protocol.Message{}
}

func send(t testing.TB, c protocol.Conn, m protocol.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Send(ctx, m); err != nil {
		t.Fatalf("send %s: %v", m.Type, err)
	}
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hello(epoch string) protocol.Message {
	return protocol.Message{Type: protocol.TypeHello, Hello: &protocol.Hello{Epoch: epoch, Held: map[string]int64{}, Batches: 1}}
}

func heartbeat(epoch string) protocol.Message {
	return protocol.Message{Type: protocol.TypeHeartbeat, Heartbeat: &protocol.Heartbeat{Epoch: epoch,
		Digest: map[string]string{}, Batches: 1, At: time.Now().UTC()}}
}
