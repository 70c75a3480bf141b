package cloudevents

import (
	"testing"

	"github.com/baton-dev/baton/internal/protocol"
)

func BenchmarkEncodeDecodeStatus(b *testing.B) {
	rep := sampleReported()
	m := protocol.Message{Type: protocol.TypeStatus, Consumer: "c1", Status: &protocol.Status{
		BundleID: "b-1", Generation: 7, Epoch: "e1", Revision: 99, Reported: rep, Hash: protocol.HashStatus(rep), At: t0}}
	b.ReportAllocs()
	for b.Loop() {
		e, err := Encode(m, "agent", t0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Decode(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSourceStatusHash(b *testing.B) {
	rep := sampleReported()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SourceStatusHash(rep); err != nil {
			b.Fatal(err)
		}
	}
}
