package report

import (
	"maps"
	"slices"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
)

// heartbeats builds the digest of every bundle's latest state, split by
// protocol.Split. There is always at least one message. Callers hold mu.
func (r *Reporter) heartbeats(now time.Time) []protocol.Message {
	parts := protocol.Split(slices.Collect(maps.Keys(r.bundles)), func(id string) int {
		return protocol.EntrySize(id, r.bundles[id].hash)
	})
	out := make([]protocol.Message, len(parts))
	for i, ids := range parts {
		d := make(map[string]string, len(ids))
		for _, id := range ids {
			d[id] = r.bundles[id].hash
		}
		out[i] = protocol.Message{Type: protocol.TypeHeartbeat, Consumer: r.consumer, Heartbeat: &protocol.Heartbeat{
			Epoch: r.epoch, Digest: d, Batch: i + 1, Batches: len(parts), At: now}}
	}
	return out
}
