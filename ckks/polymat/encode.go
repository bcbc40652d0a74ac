package polymat

import (
	"context"
	"fmt"
	"sync"

	"github.com/tuneinsight/lattigo/v5/ring"
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
// the polynomial Σ W[k,c]·x^(c·D1+k) and stored in the NTT domain and in
// Montgomery form, ready for lazy multiply-accumulates. It depends on D1
// and D2 only, so it serves every Layout with the same In, Out, D1 and D2
// (any row count and D0). It is read-only once built and safe for
// concurrent use.
type EncodedWeights struct {
	In, Out, D1, D2 int
	nA, nJ          int
	params          Parameters
	pts             []ring.Poly // a·nJ + j
}

// NewEncodedWeights encodes w (In x Out residues) for blocks of D1 x D2
// taken from lay, with workers goroutines. It allocates MemoryBytes.
func NewEncodedWeights(ctx context.Context, params Parameters, lay Layout, w ResidueMatrix, workers int) (*EncodedWeights, error) {
	if lay.n != params.N() {
		return nil, fmt.Errorf("cannot NewEncodedWeights: layout for N = %d, parameters for %d", lay.n, params.N())
	}
	if err := w.check(params, lay.In, lay.Out); err != nil {
		return nil, fmt.Errorf("cannot NewEncodedWeights: %w", err)
	}
	ew := &EncodedWeights{In: lay.In, Out: lay.Out, D1: lay.D1, D2: lay.D2, nA: lay.nA, nJ: lay.nJ, params: params}
	ew.pts = make([]ring.Poly, lay.nA*lay.nJ)
	ringQ := params.RingQ()
	err := parallel(ctx, workers, len(ew.pts), func(_, idx int) error {
		a, j := idx/lay.nJ, idx%lay.nJ
		p := ringQ.NewPoly()
		inner, cols := lay.BlockInner(a), lay.BlockCols(j)
		for li, src := range w.Limbs {
			dst := p.Coeffs[li]
			for k := 0; k < inner; k++ {
				row := src[(a*lay.D1+k)*lay.Out+j*lay.D2:]
				for c := 0; c < cols; c++ {
					dst[lay.WeightExponent(k, c)] = row[c]
				}
			}
		}
		ringQ.NTT(p, p)
		ringQ.MForm(p, p)
		ew.pts[idx] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot NewEncodedWeights: %w", err)
	}
	return ew, nil
}

// Compatible reports whether lay can use these weights.
func (w *EncodedWeights) Compatible(lay Layout) error {
	if lay.n != w.params.N() || lay.In != w.In || lay.Out != w.Out || lay.D1 != w.D1 || lay.D2 != w.D2 {
		return fmt.Errorf("weights for %dx%d in blocks %dx%d at N = %d, layout %dx%d in blocks %dx%d at N = %d",
			w.In, w.Out, w.D1, w.D2, w.params.N(), lay.In, lay.Out, lay.D1, lay.D2, lay.n)
	}
	return nil
}

// Count returns the number of plaintexts.
func (w *EncodedWeights) Count() int { return len(w.pts) }

// MemoryBytes returns the memory of the plaintexts: Count·L·N·8 bytes.
func (w *EncodedWeights) MemoryBytes() int64 {
	return WeightBytes(w.params, w.nA*w.nJ)
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
