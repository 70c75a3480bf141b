package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// `baton server --mqtt-broker` serves agents through the broker into the
// same hub as gRPC: a bundle created over REST reaches an MQTT agent.
func TestServerServesMQTTAgents(t *testing.T) {
	broker := os.Getenv("BATON_TEST_MQTT")
	if broker == "" {
		broker = "127.0.0.1:1883"
	}
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(broker, "tcp://"), 2*time.Second); err != nil {
		if testing.Short() {
			t.Skipf("no MQTT broker: %v", err)
		}
		t.Fatalf("no MQTT broker at %s (set BATON_TEST_MQTT): %v", broker, err)
	} else {
		c.Close()
	}
	source := fmt.Sprintf("cli-%016x", rand.Uint64())
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("unused-by-anonymous-broker\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base, done, _ := startServerCLI(t, "--grpc-addr", freeAddr(t), "--agent-addr", freeAddr(t),
		"--mqtt-broker", "tcp://"+strings.TrimPrefix(broker, "tcp://"), "--mqtt-source", source,
		"--mqtt-username", "baton", "--mqtt-password-file", pw)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := http.Post(base+"/api/maestro/v1/consumers", "application/json", strings.NewReader(`{"name":"mq-1"}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create consumer: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Post(base+"/api/maestro/v1/resource-bundles", "application/json", strings.NewReader(
		`{"consumer_name":"mq-1","metadata":{"name":"cm"},"manifests":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","namespace":"default"}}]}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("create bundle: %s %s", resp.Status, b)
		}
		t.Fatalf("create bundle: %v", err)
	}
	var created struct {
		ID string `json:"id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil || created.ID == "" {
		t.Fatalf("create bundle: no id: %v", err)
	}

	var (
		o    = &mqttAgentOptions{broker: broker, source: source}
		conn protocol.Conn
	)
	conn, err = o.dial(ctx, "mq-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.After(20 * time.Second)
	for {
		select {
		case <-conn.Up():
			_ = conn.Send(ctx, protocol.Message{Type: protocol.TypeHello, Hello: &protocol.Hello{Epoch: "e1", Batches: 1}})
		case m := <-conn.Recv():
			if m.Type == protocol.TypeSpec {
				if m.Spec.BundleID != created.ID || m.Spec.Generation != 1 {
					t.Errorf("spec: got %+v; want the bundle at generation 1", m.Spec)
				}
				return
			}
		case err := <-done:
			t.Fatalf("server exited: %v", err)
		case <-timeout:
			t.Fatal("no spec reached the MQTT agent within 20s")
		}
	}
}
