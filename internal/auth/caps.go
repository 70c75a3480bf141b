package auth

import "sync"

// Cap bounds how many of something (streams, watches) each caller holds at
// once, keyed by the caller's subject. Safe for concurrent use.
type Cap struct {
	max  int
	mu   sync.Mutex
	open map[string]int
}

// NewCap returns a cap of max per key.
func NewCap(max int) *Cap { return &Cap{max: max, open: map[string]int{}} }

// Max is the cap.
func (c *Cap) Max() int { return c.max }

// Acquire takes one for key, or reports false when key holds Max already.
func (c *Cap) Acquire(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[key] >= c.max {
		return false
	}
	c.open[key]++
	return true
}

// Release gives back one Acquire of key.
func (c *Cap) Release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[key]--; c.open[key] <= 0 {
		delete(c.open, key)
	}
}

// Held is how many all keys hold together.
func (c *Cap) Held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.open {
		n += v
	}
	return n
}
