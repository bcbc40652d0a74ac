package sharedmul

import (
	"fmt"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/wire"
)

// Bytes returns the bytes of one Mul on lay, messages and frames included:
// up, the client's Operands() seeded ciphertexts; down, one message per
// output with c0 at its targets and c1 whole, rounded (package
// documentation, "Cost").
func (p Parameters) Bytes(lay Layout) (up, down int64) {
	up = int64(lay.Operands()) * (wire.HeaderLen + int64(inputBytes(p.ring)))
	// The outputs' targets take at most four values: full or edge rows
	// times full or edge columns.
	nI, nJ := lay.RowBlocks(), lay.ColBlocks()
	for _, ri := range [][2]int{{nI - 1, lay.D0}, {1, lay.BlockRows(nI - 1)}} {
		for _, cj := range [][2]int{{nJ - 1, lay.D2}, {1, lay.BlockCols(nJ - 1)}} {
			size := headerSize + ((ri[1]*cj[1]+p.ring.N())*int(p.rnd.width)+7)/8
			down += int64(ri[0]*cj[0]) * (wire.HeaderLen + int64(size))
		}
	}
	return up, down
}

// ChooseBlock returns the layout of count products of shape d (packed as
// Layout says) with the fewest bytes each way together among the blocks of
// powers of two (D0·D1·D2 <= N) that CheckLayout admits, fewer products
// breaking ties. Both parties call it on the public shape: the choice is
// deterministic. Time follows the bytes (package documentation, "Cost").
func (p Parameters) ChooseBlock(d polymat.Dims, count int) (Layout, error) {
	if err := d.Valid(); err != nil {
		return Layout{}, fmt.Errorf("cannot ChooseBlock: %w", err)
	}
	n := p.ring.N()
	in, out := count*d.In, count*d.Out
	var best Layout
	bestBytes, found := int64(0), false
	for d0 := 1; d0 <= min(n, pow2Ceil(d.Rows)); d0 *= 2 {
		for d1 := 1; d0*d1 <= n && d1 <= pow2Ceil(in); d1 *= 2 {
			for d2 := 1; d0*d1*d2 <= n && d2 <= pow2Ceil(out); d2 *= 2 {
				b := polymat.Block{D0: min(d0, d.Rows), D1: min(d1, in), D2: min(d2, out)}
				lay, err := NewLayout(p.ring, d, count, b)
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
		return Layout{}, fmt.Errorf("cannot ChooseBlock: no block of %d x %v fits the ring's masks (In = %d: lower the bounds or the guard bits)", count, d, d.In)
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
