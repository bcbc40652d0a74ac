package approx

import (
	"fmt"
	"math"
)

// Recipe is one resolved, immutable approximation: a Chebyshev polynomial p
// on [A, B] followed by a fixed post-processing (see the package doc). It is
// safe for concurrent use.
type Recipe struct {
	fn               Func
	deg              Degree
	a, b             float64
	scalar, constant float64
	coeffs           []float64
	odd, even        bool
	post             Post
	steps            int
	scale            float64
	outScale         float64
	cost             Cost
	stats            ErrorStats
}

// newRecipe interpolates and measures one variant. fl and v are validated.
func newRecipe(fn Func, d Degree, fl FuncLiteral, v VariantLiteral) (*Recipe, error) {
	r := &Recipe{
		fn:    fn,
		deg:   d,
		a:     fl.Interval[0],
		b:     fl.Interval[1],
		post:  postFor(fn),
		scale: 1,
		odd:   true,
		even:  true,
	}
	r.scalar, r.constant = ChangeOfBasis(r.a, r.b)
	switch r.post {
	case PostSquare:
		r.steps = v.Squarings
	case PostNewtonInverse, PostNewtonInvSqrt:
		r.steps = v.Newton
		if fl.Scale != 0 {
			r.scale = fl.Scale
		}
	}
	r.outScale = 1
	switch r.post {
	case PostNewtonInverse:
		r.outScale = r.scale
	case PostNewtonInvSqrt:
		r.outScale = math.Sqrt(r.scale)
	}

	r.coeffs = ChebyshevInterpolate(r.target(), v.Degree, r.a, r.b)
	if !allFinite(r.coeffs) {
		return nil, fmt.Errorf("%s.%s: interpolation produced non-finite coefficients", fn, d)
	}
	// An odd function on a symmetric interval has an odd interpolant: make
	// the even coefficients exactly zero so the HE side can skip even powers.
	if fn.odd() && r.a == -r.b && r.post == PostNone {
		for k := 0; k < len(r.coeffs); k += 2 {
			r.coeffs[k] = 0
		}
		r.even = false
	}
	r.cost = r.computeCost()
	r.stats = r.measure()
	if st := r.stats; !isFinite(st.MaxAbsErr) || !isFinite(st.MaxRelErr) {
		return nil, fmt.Errorf("%s.%s: approximation is not finite on %v", fn, d, fl.Interval)
	}
	if err := r.checkNewton(); err != nil {
		return nil, fmt.Errorf("%s.%s: %w", fn, d, err)
	}
	return r, nil
}

// checkNewton fails if the Newton steps would not converge from p: each
// step squares the residual (roughly, for InvSqrt), so it must be below 1.
// Chebyshev interpolants of 1/x and 1/sqrt(x) always pass (they undershoot:
// the residual stays below 1 however poor the fit); the check guards the
// invariant the post-processing relies on.
func (r *Recipe) checkNewton() error {
	if r.steps > 0 && !(r.stats.InitialResidual < 1) {
		return fmt.Errorf("Newton steps diverge: initial guess residual %.3g >= 1 on [%v, %v]; raise the degree or narrow the interval",
			r.stats.InitialResidual, r.a, r.b)
	}
	return nil
}

// target returns the function the polynomial interpolates on [A, B].
func (r *Recipe) target() func(float64) float64 {
	switch r.fn {
	case Exp:
		inv := math.Ldexp(1, -r.steps)
		return func(x float64) float64 { return math.Exp(x * inv) }
	case Reciprocal:
		return func(x float64) float64 { return 1 / (r.scale * x) }
	case InvSqrt:
		return func(x float64) float64 { return 1 / math.Sqrt(r.scale*x) }
	}
	return r.fn.Exact
}

