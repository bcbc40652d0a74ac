package models

import (
	"fmt"
	"runtime"
	"sync"
)

// Matrix is a dense row-major matrix of float64: element (i, j) is
// Data[i*Cols+j]. Methods that return a Matrix allocate it; methods and
// functions that take an out argument write into the caller's matrix, which
// must not alias an input.
type Matrix struct {
	Rows, Cols int
	Data       []float64
}

// NewMatrix returns a zero rows x cols matrix. Negative sizes give an empty
// matrix.
func NewMatrix(rows, cols int) Matrix {
	if rows < 0 || cols < 0 {
		rows, cols = 0, 0
	}
	return Matrix{Rows: rows, Cols: cols, Data: make([]float64, rows*cols)}
}

// NewMatrixFrom wraps data, which it does not copy, as a rows x cols matrix.
func NewMatrixFrom(rows, cols int, data []float64) (Matrix, error) {
	if rows < 0 || cols < 0 || len(data) != rows*cols {
		return Matrix{}, fmt.Errorf("cannot NewMatrixFrom: %d values for a %dx%d matrix", len(data), rows, cols)
	}
	return Matrix{Rows: rows, Cols: cols, Data: data}, nil
}

// valid reports whether m's data matches its shape.
func (m Matrix) valid() bool {
	return m.Rows >= 0 && m.Cols >= 0 && len(m.Data) == m.Rows*m.Cols
}

// At returns element (i, j).
func (m Matrix) At(i, j int) float64 { return m.Data[i*m.Cols+j] }

// Set sets element (i, j) to v.
func (m Matrix) Set(i, j int, v float64) { m.Data[i*m.Cols+j] = v }

// Row returns row i as a slice that aliases m's data.
func (m Matrix) Row(i int) []float64 { return m.Data[i*m.Cols : (i+1)*m.Cols : (i+1)*m.Cols] }

// Clone returns a deep copy of m.
func (m Matrix) Clone() Matrix {
	return Matrix{Rows: m.Rows, Cols: m.Cols, Data: append([]float64(nil), m.Data...)}
}

// TransposeNew returns mᵀ.
func (m Matrix) TransposeNew() Matrix {
	t := NewMatrix(m.Cols, m.Rows)
	for i := 0; i < m.Rows; i++ {
		row := m.Row(i)
		for j, v := range row {
			t.Data[j*m.Rows+i] = v
		}
	}
	return t
}

// SelectRowsNew returns the matrix whose row k is m's row rows[k].
func (m Matrix) SelectRowsNew(rows []int) (Matrix, error) {
	out := NewMatrix(len(rows), m.Cols)
	for k, r := range rows {
		if r < 0 || r >= m.Rows {
			return Matrix{}, fmt.Errorf("cannot SelectRowsNew: row index %d out of range [0, %d)", r, m.Rows)
		}
		copy(out.Row(k), m.Row(r))
	}
	return out, nil
}

// ColsNew returns the columns [from, to) of m as a new matrix.
func (m Matrix) ColsNew(from, to int) (Matrix, error) {
	if from < 0 || to < from || to > m.Cols {
		return Matrix{}, fmt.Errorf("cannot ColsNew: columns [%d, %d) out of range [0, %d)", from, to, m.Cols)
	}
	out := NewMatrix(m.Rows, to-from)
	for i := 0; i < m.Rows; i++ {
		copy(out.Row(i), m.Row(i)[from:to])
	}
	return out, nil
}

// MulTransBNew returns a·bᵀ for a of shape n x k and b of shape m x k. This
// is the product of a Linear layer (weights stored [out, in]) and of Q·Kᵀ.
func MulTransBNew(a, b Matrix) (Matrix, error) {
	out := NewMatrix(a.Rows, b.Rows)
	if err := MulTransB(a, b, out); err != nil {
		return Matrix{}, fmt.Errorf("cannot MulTransBNew: %w", err)
	}
	return out, nil
}

