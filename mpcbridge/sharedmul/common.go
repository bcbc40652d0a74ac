package sharedmul

import (
	"fmt"
	"math/bits"

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

// checkOperands checks the shapes of the two operands against lay: x
// is Rows x Count·In (the products' left operands side by side), y the
// Count right operands (In x Out each) one after the other.
func checkOperands(p Parameters, lay Layout, x, y share.Vector) error {
	if err := p.CheckLayout(lay); err != nil {
		return err
	}
	if len(x) != lay.Rows*lay.In {
		return fmt.Errorf("left operand has %d entries, want %dx%d", len(x), lay.Rows, lay.In)
	}
	if len(y) != lay.Count*lay.Per.In*lay.Per.Out {
		return fmt.Errorf("right operand has %d entries, want %d x %dx%d", len(y), lay.Count, lay.Per.In, lay.Per.Out)
	}
	return nil
}

// operandResidues returns the residues of 2^G·x (Rows x Count·In) and
// 2^G·y ((Count·In) x Out, the right operands one under the other).
func operandResidues(p Parameters, lay Layout, x, y share.Vector) (xr, yr polymat.ResidueMatrix, err error) {
	if err := checkOperands(p, lay, x, y); err != nil {
		return xr, yr, err
	}
	g := p.lit.GuardBits
	if xr, err = residues(p.ring, lay.Rows, lay.In, x, g); err != nil {
		return xr, yr, err
	}
	yr, err = residues(p.ring, lay.Count*lay.Per.In, lay.Per.Out, y, g)
	return xr, yr, err
}