func (r *Recipe) computeCost() Cost {
	var c Cost
	if !isInteger(r.scalar) {
		c.ChangeOfBasisDepth = 1
	}
	deg := len(r.coeffs) - 1
	c.PolyDepth = polyDepth(deg)
	c.PolyMuls = polyMuls(deg, r.odd, r.even)
	switch r.post {
	case PostSquare:
		c.PostDepth, c.PostMuls = r.steps, r.steps
	case PostNewtonInverse:
		if r.steps > 0 && !isInteger(r.scale) {
			c.PrepDepth = 1 // u = s*x
		}
		c.PostDepth, c.PostMuls = 2*r.steps, 2*r.steps
	case PostNewtonInvSqrt:
		if r.steps > 0 && !isInteger(r.scale/2) {
			c.PrepDepth = 1 // h = (s/2)*x
		}
		c.PostDepth, c.PostMuls = 2*r.steps, 3*r.steps
	}
	if !isInteger(r.outScale) {
		c.OutputScaleDepth = 1
	}
	c.Depth = max(c.ChangeOfBasisDepth+c.PolyDepth, c.PrepDepth) + c.PostDepth + c.OutputScaleDepth
	c.CtCtMuls = c.PolyMuls + c.PostMuls
	return c
}

// Func returns the approximated function.
func (r *Recipe) Func() Func { return r.fn }

// Variant returns High or Low.
func (r *Recipe) Variant() Degree { return r.deg }

// Interval returns [A, B], on the raw input x.
func (r *Recipe) Interval() (a, b float64) { return r.a, r.b }

// Basis returns the basis of Coeffs (Chebyshev).
func (r *Recipe) Basis() Basis { return Chebyshev }

// PolyDegree returns the degree of the polynomial p.
func (r *Recipe) PolyDegree() int { return len(r.coeffs) - 1 }

// Coeffs returns a copy of the Chebyshev coefficients c_0..c_d of p on [A, B].
func (r *Recipe) Coeffs() []float64 { return append([]float64(nil), r.coeffs...) }

// ChangeOfBasis returns scalar and constant of t = scalar*x + constant.
func (r *Recipe) ChangeOfBasis() (scalar, constant float64) { return r.scalar, r.constant }

// Parity returns the flags to set on Lattigo's bignum.Polynomial (IsOdd,
// IsEven): both true for a generic polynomial, (true, false) when every even
// coefficient is exactly zero (odd functions on symmetric intervals).
func (r *Recipe) Parity() (odd, even bool) { return r.odd, r.even }

// Post returns the post-processing kind. Exp always has PostSquare,
// Reciprocal PostNewtonInverse, InvSqrt PostNewtonInvSqrt, even with 0 steps.
func (r *Recipe) Post() Post { return r.post }

// Steps returns the number of squarings or Newton steps (possibly 0).
func (r *Recipe) Steps() int { return r.steps }

// InputScale returns s: the Newton steps run on u = s*x (1 unless set).
func (r *Recipe) InputScale() float64 { return r.scale }

// OutputScale returns the constant the result is multiplied by at the end:
// s for Reciprocal, sqrt(s) for InvSqrt, 1 otherwise. The HE side may fold
// it into the next plaintext multiplication (LayerNorm gamma, ...).
func (r *Recipe) OutputScale() float64 { return r.outScale }

// Cost returns the depth and multiplication counts.
func (r *Recipe) Cost() Cost { return r.cost }

// Splittable reports whether an HE evaluator may refresh between the
// polynomial and the post-processing: true for Newton steps (they restart
// from the refreshed guess y and the refreshed input x), false for
// squarings and for recipes without steps.
func (r *Recipe) Splittable() bool {
	return r.steps > 0 && (r.post == PostNewtonInverse || r.post == PostNewtonInvSqrt)
}

// Segments returns the levels of the two parts of a splittable recipe: the
// change of basis and the polynomial, then the Newton inputs, steps and
// output constant run from refreshed ciphertexts. A recipe that is not
// splittable has one segment: (Depth, 0).
func (r *Recipe) Segments() (poly, post int) {
	c := r.cost
	if !r.Splittable() {
		return c.Depth, 0
	}
	return c.ChangeOfBasisDepth + c.PolyDepth, c.PrepDepth + c.PostDepth + c.OutputScaleDepth
}

