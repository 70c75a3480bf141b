package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/baton-dev/baton/internal/limits"
)

// ErrTooLarge is returned (wrapped) by Send for a message its transport
// cannot carry. Sending it again cannot succeed: the caller handles the one
// message (the agent reports a cut status, the hub marks the bundle) and
// keeps sending everything else.
var ErrTooLarge = errors.New("message too large for the transport")

// TooLarge is the error for a message of n bytes over a transport that
// carries at most limit bytes.
func TooLarge(what string, n, limit int) error {
	return fmt.Errorf("%s: %d bytes; the transport carries at most %s: %w", what, n, limits.Human(limit), ErrTooLarge)
}

// EntryOverhead bounds the JSON around one entry of a split message in
// the most verbose encoding a transport uses: CloudEvents' lists spell out
// "resourceID", "resourceVersion", "statusHash" and "batonIncarnation"
// for every entry.
const EntryOverhead = 64

// MessageOverhead bounds a split message's encoding without its entries
// (the CloudEvent attributes, the consumer, epoch and batch numbers).
const MessageOverhead = 4 << 10

// EntrySize is the budget one entry of a split message takes: its strings
// as JSON plus EntryOverhead.
func EntrySize(s ...string) int {
	n := EntryOverhead
	for _, v := range s {
		n += quotedLen(v)
	}
	return n
}

// Split cuts keys, in sorted order, into consecutive parts whose entry
// sizes (size(key)) add up to at most limits.BatchBytes - MessageOverhead.
// This is the one splitter of Hello, Heartbeat and StatusRequest. There is
// always at least one (possibly empty) part; a key too large for a part of
// its own gets one anyway.
func Split(keys []string, size func(key string) int) [][]string {
	keys = slices.Sorted(slices.Values(keys))
	budget := limits.BatchBytes - MessageOverhead
	out := [][]string{nil}
	used := 0
	for _, k := range keys {
		n := size(k)
		if last := out[len(out)-1]; used+n > budget && len(last) > 0 {
			out = append(out, nil)
			used = 0
		}
		out[len(out)-1] = append(out[len(out)-1], k)
		used += n
	}
	return out
}

func quotedLen(s string) int {
	b, err := json.Marshal(s)
	if err != nil {
		return 6*len(s) + 2 // cannot happen for a string; assume every byte escaped
	}
	return len(b)
}

// Hellos splits h into the messages of one Hello for consumer: parts of
// h.Held (protocol.Split, an entry's size counting its incarnation), each
// with the incarnations of its ids, numbered Batch 1..Batches. There is
// always at least one (possibly empty) message.
func Hellos(consumer string, h Hello) []Message {
	parts := Split(slices.Collect(maps.Keys(h.Held)), func(id string) int {
		gen := strconv.FormatInt(h.Held[id], 10)
		if inc, ok := h.Incarnations[id]; ok {
			return EntrySize(id, id, gen, inc) // the id keys both maps
		}
		return EntrySize(id, gen)
	})
	out := make([]Message, len(parts))
	for i, ids := range parts {
		part := h
		part.Held, part.Incarnations = make(map[string]int64, len(ids)), nil
		part.Batch, part.Batches = i+1, len(parts)
		for _, id := range ids {
			part.Held[id] = h.Held[id]
			if inc, ok := h.Incarnations[id]; ok {
				if part.Incarnations == nil {
					part.Incarnations = make(map[string]string, len(ids))
				}
				part.Incarnations[id] = inc
			}
		}
		out[i] = Message{Type: TypeHello, Consumer: consumer, Hello: &part}
	}
	return out
}
