package grpc

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
	"github.com/baton-dev/baton/internal/transport/grpc/pb"
)

func str(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: s}}
}

func TestConvertRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 25, 17, 0, 0, 5, time.UTC)
	e := ce.Event{ID: "id-1", Source: "baton", Type: ce.TypeStatusUpdate, Time: at,
		Ext: map[string]any{"s": "x", "i": int32(-7), "b": true, "t": at}, Data: []byte(`{"a":1}`)}
	p, err := ToPB(e)
	if err != nil {
		t.Fatal(err)
	}
	if p.SpecVersion != "1.0" || p.Attributes["ce-s"].GetCeString() != "x" || p.Attributes["contenttype"].GetCeString() != "application/json" {
		t.Errorf("protobuf form = %v", p)
	}
	got, err := FromPB(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Errorf("round trip:\n got %#v\nwant %#v", got, e)
	}
	if _, err := ToPB(ce.Event{Ext: map[string]any{"f": 1.5}}); err == nil {
		t.Error("a float extension was accepted")
	}
}

// An event as sdk-go's gRPC binding writes it (prefixed attributes) and as
// the CloudEvents protobuf format writes it (bare names, text data).
func TestFromPBWireForms(t *testing.T) {
	sdk := &pb.CloudEvent{Id: "1", Source: "maestro", SpecVersion: "1.0", Type: ce.TypeSpecCreate,
		Attributes: map[string]*pb.CloudEventAttributeValue{
			"contenttype": str("application/json"), "ce-resourceid": str("b-1"), "ce-clustername": str("c1"),
			"ce-resourceversion": {Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: 0}},
			"ce-originalsource":  str(""), "ce-logtracing": str("{}"),
			"ce-metadata": str(`{"name":"w","namespace":"c1","creationTimestamp":null}`),
			"ce-time":     {Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.Now()}},
		},
		Data: &pb.CloudEvent_BinaryData{BinaryData: []byte(`{"manifests":[{"kind":"ConfigMap"}]}`)}}
	bare := &pb.CloudEvent{Id: "1", Source: "maestro", SpecVersion: "1.0", Type: ce.TypeSpecCreate,
		Attributes: map[string]*pb.CloudEventAttributeValue{
			"datacontenttype": str("application/json"), "resourceid": str("b-1"), "clustername": str("c1"),
			"metadata": str(`{"name":"w"}`),
		},
		Data: &pb.CloudEvent_TextData{TextData: `{"manifests":[{"kind":"ConfigMap"}]}`}}
	for name, p := range map[string]*pb.CloudEvent{"sdk-go": sdk, "protobuf format": bare} {
		t.Run(name, func(t *testing.T) {
			e, err := FromPB(p)
			if err != nil {
				t.Fatal(err)
			}
			r, err := ce.DecodeSpecRequest(e)
			if err != nil {
				t.Fatal(err)
			}
			if r.BundleID != "b-1" || r.Consumer != "c1" || r.Source != "maestro" || r.Meta.Name != "w" || len(r.Spec.Manifests) != 1 {
				t.Errorf("decoded %+v", r)
			}
		})
	}
}

func TestFromPBRejects(t *testing.T) {
	if _, err := FromPB(nil); !errors.Is(err, ce.ErrMalformed) {
		t.Errorf("nil event: %v", err)
	}
	p := &pb.CloudEvent{Type: "x", Data: &pb.CloudEvent_ProtoData{ProtoData: &anypb.Any{}}}
	if _, err := FromPB(p); !errors.Is(err, ce.ErrMalformed) {
		t.Errorf("proto data: %v", err)
	}
	p = &pb.CloudEvent{Type: "x", Attributes: map[string]*pb.CloudEventAttributeValue{"ce-a": {}}}
	if _, err := FromPB(p); !errors.Is(err, ce.ErrMalformed) {
		t.Errorf("empty attribute: %v", err)
	}
}