// SegmentDepth returns the most levels one refresh segment must hold to
// evaluate the recipe, refreshing between its segments only when the whole
// recipe is deeper than segment levels (segment <= 0: never split).
func (r *Recipe) SegmentDepth(segment int) int {
	d := r.cost.Depth
	if segment <= 0 || d <= segment || !r.Splittable() {
		return d
	}
	poly, post := r.Segments()
	return max(poly, post)
}

// Stats returns the errors measured against the exact function.
func (r *Recipe) Stats() ErrorStats { return r.stats }

// Contains reports whether x lies in [A, B] (false for NaN).
func (r *Recipe) Contains(x float64) bool { return x >= r.a && x <= r.b }

// Clamp returns x clamped to [A, B] (NaN stays NaN).
func (r *Recipe) Clamp(x float64) float64 {
	if x < r.a {
		return r.a
	}
	if x > r.b {
		return r.b
	}
	return x
}

// Eval evaluates the recipe at x in float64, clamping x to [A, B] first.
func (r *Recipe) Eval(x float64) float64 { return r.EvalUnclamped(r.Clamp(x)) }

// EvalUnclamped evaluates the recipe at x without clamping: for x outside
// [A, B] this is what the HE evaluator computes (up to CKKS noise), which can
// be far from the function.
func (r *Recipe) EvalUnclamped(x float64) float64 {
	return r.postProcess(x, r.Poly(x))
}

// Poly evaluates the polynomial p alone at x (no clamping, no post-processing),
// by Clenshaw's recurrence on t = scalar*x + constant.
func (r *Recipe) Poly(x float64) float64 {
	return Clenshaw(r.coeffs, r.toT(x))
}

// toT is the change of basis t = scalar*x + constant (never fused).
func (r *Recipe) toT(x float64) float64 { return float64(r.scalar*x) + r.constant }

// postProcess applies the post-processing to y = p(x), with the same
// operations, in the same order, as the HE evaluator.
func (r *Recipe) postProcess(x, y float64) float64 {
	switch r.post {
	case PostSquare:
		for i := 0; i < r.steps; i++ {
			y *= y
		}
	case PostNewtonInverse:
		u := r.scale * x
		for i := 0; i < r.steps; i++ {
			y *= 2 - float64(u*y)
		}
		y *= r.outScale
	case PostNewtonInvSqrt:
		h := (r.scale / 2) * x
		for i := 0; i < r.steps; i++ {
			y = float64(1.5*y) - float64(float64(h*y)*float64(y*y))
		}
		y *= r.outScale
	}
	return y
}

// EvalVec writes Eval(in[i]) to out[i] (bit for bit) and returns how many
// inputs were outside [A, B] or NaN (clamped). out must be at least as long
// as in; in and out may be the same slice.
func (r *Recipe) EvalVec(in, out []float64) (clamped int) {
	if len(out) < len(in) {
		panic(fmt.Sprintf("approx: EvalVec: len(out) = %d < len(in) = %d", len(out), len(in)))
	}
	out = out[:len(in)]
	var x, t [4]float64
	i := 0
	for ; i+4 <= len(in); i += 4 {
		for j := range x {
			xj := in[i+j]
			if !r.Contains(xj) {
				clamped++
				xj = r.Clamp(xj)
			}
			x[j], t[j] = xj, r.toT(xj)
		}
		y0, y1, y2, y3 := clenshaw4(r.coeffs, t[0], t[1], t[2], t[3])
		out[i] = r.postProcess(x[0], y0)
		out[i+1] = r.postProcess(x[1], y1)
		out[i+2] = r.postProcess(x[2], y2)
		out[i+3] = r.postProcess(x[3], y3)
	}
	for ; i < len(in); i++ {
		xi := in[i]
		if !r.Contains(xi) {
			clamped++
			xi = r.Clamp(xi)
		}
		out[i] = r.postProcess(xi, Clenshaw(r.coeffs, r.toT(xi)))
	}
	return clamped
}

func allFinite(v []float64) bool {
	for _, x := range v {
		if !isFinite(x) {
			return false
		}
	}
	return true
}
