package polymat

import (
	"context"

	"github.com/tuneinsight/lattigo/v5/ring"
)

// EncodeWeightPlain writes weight block (a, j) of w (In x Out residues) into
// pt in the coefficient domain and standard form, every limb: W[k, c] at
// WeightExponent(k, c), zeros elsewhere. It is the encoding the weights
// get in the products, without the Montgomery form of the pre-encoded
// weights, for a right-hand operand that travels encrypted
// (mpcbridge/sharedmul).
func (l Layout) EncodeWeightPlain(w ResidueMatrix, a, j int, pt ring.Poly) {
	inner, cols := l.BlockInner(a), l.BlockCols(j)
	for li, src := range w.Limbs {
		dst := pt.Coeffs[li]
		clear(dst)
		for k := 0; k < inner; k++ {
			row := src[(a*l.D1+k)*l.Out+j*l.D2:]
			for c := 0; c < cols; c++ {
				dst[l.WeightExponent(k, c)] = row[c]
			}
		}
	}
}

// WeightIndex returns the index of weight block (a, j): j·InnerBlocks + a,
// the order of the pre-encoded blocks.
func (l Layout) WeightIndex(a, j int) int { return j*l.nA + a }

// Parallel runs f(worker, k) for k in [0, count) on workers goroutines (at
// least one) and returns the first error; it stops handing out work once
// ctx ends or f fails. It is the work loop of the evaluator, for the
// protocols built on this package.
func Parallel(ctx context.Context, workers, count int, f func(worker, k int) error) error {
	return parallel(ctx, workers, count, f)
}
