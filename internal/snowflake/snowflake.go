// Package snowflake mints 63-bit snowflake ids: a 41-bit millisecond
// timestamp since Epoch, a 10-bit node id and a 12-bit sequence. The layout
// and default epoch are those of Twitter's snowflake, which Maestro's
// sequence ids use, so ids minted here order correctly against them.
//
// A Generator never returns an id lower than or equal to one it returned
// before, even when the wall clock goes backwards or more than 4096 ids are
// minted in one millisecond: it then borrows from the next millisecond of
// its own logical clock instead of waiting.
package snowflake

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Bit layout.
const (
	NodeBits     = 10
	SequenceBits = 12
	MaxNode      = 1<<NodeBits - 1
	maxSequence  = 1<<SequenceBits - 1
	timeShift    = NodeBits + SequenceBits
)

// Epoch is the default custom epoch (Twitter's, 2010-11-04T01:42:54.657Z).
var Epoch = time.UnixMilli(1288834974657)

// Generator mints strictly increasing ids. It is safe for concurrent use.
type Generator struct {
	clock clock.PassiveClock
	epoch time.Time
	node  int64

	mu     sync.Mutex
	lastMs int64 // logical millisecond of the last id
	seq    int64 // sequence of the last id within lastMs
}

// Option configures a Generator.
type Option func(*Generator)

// WithClock sets the clock (default: the real clock).
func WithClock(c clock.PassiveClock) Option { return func(g *Generator) { g.clock = c } }

// WithEpoch sets the custom epoch (default Epoch).
func WithEpoch(t time.Time) Option { return func(g *Generator) { g.epoch = t } }

// New returns a generator for node (0..MaxNode).
func New(node int64, opts ...Option) (*Generator, error) {
	if node < 0 || node > MaxNode {
		return nil, fmt.Errorf("snowflake: node %d: out of range 0..%d", node, MaxNode)
	}
	g := &Generator{clock: clock.RealClock{}, epoch: Epoch, node: node, lastMs: -1}
	for _, o := range opts {
		o(g)
	}
	return g, nil
}

// Next returns the next id.
func (g *Generator) Next() int64 {
	now := g.clock.Now().Sub(g.epoch).Milliseconds()
	if now < 0 {
		now = 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case now > g.lastMs:
		g.lastMs, g.seq = now, 0
	case g.seq < maxSequence:
		// Same millisecond, or the clock went backwards: stay on the
		// logical clock and take the next sequence number.
		g.seq++
	default:
		g.lastMs, g.seq = g.lastMs+1, 0
	}
	return g.lastMs<<timeShift | g.node<<SequenceBits | g.seq
}

// NextString returns the next id in decimal, as sequence ids travel on the wire.
func (g *Generator) NextString() string { return strconv.FormatInt(g.Next(), 10) }

// Parts splits an id into its timestamp (with the default Epoch), node and sequence.
func Parts(id int64) (t time.Time, node, seq int64) {
	return Epoch.Add(time.Duration(id>>timeShift) * time.Millisecond), (id >> SequenceBits) & MaxNode, id & maxSequence
}
