package kernels

import (
	"errors"
	"fmt"
	"math/bits"
)

// ErrUnsupported is returned (wrapped) by a backend that does not
// implement an operation of the interface.
var ErrUnsupported = errors.New("operation not supported by this backend")

// MaxMatrixDim bounds every dimension of a MatrixShape.
const MaxMatrixDim = 1 << 20

// MatrixShape is the layout of the operands of Backend.MulMatrixMontgomery:
//
//   - x holds a Rows x Inner matrix of ciphertexts of Parts polynomials
//     each, entry (r, a) component p at polynomial (r·Inner + a)·Parts + p;
//   - wt holds a Cols x Inner matrix of single polynomials (the transposed
//     plaintext matrix, in Montgomery form), entry (c, a) at polynomial
//     c·Inner + a, so that the plaintexts of a range of columns are one
//     contiguous Slice;
//   - dst receives the Rows x Cols product, entry (r, c) component p at
//     polynomial (r·Cols + c)·Parts + p.
//
// All three have the same degree and basis; x and wt hold coefficients
// below q (NTT domain, standard form for x).
type MatrixShape struct {
	Rows, Inner, Cols, Parts int
}

// String formats the shape as "RxI·IxC (P parts)".
func (s MatrixShape) String() string {
	return fmt.Sprintf("%dx%d·%dx%d (%d parts)", s.Rows, s.Inner, s.Inner, s.Cols, s.Parts)
}

// Check reports an error unless the buffers fit the shape.
func (s MatrixShape) Check(dst, x, wt Buffer) error {
	for _, d := range []int{s.Rows, s.Inner, s.Cols, s.Parts} {
		if d < 1 || d > MaxMatrixDim {
			return fmt.Errorf("shape %v: dimensions not in [1, %d]", s, MaxMatrixDim)
		}
	}
	if x.lay.N != dst.lay.N || wt.lay.N != dst.lay.N || x.Basis() != dst.Basis() || wt.Basis() != dst.Basis() {
		return fmt.Errorf("operands of degrees %d, %d, %d in bases %s, %s, %s", dst.lay.N, x.lay.N, wt.lay.N, dst.Basis(), x.Basis(), wt.Basis())
	}
	if x.lay.Count != s.Rows*s.Inner*s.Parts || wt.lay.Count != s.Cols*s.Inner || dst.lay.Count != s.Rows*s.Cols*s.Parts {
		return fmt.Errorf("shape %v needs %d, %d and %d polynomials in x, wt and dst, got %d, %d and %d", s,
			s.Rows*s.Inner*s.Parts, s.Cols*s.Inner, s.Rows*s.Cols*s.Parts, x.lay.Count, wt.lay.Count, dst.lay.Count)
	}
	if dst.mem == x.mem || dst.mem == wt.mem {
		return fmt.Errorf("dst shares memory with an operand")
	}
	return nil
}

// LazyTerms returns how many values below 2q an unreduced 64-bit
// accumulator may hold: floor(2^63/q). An accumulator that has received
// that many lazy products must be lazily reduced (to below 2q, which then
// counts as one term) before the next.
func LazyTerms(q uint64) int {
	k, _ := bits.Div64(0, 1<<63, q)
	return int(min(k, 1<<30))
}

// accWords is the working set, in words, of the accumulators of one job of
// the CPU matrix product: a quarter of a core's L2 cache here (2 MiB), so
// that every input chunk read from memory serves every output of the job
// (BenchmarkMulMatrixMontgomery: 256 KiB to 1 MiB differ by less than the
// noise of the shared machine). A variable only for the tests, which lower
// it to exercise the tiling on small shapes.
var accWords = 512 << 10 / 8

// minChunk is the fewest coefficients per job the CPU matrix product aims
// for before it splits the rows into tiles.
const minChunk = 128

// matrixTiling returns the coefficients per job and the rows per job of
// the CPU matrix product: all rows with the largest chunk (a power of two
// in [8, n]) whose accumulators fit accWords, unless that chunk would be
// below minChunk, in which case as many rows as fit with minChunk.
func matrixTiling(n int, s MatrixShape) (chunk, rowTile int) {
	perRow := s.Cols * s.Parts
	rowTile = s.Rows
	if rowTile*perRow*minChunk > accWords {
		rowTile = max(1, accWords/(minChunk*perRow))
	}
	chunk = n
	for chunk > 8 && chunk*rowTile*perRow > accWords {
		chunk >>= 1
	}
	return chunk, rowTile
}
