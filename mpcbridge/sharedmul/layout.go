package sharedmul

import (
	"fmt"

	"github.com/tuneinsight/lattigo/v5/ring"

	"github.com/cipherprune/cipherprune/ckks/polymat"
)

// Layout is the public layout of one Mul: Count independent products of
// the same shape Per (Rows x In by In x Out, attention's heads), packed as
// one product of Rows x Count·In by Count·In x Count·Out whose right
// operand is block-diagonal,
//
//	[X_1 | X_2 | ... | X_Count] · diag(Y_1, ..., Y_Count) = [X_1·Y_1 | ... | X_Count·Y_Count],
//
// cut into the blocks of the embedded polymat.Layout (the packed
// product's). A weight block of the packed right operand that meets no
// diagonal block is zero: it is neither sent nor multiplied, so that
// column block j multiplies only the inner blocks [lo, hi) of
// InnerRange(j), those that hold the rows of its columns' products. When
// the blocks are no larger than one product (D1 <= In, D2 <= Out and
// dividing them) that is Count separate products in one round trip; when
// they are larger (few rows), several products share every ciphertext.
// Count = 1 is a single product.
type Layout struct {
	polymat.Layout
	// Count is the number of products, Per the shape of each.
	Count int
	Per   polymat.Dims
	// lo[j], hi[j]: the inner blocks of column block j; first[j] the
	// index among the weights of its first block (first[ColBlocks] =
	// Weights()).
	lo, hi, first []int
}

// NewLayout returns the layout of count products of shape d packed with
// block b (b within the packed shape, D0·D1·D2 <= N).
func NewLayout(params polymat.Parameters, d polymat.Dims, count int, b polymat.Block) (Layout, error) {
	if err := d.Valid(); err != nil {
		return Layout{}, fmt.Errorf("cannot NewLayout: %w", err)
	}
	if count < 1 || count > 1<<12 {
		return Layout{}, fmt.Errorf("cannot NewLayout: %d products, not in [1, 4096]", count)
	}
	packed, err := polymat.NewLayout(params, polymat.Dims{Rows: d.Rows, In: count * d.In, Out: count * d.Out}, b)
	if err != nil {
		return Layout{}, fmt.Errorf("cannot NewLayout: %w", err)
	}
	lay := Layout{Layout: packed, Count: count, Per: d}
	nJ := packed.ColBlocks()
	lay.lo, lay.hi, lay.first = make([]int, nJ), make([]int, nJ), make([]int, nJ+1)
	for j := 0; j < nJ; j++ {
		// The products of the block's first and last columns, and the
		// inner blocks of their rows.
		h0, h1 := j*b.D2/d.Out, (j*b.D2+packed.BlockCols(j)-1)/d.Out
		lay.lo[j], lay.hi[j] = h0*d.In/b.D1, (h1*d.In+d.In-1)/b.D1+1
		lay.first[j+1] = lay.first[j] + lay.hi[j] - lay.lo[j]
	}
	return lay, nil
}

// InnerRange returns the inner blocks [lo, hi) that column block j
// multiplies: the others meet only zeros of the block-diagonal operand.
func (l Layout) InnerRange(j int) (lo, hi int) { return l.lo[j], l.hi[j] }

// Weights returns the number of blocks of the right operand that travel:
// Σ_j over the column blocks of the length of InnerRange(j).
func (l Layout) Weights() int { return l.first[len(l.first)-1] }

// WeightIndex returns the index among the Weights() blocks of block (a,
// j), a within InnerRange(j): column block by column block, then by a.
func (l Layout) WeightIndex(a, j int) int { return l.first[j] + a - l.lo[j] }

// weightBlock returns the block (a, j) of weight index w.
func (l Layout) weightBlock(w int) (a, j int) {
	for j = 0; l.first[j+1] <= w; j++ {
	}
	return l.lo[j] + w - l.first[j], j
}

// Operands returns the number of operand blocks a Mul sends: Inputs() of
// the left operand, then Weights() of the right.
func (l Layout) Operands() int { return l.Inputs() + l.Weights() }

// Products returns the number of ciphertext products: RowBlocks times
// Weights().
func (l Layout) Products() int { return l.RowBlocks() * l.Weights() }

// MaxInner returns the most inner blocks an output sums over.
func (l Layout) MaxInner() int {
	m := 0
	for j := range l.lo {
		m = max(m, l.hi[j]-l.lo[j])
	}
	return m
}

// String returns the shape, the count and the block.
func (l Layout) String() string {
	return fmt.Sprintf("%d x %v, block %v", l.Count, l.Per, l.Block)
}

// encodeWeight writes weight block (a, j) of the block-diagonal right
// operand into pt, coefficient domain: y holds the Count blocks Y_h (In x
// Out residues each) one under the other ((Count·In) x Out); the packed
// entry (h·In + k, h'·Out + c) is Y_h[k, c] if h = h', zero otherwise, at
// polymat's WeightExponent.
func (l Layout) encodeWeight(y polymat.ResidueMatrix, a, j int, pt ring.Poly) {
	in, out := l.Per.In, l.Per.Out
	inner, cols := l.BlockInner(a), l.BlockCols(j)
	for li, src := range y.Limbs {
		dst := pt.Coeffs[li]
		clear(dst)
		for c := 0; c < cols; c++ {
			gc := j*l.D2 + c
			h, cc := gc/out, gc%out
			// The rows of product h within this inner block.
			k0, k1 := max(0, h*in-a*l.D1), min(inner, (h+1)*in-a*l.D1)
			for k := k0; k < k1; k++ {
				dst[l.WeightExponent(k, c)] = src[(a*l.D1+k)*out+cc]
			}
		}
	}
}

// encodeOperand writes operand block k (left blocks first, then right
// blocks in WeightIndex order) of x or y into pt, coefficient domain.
func (l Layout) encodeOperand(x, y polymat.ResidueMatrix, k int, pt ring.Poly) {
	if k < l.Inputs() {
		l.EncodeInput(x, k/l.InnerBlocks(), k%l.InnerBlocks(), pt)
		return
	}
	a, j := l.weightBlock(k - l.Inputs())
	l.encodeWeight(y, a, j, pt)
}
