package polymat

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/tuneinsight/lattigo/v5/ring"

	"github.com/cipherprune/cipherprune/kernels"
)

// ResidueMatrix is an integer matrix held as its residues modulo every
// prime of Q: Limbs[l][r·Cols+c] is entry (r, c) modulo q_l, in [0, q_l).
// The bridge fills it from 128-bit shares; FromInt64 from small integers.
type ResidueMatrix struct {
	Rows, Cols int
	Limbs      [][]uint64
}

// NewResidueMatrix returns a zero rows x cols matrix for params.
func NewResidueMatrix(params Parameters, rows, cols int) ResidueMatrix {
	m := ResidueMatrix{Rows: rows, Cols: cols, Limbs: make([][]uint64, params.Limbs())}
	for l := range m.Limbs {
		m.Limbs[l] = make([]uint64, rows*cols)
	}
	return m
}

// FromInt64 returns the residues of the rows x cols matrix v (row-major).
func FromInt64(params Parameters, rows, cols int, v []int64) (ResidueMatrix, error) {
	if rows < 0 || cols < 0 || len(v) != rows*cols {
		return ResidueMatrix{}, fmt.Errorf("cannot FromInt64: %d values for %dx%d", len(v), rows, cols)
	}
	m := NewResidueMatrix(params, rows, cols)
	for l, q := range params.moduli {
		dst := m.Limbs[l]
		for k, x := range v {
			dst[k] = ModInt64(x, q)
		}
	}
	return m, nil
}

// ModInt64 returns x mod q in [0, q).
func ModInt64(x int64, q uint64) uint64 {
	if x >= 0 {
		return uint64(x) % q
	}
	r := uint64(-(x + 1)) % q // |x| - 1, without overflow at MinInt64
	return q - 1 - r
}

func (m ResidueMatrix) check(params Parameters, rows, cols int) error {
	if m.Rows != rows || m.Cols != cols {
		return fmt.Errorf("matrix is %dx%d, want %dx%d", m.Rows, m.Cols, rows, cols)
	}
	if len(m.Limbs) != params.Limbs() {
		return fmt.Errorf("matrix has %d limbs, want %d", len(m.Limbs), params.Limbs())
	}
	for l, limb := range m.Limbs {
		if len(limb) != rows*cols {
			return fmt.Errorf("limb %d has %d entries, want %d", l, len(limb), rows*cols)
		}
	}
	return nil
}

// EncodeInput writes input block (i, a) of x (Rows x In, residues) into
// pt in the coefficient domain, every limb: X[r, k] at
// InputExponent(r, k), zeros elsewhere (the edge blocks' padding too).
func (l Layout) EncodeInput(x ResidueMatrix, i, a int, pt ring.Poly) {
	rows, inner := l.BlockRows(i), l.BlockInner(a)
	for li, src := range x.Limbs {
		dst := pt.Coeffs[li]
		clear(dst)
		for r := 0; r < rows; r++ {
			row := src[(i*l.D0+r)*l.In+a*l.D1:]
			for k := 0; k < inner; k++ {
				dst[l.InputExponent(r, k)] = row[k]
			}
		}
	}
}

// EncodedWeights is W (In x Out) cut into D1 x D2 blocks, each encoded as
// the polynomial Σ W[k,c]·x^(c·D1+k) in the NTT domain and Montgomery form,
// ready for the lazy multiply-accumulates of Evaluator.MulThen. It is held
// one of two ways:
//
//   - pre-encoded (NewEncodedWeights, Evaluator.EncodeWeights): every block
//     encoded once, in the memory of a kernels.Backend (MemoryBytes:
//     Weights·L·N·8 bytes);
//   - on the fly (NewOnTheFlyWeights): only the integer matrix is held
//     (In·Out·8 bytes) and every MulThen encodes the blocks of the column
//     groups its workers compute, just before their products.
//
// It depends on D1 and D2 only, so it serves every Layout with the same
// In, Out, D1 and D2 (any row count and D0). It is read-only once built and
// safe for concurrent use.
type EncodedWeights struct {
	In, Out, D1, D2 int
	nA, nJ          int
	params          Parameters
	be              kernels.Backend // owner of pts
	pts             kernels.Buffer  // pre-encoded: block (a, j) at j·nA + a
	w               []int64         // on the fly: W row-major
}

