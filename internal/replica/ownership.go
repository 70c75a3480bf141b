package replica

import (
	"context"
	"hash/fnv"
	"strings"
)

// Ownership decides which replica serves a key (a consumer) whose work any
// replica could pick up: over an MQTT broker every replica receives every
// agent's events, so exactly one of them must handle a consumer's.
//
// The rule reads the key's lease, prefix+key (the hub's consumer session
// lease), whose Session starts with the id of the replica holding it
// ("<replica id>/…"):
//
//   - held by a session of this replica: this replica serves the key;
//   - held by a session of another live replica: that one does;
//   - free, or held by a replica that is gone: the live replica chosen by
//     rendezvous hashing of the key over the live replica ids, so every
//     replica picks the same one without talking to the others, and a
//     replica leaving moves only its own keys.
//
// While the replicas' views of who is live differ (for about one lease
// renewal after a replica joins or dies), two may both pick up a free key;
// the lease then settles it: the hub's claim gives the consumer to one
// session and the other ends at its next heartbeat.
type Ownership struct {
	r      *Replica
	prefix string
}

// Ownership returns the rule for the keys of leases named prefix+key.
func (r *Replica) Ownership(prefix string) *Ownership { return &Ownership{r: r, prefix: prefix} }

// Serves reports, for each key, whether this replica should serve it.
func (o *Ownership) Serves(ctx context.Context, keys []string) ([]bool, error) {
	out := make([]bool, len(keys))
	if len(keys) == 0 || o.r.Ready() != nil {
		return out, nil // not a live replica: serve nothing
	}
	live, err := o.r.Live(ctx)
	if err != nil {
		return nil, err
	}
	live[o.r.id] = true
	prefix := o.prefix
	if len(keys) == 1 {
		prefix += keys[0]
	}
	ls, err := o.r.ls.ListLeases(ctx, prefix)
	if err != nil {
		return nil, err
	}
	holder := make(map[string]string, len(ls))
	for _, l := range ls {
		rep, _, _ := strings.Cut(l.Session, "/")
		holder[strings.TrimPrefix(l.Name, o.prefix)] = rep
	}
	for i, k := range keys {
		if h, ok := holder[k]; ok && live[h] {
			out[i] = h == o.r.id
			continue
		}
		out[i] = chosen(k, live) == o.r.id
	}
	return out, nil
}

// chosen is the replica of ids with the highest hash of (id, key).
func chosen(key string, ids map[string]bool) string {
	var best string
	var top uint64
	for id := range ids {
		h := fnv.New64a()
		_, _ = h.Write([]byte(id))
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(key))
		if v := mix(h.Sum64()); best == "" || v > top || (v == top && id < best) {
			best, top = id, v
		}
	}
	return best
}

// mix is the 64-bit finaliser of MurmurHash3: FNV alone barely moves the
// high bits when only the last byte of the key differs.
func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	return x ^ x>>33
}
