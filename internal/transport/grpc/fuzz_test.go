package grpc

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/baton-dev/baton/internal/transport/cloudevents/cetest"
	"github.com/baton-dev/baton/internal/transport/grpc/pb"
)

// FuzzDecodeProtobufEvent feeds any bytes through what both gRPC ports do
// with a published event: protobuf decoding, conversion, then the agent
// decoder and the source decoders. Nothing may panic.
func FuzzDecodeProtobufEvent(f *testing.F) {
	for _, e := range cetest.Seeds(f) {
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
		cetest.DecodeAll(e)
	})
}
