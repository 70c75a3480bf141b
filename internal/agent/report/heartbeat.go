package report

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
)

// heartbeatOverhead bounds the encoded size of a Heartbeat message without
// its digest entries (type, consumer, epoch, batch numbers, time).
const heartbeatOverhead = 512

// heartbeats builds the digest of every bundle's latest state, split in
// batches that each encode under protocol.MaxBatchBytes. There is always
// at least one message. Callers hold mu.
func (r *Reporter) heartbeats(now time.Time) []protocol.Message {
	ids := make([]string, 0, len(r.bundles))
	for id := range r.bundles {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	limit := protocol.MaxBatchBytes - heartbeatOverhead - len(r.consumer) - len(r.epoch)
	var digests []map[string]string
	cur, size := map[string]string{}, 0
	for _, id := range ids {
		h := r.bundles[id].hash
		n := entrySize(id, h)
		if size+n > limit && len(cur) > 0 {
			digests = append(digests, cur)
			cur, size = map[string]string{}, 0
		}
		cur[id] = h
		size += n
	}
	digests = append(digests, cur)
	out := make([]protocol.Message, len(digests))
	for i, d := range digests {
		out[i] = protocol.Message{Type: protocol.TypeHeartbeat, Consumer: r.consumer, Heartbeat: &protocol.Heartbeat{
			Epoch: r.epoch, Digest: d, Batch: i + 1, Batches: len(digests), At: now}}
	}
	return out
}

// entrySize is the JSON size of one digest entry: both strings encoded,
// a colon and a comma.
func entrySize(id, hash string) int { return quotedLen(id) + quotedLen(hash) + 2 }

func quotedLen(s string) int {
	b, err := json.Marshal(s)
	if err != nil {
		return 6*len(s) + 2 // cannot happen for a string; assume every byte escaped
	}
	return len(b)
}