// NewEncodedWeights pre-encodes w (In x Out residues) for blocks of D1 x
// D2 taken from lay on the CPU, with workers goroutines: it is
// NewEvaluator(params, workers).EncodeWeights. It allocates MemoryBytes.
func NewEncodedWeights(ctx context.Context, params Parameters, lay Layout, w ResidueMatrix, workers int) (*EncodedWeights, error) {
	return NewEvaluator(params, workers).EncodeWeights(ctx, lay, w)
}

// EncodeWeights pre-encodes w (In x Out residues) for blocks of D1 x D2
// taken from lay, in the memory of the evaluator's backend, on its
// workers. It allocates MemoryBytes.
func (ev *Evaluator) EncodeWeights(ctx context.Context, lay Layout, w ResidueMatrix) (*EncodedWeights, error) {
	params := ev.params
	if lay.n != params.N() {
		return nil, fmt.Errorf("cannot EncodeWeights: layout for N = %d, parameters for %d", lay.n, params.N())
	}
	if err := w.check(params, lay.In, lay.Out); err != nil {
		return nil, fmt.Errorf("cannot EncodeWeights: %w", err)
	}
	ew := &EncodedWeights{In: lay.In, Out: lay.Out, D1: lay.D1, D2: lay.D2, nA: lay.nA, nJ: lay.nJ, params: params, be: ev.be}
	pts, err := ev.be.Alloc(ev.basis(), lay.nA*lay.nJ)
	if err != nil {
		return nil, fmt.Errorf("cannot EncodeWeights: %w", err)
	}
	scratch := make([]ring.Poly, ev.workers)
	err = parallel(ctx, ev.workers, lay.nA*lay.nJ, func(worker, idx int) error {
		if scratch[worker].N() == 0 {
			scratch[worker] = params.RingQ().NewPoly()
		}
		j, a := idx/lay.nA, idx%lay.nA
		p := scratch[worker]
		lay.encodeWeightBlock(params, p, a, j, func(l, k, c int) uint64 { return w.Limbs[l][k*lay.Out+c] })
		return ev.toWeight(pts.Poly(idx), p)
	})
	if err != nil {
		_ = ev.be.Free(pts)
		return nil, fmt.Errorf("cannot EncodeWeights: %w", err)
	}
	ew.pts = pts
	return ew, nil
}

// NewOnTheFlyWeights returns the weights w (In x Out integers, row-major,
// taken from lay with its D1 and D2) held as they are and encoded per call
// (see EncodedWeights). It keeps w, which the caller must not modify.
func NewOnTheFlyWeights(params Parameters, lay Layout, w []int64) (*EncodedWeights, error) {
	if lay.n != params.N() {
		return nil, fmt.Errorf("cannot NewOnTheFlyWeights: layout for N = %d, parameters for %d", lay.n, params.N())
	}
	if len(w) != lay.In*lay.Out {
		return nil, fmt.Errorf("cannot NewOnTheFlyWeights: %d weights for %dx%d", len(w), lay.In, lay.Out)
	}
	return &EncodedWeights{In: lay.In, Out: lay.Out, D1: lay.D1, D2: lay.D2, nA: lay.nA, nJ: lay.nJ, params: params, w: w}, nil
}

// encodeWeightBlock writes weight block (a, j) into p (coefficient domain,
// every limb) in Montgomery form: entry (k, c) of the block, whose residue
// modulo limb l is at(l, row, col) for W's row and column, times 2^64, at
// WeightExponent(k, c). The NTT being linear, the NTT of p is then the
// Montgomery form of the NTT of the plain block, word for word, without a
// pass over the N coefficients.
func (l Layout) encodeWeightBlock(params Parameters, p ring.Poly, a, j int, at func(limb, row, col int) uint64) {
	inner, cols := l.BlockInner(a), l.BlockCols(j)
	for li, dst := range p.Coeffs {
		clear(dst)
		sub := params.RingQ().SubRings[li]
		q, bred := sub.Modulus, sub.BRedConstant
		for k := 0; k < inner; k++ {
			for c := 0; c < cols; c++ {
				dst[l.WeightExponent(k, c)] = ring.MForm(at(li, a*l.D1+k, j*l.D2+c), q, bred)
			}
		}
	}
}

