package costmodel

import (
	"errors"
	"math"
)

// fitNonNegative returns the coefficients c ≥ 0 minimizing
// Σ_i w_i² (Σ_j x_ij c_j − y_i)²: non-negative least squares, solved
// exactly by trying every subset of free coefficients (the others held at
// zero) and keeping the best feasible one, which is cheap for the few
// columns of a cost model. Columns are scaled to unit norm first, so that
// figures of very different sizes (rows and rows²) solve alike.
func fitNonNegative(x [][]float64, y, w []float64) ([]float64, error) {
	if len(x) == 0 || len(x) != len(y) || len(w) != len(y) {
		return nil, errors.New("cannot fit: no observations, or mismatched lengths")
	}
	k := len(x[0])
	if k == 0 || k > 12 {
		return nil, errors.New("cannot fit: between 1 and 12 columns")
	}
	// Weighted, column-scaled design.
	a := make([][]float64, len(x))
	b := make([]float64, len(y))
	scale := make([]float64, k)
	for i, row := range x {
		if len(row) != k {
			return nil, errors.New("cannot fit: ragged observations")
		}
		a[i] = make([]float64, k)
		for j, v := range row {
			a[i][j] = w[i] * v
			scale[j] += a[i][j] * a[i][j]
		}
		b[i] = w[i] * y[i]
	}
	for j := range scale {
		scale[j] = math.Sqrt(scale[j])
	}
	best, bestErr := make([]float64, k), math.Inf(1)
	for mask := 0; mask < 1<<k; mask++ {
		var cols []int
		for j := 0; j < k; j++ {
			if mask&(1<<j) != 0 && scale[j] > 0 {
				cols = append(cols, j)
			}
		}
		if len(cols) != popcount(mask) {
			continue
		}
		c, ok := solveColumns(a, b, cols, scale)
		if !ok {
			continue
		}
		feasible := true
		for _, v := range c {
			feasible = feasible && v >= 0
		}
		if !feasible {
			continue
		}
		if e := sse(a, b, c); e < bestErr*(1-1e-12) {
			best, bestErr = c, e
		}
	}
	return best, nil
}

func popcount(m int) int {
	n := 0
	for ; m != 0; m &= m - 1 {
		n++
	}
	return n
}

// solveColumns solves the least-squares problem on the columns cols (the
// others zero) by the normal equations on unit-norm columns; ok is false
// when they are (nearly) dependent.
func solveColumns(a [][]float64, b []float64, cols []int, scale []float64) ([]float64, bool) {
	k := len(a[0])
	out := make([]float64, k)
	m := len(cols)
	if m == 0 {
		return out, true
	}
	// Normal equations G c = r with G = AᵀA on scaled columns.
	g := make([][]float64, m)
	for p := range g {
		g[p] = make([]float64, m+1)
		for q := range m {
			for i := range a {
				g[p][q] += a[i][cols[p]] / scale[cols[p]] * a[i][cols[q]] / scale[cols[q]]
			}
		}
		for i := range a {
			g[p][m] += a[i][cols[p]] / scale[cols[p]] * b[i]
		}
	}
	// Gaussian elimination with partial pivoting.
	for p := range m {
		piv := p
		for r := p + 1; r < m; r++ {
			if math.Abs(g[r][p]) > math.Abs(g[piv][p]) {
				piv = r
			}
		}
		if math.Abs(g[piv][p]) < 1e-10 {
			return nil, false
		}
		g[p], g[piv] = g[piv], g[p]
		for r := range m {
			if r == p {
				continue
			}
			f := g[r][p] / g[p][p]
			for q := p; q <= m; q++ {
				g[r][q] -= f * g[p][q]
			}
		}
	}
	for p, j := range cols {
		out[j] = g[p][m] / g[p][p] / scale[j]
	}
	return out, true
}

// sse is the sum of squared residuals of coefficients c.
func sse(a [][]float64, b, c []float64) float64 {
	var s float64
	for i, row := range a {
		r := -b[i]
		for j, v := range row {
			r += v * c[j]
		}
		s += r * r
	}
	return s
}
