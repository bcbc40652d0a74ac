package approx

import "math"

// GridPoints is the number of uniformly spaced points (end points included)
// on which errors are measured; positive intervals get as many geometrically
// spaced points on top, so the region near A is sampled densely.
const GridPoints = 1<<13 + 1

// ErrorStats are the errors of a Recipe against the exact function, measured
// in float64 on a dense grid of its interval.
type ErrorStats struct {
	// MaxAbsErr is max |recipe(x) - f(x)|, attained at ArgMaxAbs.
	MaxAbsErr float64 `json:"max_abs_err"`
	ArgMaxAbs float64 `json:"arg_max_abs"`
	// MaxRelErr is max |recipe(x) - f(x)| / |f(x)|, defined only when
	// RelDefined (Exp, Reciprocal, InvSqrt: f stays away from 0). For GELU
	// and Tanh it is 0 and RelDefined is false.
	MaxRelErr  float64 `json:"max_rel_err"`
	RelDefined bool    `json:"rel_defined"`
	// InitialResidual is, for Newton recipes, max |1 - u*y0| (Reciprocal) or
	// max |1 - u*y0^2| (InvSqrt) over the grid, y0 = p(x), u = s*x. Each
	// Newton step roughly squares it; it must be < 1. 0 for other recipes
	// and when Steps is 0.
	InitialResidual float64 `json:"initial_residual"`
	// Points is the number of grid points used.
	Points int `json:"points"`
}

// grid returns the measurement points of [a, b].
func grid(a, b float64) []float64 {
	n := GridPoints
	pts := make([]float64, 0, 2*n)
	for i := 0; i < n; i++ {
		pts = append(pts, a+(b-a)*float64(i)/float64(n-1))
	}
	pts[n-1] = b
	if a > 0 {
		la, lb := math.Log(a), math.Log(b)
		for i := 1; i < n-1; i++ {
			pts = append(pts, math.Exp(la+(lb-la)*float64(i)/float64(n-1)))
		}
	}
	return pts
}

// measure computes the recipe's ErrorStats.
func (r *Recipe) measure() ErrorStats {
	pts := grid(r.a, r.b)
	s := ErrorStats{Points: len(pts), RelDefined: r.fn.relativeErrorMeaningful()}
	for _, x := range pts {
		y0 := r.Poly(x)
		y := r.postProcess(x, y0)
		want := r.fn.Exact(x)
		e := nanToInf(math.Abs(y - want))
		if e > s.MaxAbsErr {
			s.MaxAbsErr, s.ArgMaxAbs = e, x
		}
		if s.RelDefined {
			s.MaxRelErr = math.Max(s.MaxRelErr, nanToInf(e/math.Abs(want)))
		}
		if r.steps == 0 {
			continue
		}
		var res float64
		switch r.post {
		case PostNewtonInverse:
			res = math.Abs(1 - r.scale*x*y0)
		case PostNewtonInvSqrt:
			res = math.Abs(1 - r.scale*x*y0*y0)
			if !(y0 > 0) {
				res = math.Inf(1) // would converge to -1/sqrt(u), or not at all
			}
		}
		s.InitialResidual = math.Max(s.InitialResidual, nanToInf(res))
	}
	return s
}

func nanToInf(x float64) float64 {
	if math.IsNaN(x) {
		return math.Inf(1)
	}
	return x
}

// RangeStats counts inputs against an interval [A, B]; the HE evaluator
// cannot clamp, so every input counted in Below or Above (or NaN) is an input
// on which HE and the float64 reference disagree.
type RangeStats struct {
	N, Below, Above, NaN int
	// Min and Max are the extreme non-NaN inputs seen (±Inf when N == NaN).
	Min, Max float64
}

// OutOfRange returns Below + Above + NaN.
func (s RangeStats) OutOfRange() int { return s.Below + s.Above + s.NaN }

// Merge returns the statistics of both sets of inputs.
func (s RangeStats) Merge(o RangeStats) RangeStats {
	if s.N == 0 {
		return o
	}
	if o.N == 0 {
		return s
	}
	return RangeStats{
		N: s.N + o.N, Below: s.Below + o.Below, Above: s.Above + o.Above, NaN: s.NaN + o.NaN,
		Min: math.Min(s.Min, o.Min), Max: math.Max(s.Max, o.Max),
	}
}

// Range counts xs against the recipe's interval.
func (r *Recipe) Range(xs []float64) RangeStats {
	s := RangeStats{N: len(xs), Min: math.Inf(1), Max: math.Inf(-1)}
	for _, x := range xs {
		switch {
		case math.IsNaN(x):
			s.NaN++
			continue
		case x < r.a:
			s.Below++
		case x > r.b:
			s.Above++
		}
		s.Min = math.Min(s.Min, x)
		s.Max = math.Max(s.Max, x)
	}
	return s
}
