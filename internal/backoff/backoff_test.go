package backoff

import (
	"testing"
	"time"
)

func TestDelayGrowsToMax(t *testing.T) {
	p := Policy{Initial: 100 * time.Millisecond, Max: time.Second, Factor: 2}
	want := []time.Duration{0, 100, 200, 400, 800, 1000, 1000}
	for attempt, w := range want {
		if got := p.Delay(attempt); got != w*time.Millisecond {
			t.Errorf("Delay(%d) = %v; want %v", attempt, got, w*time.Millisecond)
		}
	}
	if got := p.Delay(1 << 20); got != time.Second {
		t.Errorf("Delay(huge) = %v; want the max", got)
	}
	flat := Policy{Initial: time.Second, Factor: 2} // no Max: no growth
	if got := flat.Delay(5); got != time.Second {
		t.Errorf("flat Delay(5) = %v; want 1s", got)
	}
}

func TestJitterWithinBound(t *testing.T) {
	if got := Reconnect.Bound(); got != time.Second {
		t.Fatalf("Reconnect.Bound() = %v; want 1s", got)
	}
	b := Reconnect.Start()
	var prev time.Duration
	varied := false
	for i := range 200 {
		d := b.Next()
		if d < Reconnect.Initial || d > Reconnect.Bound() {
			t.Fatalf("wait %d = %v; want within [%v, %v]", i, d, Reconnect.Initial, Reconnect.Bound())
		}
		if i > 5 && d != prev {
			varied = true
		}
		prev = d
	}
	if !varied {
		t.Error("capped waits never vary: no jitter")
	}
	b.Reset()
	if d := b.Next(); d > Reconnect.Initial+Reconnect.Initial/4 {
		t.Errorf("first wait after Reset = %v; want about %v", d, Reconnect.Initial)
	}
}
