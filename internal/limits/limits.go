// Package limits is the one definition of how large baton's messages and
// documents may be. The API refuses what a transport could not carry, the
// transports refuse to send what their peer would refuse to take, and the
// agent bounds what it reports, all from the numbers here.
//
// The transports:
//   - MQTT: MQTTMessageBytes per message. Azure Event Grid caps an MQTT
//     packet at 512 KiB; baton holds every broker to that, so a fleet can
//     move between brokers without a bundle becoming undeliverable.
//   - gRPC: GRPCMessageBytes per message, grpc-go's default receive limit,
//     on the server's listeners and in the agent's client alike.
//
// Messages that carry many entries (Hello, Heartbeat, StatusRequest) are
// split into parts of at most BatchBytes (protocol.Split), so they fit
// either transport whatever the fleet's size.
package limits

import "fmt"

// Transport names a server–agent transport.
type Transport string

// The transports.
const (
	GRPC Transport = "grpc"
	MQTT Transport = "mqtt"
)

// Sizes, in bytes.
const (
	// MQTTMessageBytes bounds one MQTT message (a CloudEvent in JSON).
	MQTTMessageBytes = 512 << 10
	// GRPCMessageBytes bounds one gRPC message (a CloudEvent in protobuf).
	GRPCMessageBytes = 4 << 20

	// BatchBytes bounds one part of a split message: the smallest
	// transport's limit.
	BatchBytes = MQTTMessageBytes

	// BundleSpecBytes bounds a bundle's encoded spec (manifests, manifest
	// configs, delete option), as ManifestWork does.
	BundleSpecBytes = 500 << 10
	// AnnotationsBytes bounds the total size of a bundle's metadata
	// annotations (keys and values), as Kubernetes does for objects. They
	// travel in the spec message's `metadata` extension.
	AnnotationsBytes = 256 << 10
	// BundleBodyBytes bounds a REST request body that carries a bundle:
	// its spec, annotations and, when a GET result is sent back, its
	// status, with room for the rest of the document.
	BundleBodyBytes = BundleSpecBytes + AnnotationsBytes + StatusBytes + 100<<10
	// ConsumerBodyBytes bounds a REST request body that carries a consumer.
	ConsumerBodyBytes = 64 << 10

	// SourceMessageBytes bounds one message a source client sends over
	// gRPC: a spec event carries at most a valid bundle (spec and
	// annotations) plus its envelope and the rest of its metadata.
	SourceMessageBytes = BundleSpecBytes + AnnotationsBytes + 256<<10

	// SpecEnvelopeBytes is a generous bound of a spec message's encoding
	// without its data and its `metadata` extension: the CloudEvent
	// attributes and the other extensions.
	SpecEnvelopeBytes = 4 << 10

	// StatusEntryBytes bounds one per-object entry of a reported status
	// (resourceStatus[i]) as JSON; the agent cuts feedback values beyond it.
	StatusEntryBytes = 64 << 10
	// StatusBytes bounds a bundle's whole reported status as JSON; the agent
	// cuts feedback values and messages beyond it. It leaves room for the
	// status message's envelope within MQTTMessageBytes.
	StatusBytes = MQTTMessageBytes - 64<<10
)

// MessageBytes is the largest message transport t carries; an unknown
// transport gets the smallest limit.
func MessageBytes(t Transport) int {
	if t == GRPC {
		return GRPCMessageBytes
	}
	return MQTTMessageBytes
}

// Smallest is the largest message every one of ts carries (the gRPC limit
// when ts is empty: gRPC is always served).
func Smallest(ts ...Transport) int {
	n := GRPCMessageBytes
	for _, t := range ts {
		n = min(n, MessageBytes(t))
	}
	return n
}

// Human renders a byte count the way error messages name limits:
// "524288 bytes (512 KiB)".
func Human(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d bytes (%d MiB)", n, n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d bytes (%d KiB)", n, n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
