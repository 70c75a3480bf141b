package grpc

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/baton-dev/baton/internal/protocol"
	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
	"github.com/baton-dev/baton/internal/transport/grpc/pb"
)

// FuzzDecodeProtobufEvent feeds any bytes through what both gRPC ports do
// with a published event: protobuf decoding, conversion, then the agent
// decoder and the source decoders. Nothing may panic.
func FuzzDecodeProtobufEvent(f *testing.F) {
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
		ev, err := ToPB(e)
		if err != nil {
			f.Fatal(err)
		}
		b, err := proto.Marshal(ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	spec, err := ce.EncodeSpecRequest(ce.SpecRequest{Action: ce.ActionCreate, BundleID: "b", Consumer: "c", Source: "s", Version: 1}, now)
	if err != nil {
		f.Fatal(err)
	}
	ev, err := ToPB(spec)
	if err != nil {
		f.Fatal(err)
	}
	b, _ := proto.Marshal(ev)
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var in pb.CloudEvent
		if proto.Unmarshal(data, &in) != nil {
			return
		}
		e, err := FromPB(&in)
		if err != nil {
			return
		}
		_, _ = ce.Decode(e)
		_, _ = ce.DecodeSpecRequest(e)
		_, _ = ce.DecodeStatusResync(e)
		_, _ = ce.DecodeSourceStatus(e)
	})
}
