package grpc

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	ce "github.com/baton-dev/baton/internal/transport/cloudevents"
	"github.com/baton-dev/baton/internal/transport/grpc/pb"
)

// Attribute keys as sdk-go's gRPC binding writes them: context attributes
// and extensions carry a "ce-" prefix, the content type does not.
const (
	attrPrefix      = "ce-"
	attrContentType = "contenttype"
	attrTime        = "time"
	specVersion     = "1.0"
	jsonContentType = "application/json"
)

// ToPB converts an event to the protobuf format in binary content mode.
// An empty ID gets a fresh UUID.
func ToPB(e ce.Event) (*pb.CloudEvent, error) {
	id := e.ID
	if id == "" {
		id = uuid.NewString()
	}
	out := &pb.CloudEvent{Id: id, Source: e.Source, SpecVersion: specVersion, Type: e.Type,
		Attributes: make(map[string]*pb.CloudEventAttributeValue, len(e.Ext)+2)}
	if !e.Time.IsZero() {
		out.Attributes[attrPrefix+attrTime] = &pb.CloudEventAttributeValue{
			Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(e.Time)}}
	}
	for name, v := range e.Ext {
		a, err := attrValue(v)
		if err != nil {
			return nil, fmt.Errorf("event %s: extension %s: %w", e.Type, name, err)
		}
		out.Attributes[attrPrefix+name] = a
	}
	if e.Data != nil {
		out.Attributes[attrContentType] = &pb.CloudEventAttributeValue{
			Attr: &pb.CloudEventAttributeValue_CeString{CeString: jsonContentType}}
		out.Data = &pb.CloudEvent_BinaryData{BinaryData: e.Data}
	}
	return out, nil
}

func attrValue(v any) (*pb.CloudEventAttributeValue, error) {
	switch x := v.(type) {
	case string:
		return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: x}}, nil
	case int32:
		return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeInteger{CeInteger: x}}, nil
	case bool:
		return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeBoolean{CeBoolean: x}}, nil
	case time.Time:
		return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeTimestamp{CeTimestamp: timestamppb.New(x)}}, nil
	}
	return nil, fmt.Errorf("unsupported value type %T", v)
}

// FromPB converts a protobuf event. Attribute names are accepted with and
// without the "ce-" prefix (sdk-go writes it, the CloudEvents protobuf
// format does not).
func FromPB(in *pb.CloudEvent) (ce.Event, error) {
	if in == nil {
		return ce.Event{}, fmt.Errorf("event: missing: %w", ce.ErrMalformed)
	}
	e := ce.Event{ID: in.GetId(), Source: in.GetSource(), Type: in.GetType(), Ext: map[string]any{}}
	for key, a := range in.GetAttributes() {
		name := strings.TrimPrefix(key, attrPrefix)
		switch name {
		case attrContentType, "datacontenttype", "specversion", "id", "source", "type":
			continue
		}
		v, err := attrGo(a)
		if err != nil {
			return e, fmt.Errorf("event %s: attribute %s: %w", e.Type, key, err)
		}
		if name == attrTime {
			if t, ok := v.(time.Time); ok {
				e.Time = t
			}
			continue
		}
		e.Ext[name] = v
	}
	switch d := in.GetData().(type) {
	case *pb.CloudEvent_BinaryData:
		e.Data = d.BinaryData
	case *pb.CloudEvent_TextData:
		e.Data = []byte(d.TextData)
	case *pb.CloudEvent_ProtoData:
		return e, fmt.Errorf("event %s: protobuf data: unsupported: %w", e.Type, ce.ErrMalformed)
	}
	return e, nil
}

func attrGo(a *pb.CloudEventAttributeValue) (any, error) {
	switch x := a.GetAttr().(type) {
	case *pb.CloudEventAttributeValue_CeBoolean:
		return x.CeBoolean, nil
	case *pb.CloudEventAttributeValue_CeInteger:
		return x.CeInteger, nil
	case *pb.CloudEventAttributeValue_CeString:
		return x.CeString, nil
	case *pb.CloudEventAttributeValue_CeBytes:
		return string(x.CeBytes), nil
	case *pb.CloudEventAttributeValue_CeUri:
		return x.CeUri, nil
	case *pb.CloudEventAttributeValue_CeUriRef:
		return x.CeUriRef, nil
	case *pb.CloudEventAttributeValue_CeTimestamp:
		return x.CeTimestamp.AsTime(), nil
	}
	return nil, fmt.Errorf("empty value: %w", ce.ErrMalformed)
}

// heartbeatEvent is the heartbeat the server sends on every Subscribe stream.
func heartbeatEvent(source string) *pb.CloudEvent {
	return &pb.CloudEvent{Id: uuid.NewString(), Source: source, SpecVersion: specVersion, Type: ce.TypeHeartbeat}
}
