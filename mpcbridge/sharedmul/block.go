package sharedmul

import (
	"fmt"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// Bytes returns the bytes of one Mul on lay, messages and frames included:
// up, the client's (Inputs + Weights) seeded ciphertexts; down, one
// message per output with c0 at its targets and c1 whole (package
// documentation, "Cost").
func (p Parameters) Bytes(lay polymat.Layout) (up, down int64) {
	up = int64(operands(lay)) * (wire.HeaderLen + int64(inputBytes(p.ring)))
	for o := 0; o < lay.Outputs(); o++ {
		down += wire.HeaderLen + int64(outputBytes(p.ring, lay, o))
	}
	return up, down
}

// ChooseBlock returns the layout of d with the fewest bytes each way
// together among the blocks of powers of two (D0·D1·D2 <= N) that
// CheckLayout admits, fewer products breaking ties. Both parties call it on
// the public shape: the choice is deterministic. The products' count is
// the same for most blocks (Rows·In·Out/N up to the edges), the bytes are
// not (package documentation, "Cost": time follows the bytes).
func (p Parameters) ChooseBlock(d polymat.Dims) (polymat.Layout, error) {
	if err := d.Valid(); err != nil {
		return polymat.Layout{}, fmt.Errorf("cannot ChooseBlock: %w", err)
	}
	n := p.ring.N()
	var best polymat.Layout
	bestBytes, found := int64(0), false
	for d0 := 1; d0 <= min(n, pow2Ceil(d.Rows)); d0 *= 2 {
		for d1 := 1; d0*d1 <= n && d1 <= pow2Ceil(d.In); d1 *= 2 {
			for d2 := 1; d0*d1*d2 <= n && d2 <= pow2Ceil(d.Out); d2 *= 2 {
				b := polymat.Block{D0: min(d0, d.Rows), D1: min(d1, d.In), D2: min(d2, d.Out)}
				lay, err := polymat.NewLayout(p.ring, d, b)
				if err != nil || p.CheckLayout(lay) != nil {
					continue
				}
				up, down := p.Bytes(lay)
				if !found || up+down < bestBytes || (up+down == bestBytes && lay.Products() < best.Products()) {
					best, bestBytes, found = lay, up+down, true
				}
			}
		}
	}
	if !found {
		return polymat.Layout{}, fmt.Errorf("cannot ChooseBlock: no block of %v fits the ring's masks (In = %d: lower the bounds or the guard bits)", d, d.In)
	}
	return best, nil
}

// pow2Ceil returns the least power of two >= x (x >= 1).
func pow2Ceil(x int) int {
	p := 1
	for p < x {
		p *= 2
	}
	return p
}
