package agent

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/limits"
	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/transport/mqtt"
)

func TestHelloBatches(t *testing.T) {
	for name, n := range map[string]int{"empty": 0, "one": 1, "many": 40000} {
		t.Run(name, func(t *testing.T) {
			held, incs := map[string]int64{}, map[string]string{}
			for i := range n {
				id := fmt.Sprintf("5f8e2c1a-0000-4000-8000-%012d", i)
				held[id] = int64(i) * 1000003
				if i%2 == 0 {
					incs[id] = "7c4d1b2e-9a3f-4e6b-8c5d-2f1e0a9b8c7d"
				}
			}
			batches := protocol.Hellos("a-consumer-name", protocol.Hello{Epoch: "0e6f7a44-1c77-4a55-9d0a-7d3b0f1d2a9b",
				Held: held, Incarnations: incs})
			seen := 0
			for i, msg := range batches {
				part := msg.Hello.Held
				if msg.Hello.Batch != i+1 || msg.Hello.Batches != len(batches) {
					t.Errorf("batch %d numbered %d of %d; want %d of %d", i+1, msg.Hello.Batch, msg.Hello.Batches, i+1, len(batches))
				}
				for id := range msg.Hello.Incarnations {
					if _, ok := part[id]; !ok {
						t.Errorf("batch %d: incarnation of %s, which it does not hold", i+1, id)
					}
				}
				b, _ := json.Marshal(msg)
				if len(b) > limits.BatchBytes {
					t.Errorf("batch %d encodes to %d bytes; limit %d", i+1, len(b), limits.BatchBytes)
				}
				// The transports' encoding (a CloudEvent in JSON, as MQTT
				// carries it) must fit too: brokers refuse larger packets.
				var m protocol.Message
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatal(err)
				}
				wire, err := mqtt.EncodeMessage(m, "baton-agent-a-consumer-name", time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if len(wire) > limits.BatchBytes {
					t.Errorf("batch %d is %d bytes as a CloudEvent; limit %d", i+1, len(wire), limits.BatchBytes)
				}
				for id, g := range part {
					if held[id] != g {
						t.Errorf("batch %d: %s@%d; want @%d", i+1, id, g, held[id])
					}
				}
				seen += len(part)
			}
			if seen != n || len(batches) < 1 {
				t.Errorf("batches hold %d entries in %d batches; want %d in ≥1", seen, len(batches), n)
			}
			if n == 40000 && len(batches) < 2 {
				t.Errorf("40000 entries in one batch")
			}
		})
	}
}