// MulTransB writes a·bᵀ into out (a: n x k, b: m x k, out: n x m).
//
// Every output element is the dot product of a row of a and a row of b,
// summed in order of k, so the result does not depend on GOMAXPROCS. Rows of
// the output are computed in parallel by at most runtime.GOMAXPROCS(0)
// goroutines.
func MulTransB(a, b, out Matrix) error {
	if !a.valid() || !b.valid() || !out.valid() {
		return fmt.Errorf("cannot MulTransB: a matrix's data does not match its shape")
	}
	if a.Cols != b.Cols || out.Rows != a.Rows || out.Cols != b.Rows {
		return fmt.Errorf("cannot MulTransB: shapes %dx%d · (%dx%d)ᵀ -> %dx%d do not match",
			a.Rows, a.Cols, b.Rows, b.Cols, out.Rows, out.Cols)
	}
	parallelRows(a.Rows, a.Rows*a.Cols*b.Rows, func(lo, hi int) { mulTransBRows(a, b, out, lo, hi) })
	return nil
}

// MulNew returns a·b for a of shape n x k and b of shape k x m.
func MulNew(a, b Matrix) (Matrix, error) {
	if !b.valid() {
		return Matrix{}, fmt.Errorf("cannot MulNew: a matrix's data does not match its shape")
	}
	out, err := MulTransBNew(a, b.TransposeNew())
	if err != nil {
		return Matrix{}, fmt.Errorf("cannot MulNew: %w", err)
	}
	return out, nil
}

// mulTransBBlock is the number of rows of b kept hot in cache while the
// rows of a stream past them.
const mulTransBBlock = 64

// mulTransBRows computes rows [lo, hi) of out = a·bᵀ. It blocks over the
// rows of b for cache reuse and computes 2x4 output tiles, so that each
// loaded element of a is used four times and each of b twice.
func mulTransBRows(a, b, out Matrix, lo, hi int) {
	k := a.Cols
	row := func(m Matrix, i int) []float64 { return m.Data[i*m.Cols : (i+1)*m.Cols] }
	for jb := 0; jb < b.Rows; jb += mulTransBBlock {
		je := min(jb+mulTransBBlock, b.Rows)
		i := lo
		for ; i+1 < hi; i += 2 {
			a0, a1 := row(a, i), row(a, i+1)
			o0, o1 := row(out, i), row(out, i+1)
			j := jb
			for ; j+3 < je; j += 4 {
				s := dot2x4(a0, a1, b.Data[j*k:(j+4)*k])
				copy(o0[j:j+4], s[:4])
				copy(o1[j:j+4], s[4:])
			}
			for ; j < je; j++ {
				b0 := row(b, j)
				o0[j], o1[j] = dot(a0, b0), dot(a1, b0)
			}
		}
		if i < hi {
			a0, o0 := row(a, i), row(out, i)
			for j := jb; j < je; j++ {
				o0[j] = dot(a0, row(b, j))
			}
		}
	}
}

// dot2x4 returns the eight inner products of rows x0, x1 with the four
// consecutive rows of length len(x0) held in b4, each summed in order: the
// products of x0 first, then those of x1.
func dot2x4(x0, x1, b4 []float64) [8]float64 {
	k := len(x0)
	x1 = x1[:k]
	b0, b1, b2, b3 := b4[:k], b4[k:2*k], b4[2*k:3*k], b4[3*k:4*k]
	b1, b2, b3 = b1[:k], b2[:k], b3[:k] // lengths the bounds-check prover can see
	var s00, s01, s02, s03, s10, s11, s12, s13 float64
	for t, u := range x0 {
		v := x1[t]
		y0, y1, y2, y3 := b0[t], b1[t], b2[t], b3[t]
		s00 += u * y0
		s01 += u * y1
		s02 += u * y2
		s03 += u * y3
		s10 += v * y0
		s11 += v * y1
		s12 += v * y2
		s13 += v * y3
	}
	return [8]float64{s00, s01, s02, s03, s10, s11, s12, s13}
}

// dot returns the inner product of x and y, summed in order.
func dot(x, y []float64) float64 {
	y = y[:len(x)]
	var s float64
	for i, v := range x {
		s += v * y[i]
	}
	return s
}

// parallelMinWork is the number of multiply-adds below which parallelRows
// runs on the calling goroutine.
const parallelMinWork = 1 << 16

// parallelRows calls fn on disjoint row ranges covering [0, n), using at
// most runtime.GOMAXPROCS(0) goroutines. work estimates the total cost, to
// keep small jobs on one goroutine. Range boundaries are even, so that
// kernels working on pairs of rows see the same pairs whatever the split.
func parallelRows(n, work int, fn func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers > (n+1)/2 {
		workers = (n + 1) / 2
	}
	if workers <= 1 || work < parallelMinWork {
		fn(0, n)
		return
	}
	chunk := (n + workers - 1) / workers
	chunk += chunk & 1
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}
