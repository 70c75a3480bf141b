// Package cetest holds what the transports' fuzz targets share: seed
// events of every kind a port receives, and every decoder a received event
// may go through.
package cetest

import (
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
)

// Seeds returns one event of each kind an agent or a source publishes:
// Hello, SpecAck, Heartbeat and a source's spec request.
func Seeds(f *testing.F) []ce.Event {
	f.Helper()
	now := time.Unix(1700000000, 0)
	var out []ce.Event
	for _, m := range []protocol.Message{
		{Type: protocol.TypeHello, Consumer: "c", Hello: &protocol.Hello{Epoch: "e", Held: map[string]int64{"b": 2}}},
		{Type: protocol.TypeSpecAck, Consumer: "c", SpecAck: &protocol.SpecAck{BundleID: "b", Generation: 3}},
		{Type: protocol.TypeHeartbeat, Consumer: "c", Heartbeat: &protocol.Heartbeat{Epoch: "e", Digest: map[string]string{"b": "h"}}},
	} {
		e, err := ce.Encode(m, "agent", now)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, e)
	}
	spec, err := ce.EncodeSpecRequest(ce.SpecRequest{Action: ce.ActionCreate, BundleID: "b", Consumer: "c", Source: "s", Version: 1}, now)
	if err != nil {
		f.Fatal(err)
	}
	return append(out, spec)
}

// DecodeAll runs e through every decoder of received events; none may
// panic, whatever e holds.
func DecodeAll(e ce.Event) {
	_, _ = ce.Decode(e)
	_, _ = ce.DecodeSpecRequest(e)
	_, _ = ce.DecodeStatusResync(e)
	_, _ = ce.DecodeSourceStatus(e)
}
