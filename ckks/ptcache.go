package ckks

import (
	"sync"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
)

// ptCache shares the plaintext constants of one attention call (the token
// shifts' masks, the block selectors) across heads, ciphertexts and
// workers: each is encoded once per level and scale by the first worker
// that needs it, instead of once per head and ciphertext. It is dropped
// with the call.
type ptCache struct {
	mu sync.Mutex
	m  map[ptKey]*ptEntry
}

// ptKey names a constant: its kind, its index within the kind (a shift, a
// block), the level and the scale it is encoded at, and the value it
// carries (a scale factor folded into the constant).
type ptKey struct {
	kind, index, level int
	value              float64
}

type ptEntry struct {
	once sync.Once
	pts  []*rlwe.Plaintext
	err  error
}

const (
	kindShiftMasks = iota // cyc's two masks for shift index, times value
	kindSelector          // blockSelector(index, value)
)

func newPtCache() *ptCache { return &ptCache{m: map[ptKey]*ptEntry{}} }

// get returns the plaintexts of key, calling encode (with the calling
// worker) the first time. A nil cache encodes every time.
func (c *ptCache) get(key ptKey, encode func() ([]*rlwe.Plaintext, error)) ([]*rlwe.Plaintext, error) {
	if c == nil {
		return encode()
	}
	c.mu.Lock()
	e, ok := c.m[key]
	if !ok {
		e = &ptEntry{}
		c.m[key] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.pts, e.err = encode() })
	return e.pts, e.err
}
