package sharedmul

import (
	"fmt"
	"math/bits"

	"github.com/tuneinsight/lattigo/v5/ring"

	"github.com/cipherprune/cipherprune/ckks/polymat"
	"github.com/cipherprune/cipherprune/mpcbridge/matmul"
	"github.com/cipherprune/cipherprune/mpcbridge/share"
)

// residues returns the rows x cols matrix 2^g·v modulo every prime of the
// ring (v row-major integer shares).
func residues(rp polymat.Parameters, rows, cols int, v share.Vector, g int) (polymat.ResidueMatrix, error) {
	if len(v) != rows*cols {
		return polymat.ResidueMatrix{}, fmt.Errorf("%d entries for %dx%d", len(v), rows, cols)
	}
	m := polymat.NewResidueMatrix(rp, rows, cols)
	for l, q := range rp.Moduli() {
		pow := uint64(1)
		for k := 0; k < g; k++ {
			pow = pow * 2 % q
		}
		dst := m.Limbs[l]
		for k, x := range v {
			hi, lo := bits.Mul64(matmul.Residue(x, q), pow)
			dst[k] = bits.Rem64(hi, lo, q)
		}
	}
	return m, nil
}

// checkOperands checks the shapes of the two operands against lay.
func checkOperands(p Parameters, lay polymat.Layout, x, y share.Vector) error {
	if err := p.CheckLayout(lay); err != nil {
		return err
	}
	if len(x) != lay.Rows*lay.In {
		return fmt.Errorf("left operand has %d entries, want %dx%d", len(x), lay.Rows, lay.In)
	}
	if len(y) != lay.In*lay.Out {
		return fmt.Errorf("right operand has %d entries, want %dx%d", len(y), lay.In, lay.Out)
	}
	return nil
}

// operands returns the number of operand blocks: Inputs() of the left,
// then Weights() of the right.
func operands(lay polymat.Layout) int { return lay.Inputs() + lay.Weights() }

// encodeOperand writes operand block k (left blocks first, then right
// blocks in WeightIndex order) of x or y into pt, coefficient domain.
func encodeOperand(lay polymat.Layout, x, y polymat.ResidueMatrix, k int, pt ring.Poly) {
	if k < lay.Inputs() {
		lay.EncodeInput(x, k/lay.InnerBlocks(), k%lay.InnerBlocks(), pt)
		return
	}
	k -= lay.Inputs()
	lay.EncodeWeightPlain(y, k%lay.InnerBlocks(), k/lay.InnerBlocks(), pt)
}