// encodeWeightBlockInt64 is encodeWeightBlock from an integer matrix:
// the residues of w's entries, computed here.
func (l Layout) encodeWeightBlockInt64(params Parameters, p ring.Poly, w []int64, a, j int) {
	inner, cols := l.BlockInner(a), l.BlockCols(j)
	for li, dst := range p.Coeffs {
		clear(dst)
		sub := params.RingQ().SubRings[li]
		q, bred := sub.Modulus, sub.BRedConstant
		for k := 0; k < inner; k++ {
			row := w[(a*l.D1+k)*l.Out+j*l.D2:]
			for c := 0; c < cols; c++ {
				dst[l.WeightExponent(k, c)] = ring.MForm(residueInt64(row[c], q), q, bred)
			}
		}
	}
}

// residueInt64 is ModInt64 without a division for |x| < q.
func residueInt64(x int64, q uint64) uint64 {
	switch {
	case x >= 0 && uint64(x) < q:
		return uint64(x)
	case x < 0 && x != math.MinInt64 && uint64(-x) < q:
		return q - uint64(-x)
	default:
		return ModInt64(x, q)
	}
}

// Compatible reports whether lay can use these weights.
func (w *EncodedWeights) Compatible(lay Layout) error {
	if lay.n != w.params.N() || lay.In != w.In || lay.Out != w.Out || lay.D1 != w.D1 || lay.D2 != w.D2 {
		return fmt.Errorf("weights for %dx%d in blocks %dx%d at N = %d, layout %dx%d in blocks %dx%d at N = %d",
			w.In, w.Out, w.D1, w.D2, w.params.N(), lay.In, lay.Out, lay.D1, lay.D2, lay.n)
	}
	return nil
}

// PreEncoded reports whether the blocks are encoded once (true) or per call.
func (w *EncodedWeights) PreEncoded() bool { return w.w == nil }

// Count returns the number of weight plaintexts, InnerBlocks·ColBlocks
// (encoded once or per call).
func (w *EncodedWeights) Count() int { return w.nA * w.nJ }

// MemoryBytes returns the memory held between calls: Count·L·N·8 bytes of
// plaintexts when pre-encoded, In·Out·8 bytes of integers otherwise.
func (w *EncodedWeights) MemoryBytes() int64 {
	if !w.PreEncoded() {
		return int64(len(w.w)) * 8
	}
	return WeightBytes(w.params, w.Count())
}

// Release frees the backend memory of pre-encoded weights; they must not
// be used afterwards.
func (w *EncodedWeights) Release() error {
	if !w.PreEncoded() || w.pts.IsZero() {
		return nil
	}
	if err := w.be.Free(w.pts); err != nil {
		return fmt.Errorf("cannot Release: %w", err)
	}
	w.pts = kernels.Buffer{}
	return nil
}

// WeightBytes returns the memory of count encoded weight plaintexts.
func WeightBytes(params Parameters, count int) int64 {
	return int64(count) * int64(params.Limbs()) * int64(params.N()) * 8
}

// parallel runs f(worker, k) for k in [0, count) on workers goroutines
// (at least one) and returns the first error; it stops handing out work
// once ctx ends or f fails.
func parallel(ctx context.Context, workers, count int, f func(worker, k int) error) error {
	workers = max(1, min(workers, count))
	var (
		mu   sync.Mutex
		next int
		ferr error
		wg   sync.WaitGroup
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if ferr != nil || next >= count {
			return 0, false
		}
		if err := ctx.Err(); err != nil {
			ferr = err
			return 0, false
		}
		next++
		return next - 1, true
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				k, ok := take()
				if !ok {
					return
				}
				if err := f(w, k); err != nil {
					mu.Lock()
					if ferr == nil {
						ferr = err
					}
					mu.Unlock()
					return
				}
			}
		}(w)
	}
	wg.Wait()
	return ferr
}
