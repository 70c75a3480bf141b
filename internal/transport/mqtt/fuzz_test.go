package mqtt

import (
	"testing"

	"github.com/baton-dev/baton/internal/transport/cloudevents/cetest"
)

// FuzzDecodeJSONEvent feeds any bytes through what the MQTT link does with
// a received message: CloudEvents JSON decoding, then the protocol decoders.
// Nothing may panic, and an event that decodes must encode again.
func FuzzDecodeJSONEvent(f *testing.F) {
	for _, e := range cetest.Seeds(f) {
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
		cetest.DecodeAll(e)
	})
}
