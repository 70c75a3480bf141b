package mqtt

import (
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
)

// FuzzDecodeJSONEvent feeds any bytes through what the MQTT link does with
// a received message: CloudEvents JSON decoding, then the protocol decoders.
// Nothing may panic, and an event that decodes must encode again.
func FuzzDecodeJSONEvent(f *testing.F) {
	now := time.Unix(1700000000, 0)
	for _, m := range []protocol.Message{
		{Type: protocol.TypeHello, Consumer: "c", Hello: &protocol.Hello{Epoch: "e", Held: map[string]int64{"b": 2}}},
		{Type: protocol.TypeSpecAck, Consumer: "c", SpecAck: &protocol.SpecAck{BundleID: "b", Generation: 3}},
		{Type: protocol.TypeHeartbeat, Consumer: "c", Heartbeat: &protocol.Heartbeat{Epoch: "e", Digest: map[string]string{"b": "h"}}},
	} {
		e, err := ce.Encode(m, "agent", now)
		if err != nil {
			f.Fatal(err)
		}
		b, err := MarshalEvent(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{`{}`, `{"specversion":"1.0","type":"x","id":"1","source":"s","data_base64":"!!"}`,
		`{"specversion":"1.0","type":"x","id":"1","source":"s","time":"yesterday"}`, `{"specversion":"1.0","type":"t","ext":1e400}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := UnmarshalEvent(data)
		if err != nil {
			return
		}
		if _, err := MarshalEvent(e); err != nil {
			t.Fatalf("decoded event does not encode again: %v", err)
		}
		_, _ = ce.Decode(e)
		_, _ = ce.DecodeSpecRequest(e)
		_, _ = ce.DecodeSourceStatus(e)
	})
}
