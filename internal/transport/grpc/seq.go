package grpc

import (
	"strconv"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// seqGen is the fallback snowflake generator (Twitter layout and epoch: 41
// bits of milliseconds, 10 of node, 12 of sequence). It never repeats or
// goes back, borrowing from the next millisecond when needed.
type seqGen struct {
	clock clock.PassiveClock
	node  int64
	mu    sync.Mutex
	last  int64
}

var snowflakeEpoch = time.UnixMilli(1288834974657)

func newSeqGen(c clock.PassiveClock, node int64) *seqGen {
	return &seqGen{clock: c, node: node & 1023}
}

func (g *seqGen) next() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	ms := g.clock.Since(snowflakeEpoch).Milliseconds()
	id := ms<<22 | g.node<<12
	if id <= g.last {
		lastMs, step := g.last>>22, g.last&4095
		if step < 4095 {
			id = lastMs<<22 | g.node<<12 | (step + 1)
		} else {
			id = (lastMs+1)<<22 | g.node<<12
		}
	}
	g.last = id
	return strconv.FormatInt(id, 10)
}
