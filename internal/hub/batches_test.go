package hub

import (
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/baton-dev/baton/internal/protocol"
	"github.com/baton-dev/baton/internal/store/storetest"
)

func TestBatches(t *testing.T) {
	type part struct {
		key          string
		batch, total int
		data         map[string]int64
	}
	tests := map[string]struct {
		parts []part
		want  map[string]int64 // nil: incomplete after the last part
	}{
		"single":                 {parts: []part{{"e", 0, 1, map[string]int64{"a": 1}}}, want: map[string]int64{"a": 1}},
		"zero batches means one": {parts: []part{{"e", 0, 0, nil}}, want: map[string]int64{}},
		"two parts": {
			parts: []part{{"e", 0, 2, map[string]int64{"a": 1}}, {"e", 1, 2, map[string]int64{"b": 2}}},
			want:  map[string]int64{"a": 1, "b": 2},
		},
		"one-based numbering": {
			parts: []part{{"e", 2, 2, map[string]int64{"b": 2}}, {"e", 1, 2, map[string]int64{"a": 1}}},
			want:  map[string]int64{"a": 1, "b": 2},
		},
		"incomplete": {parts: []part{{"e", 0, 3, map[string]int64{"a": 1}}, {"e", 1, 3, nil}}},
		"new key starts over": {
			parts: []part{{"e1", 0, 2, map[string]int64{"a": 1}}, {"e2", 1, 2, map[string]int64{"b": 2}}},
		},
		"too many parts":           {parts: []part{{"e", 0, MaxBatchParts + 1, map[string]int64{"a": 1}}}},
		"part number out of range": {parts: []part{{"e", 0, 2, map[string]int64{"a": 1}}, {"e", 7, 2, map[string]int64{"b": 1}}}},
		"repeated part starts a new round": {
			parts: []part{
				{"e", 0, 2, map[string]int64{"a": 1}}, // part 1 of this round is lost
				{"e", 0, 2, map[string]int64{"a": 5}},
				{"e", 1, 2, map[string]int64{"b": 6}},
			},
			want: map[string]int64{"a": 5, "b": 6},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var b batches[int64]
			var got map[string]int64
			var done bool
			for _, p := range tc.parts {
				got, done = b.add(p.key, p.batch, p.total, p.data)
			}
			if tc.want == nil {
				if done {
					t.Fatalf("complete with %v; want incomplete", got)
				}
				return
			}
			if !done || !maps.Equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v, true", got, done, tc.want)
			}
		})
	}
}

// TestBatchesBounded: parts whose entries pass the byte bound (MaxBatchBytes) are dropped
// instead of held, and the next message is reassembled normally.
func TestBatchesBounded(t *testing.T) {
	defer func(old int) { batchBytesLimit = old }(batchBytesLimit)
	batchBytesLimit = 64 << 10
	var b batches[int64]
	big := map[string]int64{}
	for i := 0; entryBytes("x")*len(big) <= batchBytesLimit/2; i++ {
		big[string(rune('a'+i%26))+strings.Repeat("x", 10)+strconv.Itoa(i)] = 1
	}
	if _, done := b.add("e", 0, 3, big); done || b.overflow {
		t.Fatalf("first half: done=%v overflow=%v", done, b.overflow)
	}
	other := map[string]int64{}
	for k := range big {
		other["y"+k] = 1
	}
	if _, done := b.add("e", 1, 3, other); done || !b.overflow || b.data != nil {
		t.Fatalf("past the bound: done=%v overflow=%v held=%d; want dropped", done, b.overflow, len(b.data))
	}
	if got, done := b.add("e", 0, 1, map[string]int64{"a": 1}); !done || len(got) != 1 {
		t.Fatalf("after a drop: %v, %v", got, done)
	}
}

// TestBatchedHello: the resync waits for every part of a split Hello.
func TestBatchedHello(t *testing.T) {
	x := newHarness(t, storetest.NewSQLite(t), false)
	createBundle(t, x.st, consumer, "b1")
	createBundle(t, x.st, consumer, "b2")
	a := newFakeAgent(t, "e1")
	p := protocol.NewPipe(100)
	x.attach(a, p)
	a.held["b1"], a.held["b2"] = 1, 1
	inc := x.incarnation()
	a.send(x.ctx, protocol.Message{Type: protocol.TypeHello, Hello: &protocol.Hello{Epoch: "e1",
		Held: map[string]int64{"b1": 1}, Incarnations: map[string]string{"b1": inc}, Batch: 0, Batches: 2}})
	time.Sleep(100 * time.Millisecond)
	if x.agentState().Connected {
		t.Fatal("connected after the first of two Hello parts")
	}
	a.send(x.ctx, protocol.Message{Type: protocol.TypeHello, Hello: &protocol.Hello{Epoch: "e1",
		Held: map[string]int64{"b2": 1}, Incarnations: map[string]string{"b2": inc}, Batch: 1, Batches: 2}})
	req := next(t, a.requests, "status request after the full Hello")
	if len(req.BundleIDs) != 2 {
		t.Errorf("status request: got %v; want b1 and b2 (held at the current generation, no status)", req.BundleIDs)
	}
	none(t, a.specs, 300*time.Millisecond, "spec for a held bundle")
}
