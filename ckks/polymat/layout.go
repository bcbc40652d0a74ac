package polymat

import "fmt"

// MaxDim bounds every dimension of a product, so that indices and sizes
// stay far from overflow and a peer's header cannot ask for absurd work.
const MaxDim = 1 << 16

// Dims is the public shape of a product Y = X·W: X is Rows x In (the
// client's), W is In x Out (the server's), Y is Rows x Out.
type Dims struct {
	Rows, In, Out int
}

func (d Dims) String() string { return fmt.Sprintf("%dx%d·%dx%d", d.Rows, d.In, d.In, d.Out) }

// Valid checks that every dimension is in [1, MaxDim].
func (d Dims) Valid() error {
	if d.Rows < 1 || d.In < 1 || d.Out < 1 || d.Rows > MaxDim || d.In > MaxDim || d.Out > MaxDim {
		return fmt.Errorf("dimensions %v not in [1, %d]", d, MaxDim)
	}
	return nil
}

// Block is the shape of one polynomial product: D0 rows of X, D1 inner
// (columns of X, rows of W) and D2 columns of W, with D0·D1·D2 <= N.
type Block struct {
	D0, D1, D2 int
}

func (b Block) String() string { return fmt.Sprintf("(%d,%d,%d)", b.D0, b.D1, b.D2) }

// Layout places a product of shape Dims on polynomials of degree N with a
// Block: X is cut into RowBlocks x InnerBlocks blocks of D0 x D1 (one input
// ciphertext each), W into InnerBlocks x ColBlocks blocks of D1 x D2 (one
// plaintext each), Y into RowBlocks x ColBlocks blocks of D0 x D2 (one
// output ciphertext each). Edge blocks are zero-padded.
//
// With the exponents below, the product of input block (i, a) and weight
// block (a, j) holds Σ_k X[r,k]·W[k,c] over the block's inner indices at
// the target exponent of (r, c); summing over a gives Y's block (i, j):
//
//	X[r, k] -> x^(r·D1·D2 + D1-1-k)     r < D0, k < D1
//	W[k, c] -> x^(c·D1 + k)             k < D1, c < D2
//	Y[r, c] at x^(r·D1·D2 + c·D1 + D1-1)
//
// A product term X[r,k]·W[k',c] lands at r·D1·D2 + c·D1 + D1-1 + (k'-k);
// since |k'-k| < D1, it reaches a target only when k' = k, and then only
// the target of (r, c). Exponents of the product reach at most
// D0·D1·D2 + D1 - 2; the terms at N or above wrap (negated) to exponents
// below D1-1, the first target. Every other coefficient holds sums of
// cross terms, which depend on W: the bridge never reveals them.
type Layout struct {
	Dims
	Block
	n          int
	nI, nA, nJ int
}

// NewLayout checks that b fits the ring of params and returns the layout
// of d with b.
func NewLayout(params Parameters, d Dims, b Block) (Layout, error) {
	if err := d.Valid(); err != nil {
		return Layout{}, fmt.Errorf("cannot NewLayout: %w", err)
	}
	if b.D0 < 1 || b.D1 < 1 || b.D2 < 1 || b.D0 > d.Rows || b.D1 > d.In || b.D2 > d.Out {
		return Layout{}, fmt.Errorf("cannot NewLayout: block %v not within [1, %d]x[1, %d]x[1, %d]", b, d.Rows, d.In, d.Out)
	}
	n := params.N()
	if b.D0*b.D1*b.D2 > n {
		return Layout{}, fmt.Errorf("cannot NewLayout: block %v has %d > N = %d entries", b, b.D0*b.D1*b.D2, n)
	}
	return Layout{
		Dims: d, Block: b, n: n,
		nI: ceilDiv(d.Rows, b.D0), nA: ceilDiv(d.In, b.D1), nJ: ceilDiv(d.Out, b.D2),
	}, nil
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// N returns the ring degree the layout was made for.
func (l Layout) N() int { return l.n }

// RowBlocks returns the number of row blocks of X and Y.
func (l Layout) RowBlocks() int { return l.nI }

// InnerBlocks returns the number of column blocks of X (row blocks of W).
func (l Layout) InnerBlocks() int { return l.nA }

// ColBlocks returns the number of column blocks of W and Y.
func (l Layout) ColBlocks() int { return l.nJ }

// Inputs returns the number of input ciphertexts, RowBlocks·InnerBlocks.
func (l Layout) Inputs() int { return l.nI * l.nA }

// InputIndex returns the index of input block (i, a): i·InnerBlocks + a.
func (l Layout) InputIndex(i, a int) int { return i*l.nA + a }

// Outputs returns the number of output ciphertexts, RowBlocks·ColBlocks.
func (l Layout) Outputs() int { return l.nI * l.nJ }

// OutputIndex returns the index of output block (i, j): i·ColBlocks + j.
func (l Layout) OutputIndex(i, j int) int { return i*l.nJ + j }

// Weights returns the number of weight plaintexts, InnerBlocks·ColBlocks.
func (l Layout) Weights() int { return l.nA * l.nJ }

// Products returns the number of ciphertext-plaintext products.
func (l Layout) Products() int { return l.nI * l.nA * l.nJ }

// BlockRows returns the rows of X in row block i (D0 but at the edge).
func (l Layout) BlockRows(i int) int { return min(l.D0, l.Rows-i*l.D0) }

// BlockInner returns the inner indices in inner block a.
func (l Layout) BlockInner(a int) int { return min(l.D1, l.In-a*l.D1) }

// BlockCols returns the columns of W in column block j.
func (l Layout) BlockCols(j int) int { return min(l.D2, l.Out-j*l.D2) }

// InputExponent returns the exponent of X[r, k] within its block.
func (l Layout) InputExponent(r, k int) int { return r*l.D1*l.D2 + l.D1 - 1 - k }

// WeightExponent returns the exponent of W[k, c] within its block.
func (l Layout) WeightExponent(k, c int) int { return c*l.D1 + k }

// TargetExponent returns the exponent of Y[r, c] within its block.
func (l Layout) TargetExponent(r, c int) int { return r*l.D1*l.D2 + c*l.D1 + l.D1 - 1 }

// Targets returns the number of coefficients of output o that hold
// entries of Y (the edge blocks hold fewer).
func (l Layout) Targets(o int) int {
	i, j := o/l.nJ, o%l.nJ
	return l.BlockRows(i) * l.BlockCols(j)
}

// AppendTargets appends the target exponents of output o, row by row
// within the block (the order of every message that carries them).
func (l Layout) AppendTargets(dst []int, o int) []int {
	i, j := o/l.nJ, o%l.nJ
	rows, cols := l.BlockRows(i), l.BlockCols(j)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			dst = append(dst, l.TargetExponent(r, c))
		}
	}
	return dst
}

// AppendTargetEntries appends, for output o, the index in Y (row-major,
// Rows x Out) of every target, in the order of AppendTargets.
func (l Layout) AppendTargetEntries(dst []int, o int) []int {
	i, j := o/l.nJ, o%l.nJ
	rows, cols := l.BlockRows(i), l.BlockCols(j)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			dst = append(dst, (i*l.D0+r)*l.Out+j*l.D2+c)
		}
	}
	return dst
}

// TotalTargets returns Rows·Out, the targets of all outputs together.
func (l Layout) TotalTargets() int { return l.Rows * l.Out }
