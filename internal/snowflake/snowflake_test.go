package snowflake

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestNext(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	ms := t0.Sub(Epoch).Milliseconds()
	tests := map[string]struct {
		steps []time.Duration // clock offset from t0 before each Next
		want  [][2]int64      // (ms since Epoch, seq) of each id
	}{
		"first id": {
			steps: []time.Duration{0},
			want:  [][2]int64{{ms, 0}},
		},
		"same millisecond increments the sequence": {
			steps: []time.Duration{0, 0, 0},
			want:  [][2]int64{{ms, 0}, {ms, 1}, {ms, 2}},
		},
		"new millisecond resets the sequence": {
			steps: []time.Duration{0, 0, time.Millisecond},
			want:  [][2]int64{{ms, 0}, {ms, 1}, {ms + 1, 0}},
		},
		"clock going backwards stays on the logical clock": {
			steps: []time.Duration{time.Second, 0, -time.Hour},
			want:  [][2]int64{{ms + 1000, 0}, {ms + 1000, 1}, {ms + 1000, 2}},
		},
		"clock recovering past the logical clock resumes": {
			steps: []time.Duration{time.Second, 0, 2 * time.Second},
			want:  [][2]int64{{ms + 1000, 0}, {ms + 1000, 1}, {ms + 2000, 0}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(t0)
			g, err := New(7, WithClock(clk))
			if err != nil {
				t.Fatal(err)
			}
			for i, d := range tc.steps {
				clk.SetTime(t0.Add(d))
				id := g.Next()
				gotT, node, seq := Parts(id)
				gotMs := gotT.Sub(Epoch).Milliseconds()
				if gotMs != tc.want[i][0] || seq != tc.want[i][1] || node != 7 {
					t.Errorf("id %d: got (ms %d, node %d, seq %d); want (ms %d, node 7, seq %d)",
						i, gotMs, node, seq, tc.want[i][0], tc.want[i][1])
				}
			}
		})
	}
}

func TestSequenceOverflowBorrowsNextMillisecond(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	g, _ := New(1, WithClock(clocktesting.NewFakePassiveClock(t0)))
	var last int64
	for i := 0; i <= maxSequence+1; i++ {
		last = g.Next()
	}
	gotT, _, seq := Parts(last)
	if want := t0.Add(time.Millisecond); !gotT.Equal(want) || seq != 0 {
		t.Errorf("id after %d in one ms: got (%v, seq %d); want (%v, seq 0)", maxSequence+1, gotT, seq, want)
	}
}

func TestNewRejectsBadNode(t *testing.T) {
	for _, n := range []int64{-1, MaxNode + 1} {
		if _, err := New(n); err == nil {
			t.Errorf("New(%d): got nil error; want error", n)
		}
	}
}

func TestMatchesMaestroLayout(t *testing.T) {
	// A SequenceID from a Maestro status (REFERENCE.md).
	tm, node, seq := Parts(2000808179721572352)
	if want := time.Date(2025, 12, 16, 6, 0, 17, 921e6, time.UTC); !tm.Equal(want) || node != 1 || seq != 0 {
		t.Errorf("Parts: got (%v, %d, %d); want (%v, 1, 0)", tm, node, seq, want)
	}
}

// TestPropertyStrictlyIncreasing drives the clock randomly back and forth and
// checks every id is greater than the one before and keeps the node id.
func TestPropertyStrictlyIncreasing(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for run := 0; run < 50; run++ {
		clk := clocktesting.NewFakePassiveClock(t0)
		node := r.Int64N(MaxNode + 1)
		g, _ := New(node, WithClock(clk))
		var prev int64 = -1
		for i := 0; i < 5000; i++ {
			if r.IntN(4) == 0 {
				clk.SetTime(clk.Now().Add(time.Duration(r.Int64N(20)-10) * time.Millisecond))
			}
			id := g.Next()
			if id <= prev {
				t.Fatalf("run %d step %d: id %d not greater than previous %d", run, i, id, prev)
			}
			if _, n, _ := Parts(id); n != node {
				t.Fatalf("run %d step %d: node %d; want %d", run, i, n, node)
			}
			prev = id
		}
	}
}

func TestConcurrentUnique(t *testing.T) {
	g, _ := New(3)
	const workers, each = 8, 2000
	ids := make([][]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				ids[w] = append(ids[w], g.Next())
			}
		}()
	}
	wg.Wait()
	seen := make(map[int64]bool, workers*each)
	for _, list := range ids {
		for i, id := range list {
			if seen[id] {
				t.Fatalf("duplicate id %d", id)
			}
			if i > 0 && id <= list[i-1] {
				t.Fatalf("ids of one goroutine not increasing: %d after %d", id, list[i-1])
			}
			seen[id] = true
		}
	}
}

func BenchmarkNext(b *testing.B) {
	g, _ := New(1)
	for b.Loop() {
		g.Next()
	}
}
